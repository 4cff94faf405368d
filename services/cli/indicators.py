"""``schakel indicators``: every indicator tested against outcomes (docs/outcomes.md).

``schakel indicators [--by type|partner|rule|stacking] [--month YYYY-MM] [--format
table|csv|json]`` shows, per signal type, partner, covenant rule and stacking rule, how many
signals were followed within the window by a positive finding at the same location, by a
negative check, or by nothing yet — precision with a 95 % Wilson interval and the median lead
time — from the suppressed release (counts below 5 never shown, nor used in a rate).
``replay-stacking`` replays the stacking rule and a proposed change against the history
(``--record`` keeps the result with the rule file, audited); ``model-doc`` writes the model
documentation a supervisor asks for under the WGS. Each run that shows counts is access-logged.
"""

from __future__ import annotations

import csv
import getpass
import sys
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer

from services.cli.audit import DatabaseOption
from services.core.errors import SchakelError

if TYPE_CHECKING:
    from services.core.outcomes.indicators import IndicatorRelease, IndicatorRow

app = typer.Typer(
    help="Indicators tested against outcomes: precision, lead time, stacking replays.",
    invoke_without_command=True,
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class By(StrEnum):
    all = "all"
    type = "type"
    partner = "partner"
    rule = "rule"
    stacking = "stacking"


WindowOption = Annotated[
    int,
    typer.Option(
        "--window-days", min=1, max=730, help="How long after a signal an outcome still counts."
    ),
]
ThresholdOption = Annotated[
    int, typer.Option("--threshold", min=5, help="Counts below this are suppressed (at least 5).")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _release(database: str | None, window_days: int, threshold: int, what: str) -> IndicatorRelease:
    from services.config import Paths
    from services.database.engine import make_engine
    from services.database.tables.web import metadata as web_metadata
    from services.outcomes.indicators import indicator_release
    from services.outcomes.store import SqlOutcomeStore
    from services.stacking.config_files import load_stacking_config
    from services.web.access_log import AccessLog

    try:
        stacking = load_stacking_config(Paths.from_env().covenants).stacking
    except SchakelError:
        stacking = "stacking"
    engine = make_engine(database)
    try:
        store = SqlOutcomeStore(engine)
        store.create_schema()
        made = indicator_release(
            store,
            window=timedelta(days=window_days),
            threshold=threshold,
            stacking_rule=stacking,
        )
        web_metadata.create_all(engine)
        detail = {"window_days": window_days, "threshold": threshold, "view": what}
        AccessLog(engine).write(f"cli:{getpass.getuser()}", "indicators", detail)
    except SchakelError as error:
        _fail(str(error))
    finally:
        engine.dispose()
    return made


@app.callback()
def indicators(
    ctx: typer.Context,
    by: Annotated[By, typer.Option("--by", help="Which indicators.")] = By.all,
    month: Annotated[
        str | None, typer.Option("--month", help="One month YYYY-MM (default: the totals).")
    ] = None,
    window_days: WindowOption = 180,
    threshold: ThresholdOption = 5,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
    database: DatabaseOption = None,
) -> None:
    """How often each indicator was followed by a finding at the same location."""
    if ctx.invoked_subcommand is not None:
        return
    released = _release(database, window_days, threshold, f"by={by.value} month={month}")
    rows = [
        r for r in released.rows if (by is By.all or r.dimension == by.value) and r.month == month
    ]
    if fmt is Format.json:
        document = released.to_json()
        document["rows"] = [r.to_json() for r in rows]
        typer.echo(orjson.dumps(document).decode())
        return
    if fmt is Format.csv:
        fields = list(rows[0].to_json()) if rows else ["dimension", "key", "month"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv(v) for k, v in row.to_json().items()})
        return
    _table(released, rows, month)


def _csv(value: object) -> object:
    if isinstance(value, list):
        return f"{value[0]}-{value[1]}"
    return "" if value is None else value


def _table(released: IndicatorRelease, rows: list[IndicatorRow], month: str | None) -> None:
    from services.cli.output import console, table

    t = released.threshold
    period = month or (
        f"{released.months[0]} to {released.months[-1]}" if released.months else "no data yet"
    )
    shown = table(
        f"Indicators against outcomes, {period} (finding within {released.window_days} days; "
        f"counts below {t} suppressed; sums of published counts)",
        ("by", "indicator", "#positive", "#negative", "#nothing yet", "#precision",
         "95% CI", "#checked prec.", "#lead days"),
    )  # fmt: skip
    for r in rows:
        shown.add_row(
            r.dimension,
            r.key,
            _n(r.positive, t),
            _n(r.negative, t),
            _n(r.none, t),
            _p(r.precision),
            "" if r.precision_low is None else f"{r.precision_low:.3f}-{r.precision_high:.3f}",
            _p(r.checked_precision),
            "" if r.lead_days_median is None else f"{r.lead_days_median:.0f}",
        )
    console().print(shown)
    if not rows:
        console().print("No published counts yet: outcomes arrive weeks after signals.")


def _n(value: int | None, t: int) -> str:
    return f"<{t}" if value is None else str(value)


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@app.command("replay-stacking")
def replay_command(
    min_partner_kinds: Annotated[
        int | None, typer.Option(min=2, max=10, help="Proposed minimum partner kinds.")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Proposed minimum score.")
    ] = None,
    min_strength: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Proposed minimum strength.")
    ] = None,
    stack_window_days: Annotated[
        int | None, typer.Option("--stack-window-days", min=1, max=366, help="Proposed window.")
    ] = None,
    window_days: WindowOption = 180,
    threshold: ThresholdOption = 5,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Keep the result with the rule file (stacking/validation/) and audit it.",
        ),
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    database: DatabaseOption = None,
) -> None:
    """Replay the stacking rule and a proposed change against past signals and outcomes."""
    from services.config import Paths
    from services.database.engine import make_engine
    from services.outcomes.indicators import replay
    from services.outcomes.store import SqlOutcomeStore
    from services.stacking.config_files import load_stacking_config, stacking_files

    paths = Paths.from_env()
    try:
        current = load_stacking_config(paths.covenants)
    except SchakelError as error:
        _fail(str(error))
    wanted = {
        "min_partner_kinds": min_partner_kinds,
        "min_score": min_score,
        "min_strength": min_strength,
        "window_days": stack_window_days,
    }
    proposed = current.model_copy(update={k: v for k, v in wanted.items() if v is not None})
    window = timedelta(days=window_days)
    engine = make_engine(database)
    try:
        store = SqlOutcomeStore(engine)
        store.create_schema()
        now = datetime.now(UTC)
        before = replay(store, current, outcome_window=window, threshold=threshold)
        after = replay(store, proposed, outcome_window=window, threshold=threshold)
        history = _history(store)
    except SchakelError as error:
        _fail(str(error))
    finally:
        engine.dispose()
    result: dict[str, Any] = {
        "rule": f"{current.stacking} version {current.version}",
        "current": before.to_json(),
        "proposed": after.to_json(),
    }
    if record:
        rule_file = stacking_files(paths.covenants)[0]
        result["record"] = str(_record(rule_file, current, proposed, before, after, window_days,
                                       threshold, history, now, database, paths.state))  # fmt: skip
    if fmt is Format.json:
        typer.echo(orjson.dumps(result).decode())
        return
    _replay_table(result, proposed.model_dump(), current.model_dump(), threshold)


