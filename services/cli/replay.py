"""``schakel replay``: who would have received what, without a broker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from services.cli.output import console, print_problems, table
from services.cli.progress import progress
from services.config import Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.replay.runner import ReplaySummary, replay

EXAMPLE_INPUT = Path(__file__).resolve().parents[2] / "examples" / "signals.jsonl"


def replay_command(
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help="JSON-lines signals ('-' for stdin).")
    ] = EXAMPLE_INPUT,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for feeds, audit and dead letters.")
    ] = Path("out/replay"),
    covenants: Annotated[
        list[Path] | None, typer.Option("--covenants", "-c", help="Covenant files or folders.")
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            help="Key store (created when missing; default $SCHAKEL_KEYS or var/keys.json)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Decide as of this RFC 3339 time, or 'signal' for each signal's own time."
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="As a hub in demo mode: accept the demo partners' TEST keys, which sign the "
            "example signals (default: SCHAKEL_DEMO).",
        ),
    ] = False,
) -> None:
    """Run a file of signals through the covenants exactly as the router would."""
    paths = Paths.from_env()
    err = console(stderr=True)
    key_path = keys or default_keys_path()
    if key_path.exists():
        store = FileKeyStore.open(key_path)
    else:
        store = FileKeyStore.create(key_path)
        err.print(f"created a new key store at {key_path} (pseudonyms are stable from now on)")
    decide_at = None if at is None or at == "signal" else _parse_time(at)
    today = (decide_at or datetime.now(UTC)).date() if at != "signal" else date.min
    loaded = load_policy(
        covenants or list(paths.covenants),
        paths.schemas,
        paths.reference,
        Pseudonymiser(store),
        today=today,
        demo=demo or paths.demo,
    )
    print_problems(loaded.checked.problems, err)
    if loaded.policy is None:
        err.print("[red]covenants have errors; run `schakel covenant check` for details[/red]")
        raise typer.Exit(1)
    for cov in loaded.policy.covenants:
        if cov.illustration:
            err.print(
                f"{cov.key} is an ILLUSTRATION, not the text of a signed covenant",
                markup=False,
            )
    if loaded.checked.demo:
        err.print("demo mode: TEST keys are accepted", style="yellow", markup=False)
    with progress("replaying signals", _count_lines(input_file)) as told:
        summary = replay(
            _lines(input_file),
            loaded.registry,
            loaded.policy,
            out,
            clock=lambda: datetime.now(UTC),
            at=decide_at,
            use_signal_time=at == "signal",
            progress=told,
        )
    _print_summary(summary, out)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            "use an RFC 3339 time such as 2026-11-22T12:00:00Z, or 'signal'"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs an offset, e.g. Z or +01:00")
    return moment


def _count_lines(path: Path) -> int | None:
    """Lines in ``path`` (the progress total; blank ones included), None for stdin."""
    if str(path) == "-":
        return None
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None  # _lines says what is wrong


def _lines(path: Path) -> Iterator[bytes]:
    if str(path) == "-":
        yield from sys.stdin.buffer
        return
    try:
        with path.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def _print_summary(summary: ReplaySummary, out_dir: Path) -> None:
    out = console()
    recipients = table("Decisions per recipient", ["recipient", "# delivered", "# withheld"])
    for recipient in sorted(set(summary.delivered) | set(summary.withheld)):
        recipients.add_row(
            recipient, str(summary.delivered[recipient]), str(summary.withheld[recipient])
        )
    out.print(recipients)
    if summary.withheld_reasons:
        reasons = table("Why withheld", ["reason", "# decisions"])
        for reason, count in summary.withheld_reasons.most_common():
            reasons.add_row(reason, str(count))
        out.print(reasons)
    if summary.rejections:
        dead = table("Dead letters", ["code", "# signals"])
        for code, count in summary.rejections.most_common():
            dead.add_row(code, str(count))
        out.print(dead)
    rate = summary.signals / summary.seconds if summary.seconds else 0.0
    out.print(
        f"{summary.signals} signals ({summary.rejected} rejected) in {summary.seconds:.2f} s "
        f"({rate:,.0f}/s); wrote {out_dir}/feeds/, {out_dir}/audit.jsonl, {out_dir}/dead-letters.jsonl"
    )