def _history(store: Any) -> dict[str, Any]:
    signals = stackable = 0
    first: datetime | None = None
    last: datetime | None = None
    for entry in store.signals():
        signals += 1
        stackable += entry.stackable
        first = entry.time if first is None or entry.time < first else first
        last = entry.time if last is None or entry.time > last else last
    outcomes = store.all_outcomes()
    return {
        "signals": signals,
        "stackable_signals": stackable,
        "findings": sum(1 for o in outcomes if o.outcome_class == "finding"),
        "first_signal": first.date().isoformat() if first else None,
        "last_signal": last.date().isoformat() if last else None,
    }


def _record(
    rule_file: Path,
    current: Any,
    proposed: Any,
    before: Any,
    after: Any,
    window_days: int,
    threshold: int,
    history: dict[str, Any],
    now: datetime,
    database: str | None,
    state: Path,
) -> Path:
    from services.audit.hub_store import hub_signer, open_hub_store
    from services.keys import default_keys_path
    from services.outcomes.validation import replay_record, write_record

    key_path = default_keys_path()
    made = replay_record(
        rule_file=rule_file,
        current_config=current,
        proposed_config=proposed,
        current=before,
        proposed=after,
        outcome_window_days=window_days,
        threshold=threshold,
        history=history,
        now=now,
        by=f"cli:{getpass.getuser()}",
    )
    audit = open_hub_store(database, state, hub_signer(key_path, required=False))
    try:
        return write_record(made, rule_file, audit)
    finally:
        audit.close()


def _replay_table(
    result: dict[str, Any], proposed: dict[str, Any], current: dict[str, Any], t: int
) -> None:
    from services.cli.output import console, table

    changed = {k: v for k, v in proposed.items() if current.get(k) != v}
    shown = table(
        f"Replay of {result['rule']} against past outcomes (proposed: "
        f"{', '.join(f'{k} {v}' for k, v in changed.items()) or 'no change'}; counts below "
        f"{t} suppressed)",
        ("", "#alerts", "#followed by finding", "#precision", "#found locations",
         "#alerted before", "#recall", "#lead days"),
    )  # fmt: skip
    for name in ("current", "proposed"):
        r = result[name]
        shown.add_row(
            name,
            _n(r["alerts"], t),
            _n(r["alerts_followed_by_finding"], t),
            _p(r["precision"]),
            _n(r["found_locations"], t),
            _n(r["found_locations_alerted_before"], t),
            _p(r["recall"]),
            "" if r["lead_days_median"] is None else f"{r['lead_days_median']:.0f}",
        )
    console().print(shown)
    if "record" in result:
        console().print(f"recorded in {result['record']} (audited)", markup=False)


@app.command("model-doc")
def model_doc_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the markdown here (default: stdout), e.g. "
                     "covenants/stacking/iipsy.model.md next to the rule."),
    ] = None,
    window_days: WindowOption = 180,
    database: DatabaseOption = None,
) -> None:  # fmt: skip
    """The stacking rule's model documentation (WGS): what, on which data, how validated, when."""
    from services.config import Paths, check_covenants
    from services.core.outcomes.model_doc import FeedingRule, ModelInputs, render_model_doc
    from services.database.engine import make_engine
    from services.outcomes.indicators import indicator_release
    from services.outcomes.store import SqlOutcomeStore
    from services.outcomes.validation import read_records, sha256_of
    from services.stacking.config_files import load_stacking_config, stacking_files

    paths = Paths.from_env()
    now = datetime.now(UTC)
    try:
        config = load_stacking_config(paths.covenants)
        registry, _, checked = check_covenants(
            paths.covenants, paths.schemas, paths.reference, today=now.date(), demo=paths.demo
        )
    except SchakelError as error:
        _fail(str(error))
    rule_file = stacking_files(paths.covenants)[0]
    feeding = [
        FeedingRule(
            c.loaded.covenant.key, c.rule.id, c.rule.article, tuple(c.rule.from_),
            tuple(c.rule.types), c.loaded.covenant.illustration is not None,
        )
        for c in checked.rules
        if c.rule.stacking and c.loaded.covenant.in_force(now.date())
    ]  # fmt: skip
    types = sorted({t for f in feeding for t in f.types})
    engine = make_engine(database)
    try:
        store = SqlOutcomeStore(engine)
        store.create_schema()
        released = indicator_release(
            store, window=timedelta(days=window_days), stacking_rule=config.stacking
        )
    except SchakelError as error:
        _fail(str(error))
    finally:
        engine.dispose()
    text = render_model_doc(
        ModelInputs(
            config=config,
            rule_file=_shown_path(rule_file),
            rule_sha256=sha256_of(rule_file),
            feeding=feeding,
            strength_fields={t: registry.get(t).strength_field for t in types if t in registry},
            indicators=released,
            validations=read_records(rule_file),
            generated_at=now,
        )
    )
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"model documentation written to {out}")


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
