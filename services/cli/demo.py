"""``schakel demo``: make realistic Noord-Holland signal traffic for demos, replays and tests."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer

from services.cli.output import console
from services.cli.progress import progress
from services.demo.generator import TRUTH_WARNING, DemoTraffic, generate, to_jsonl, truth

app = typer.Typer(
    help="Simulated partners: realistic, deterministic demo signal traffic (test data only).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

STDOUT = Path("-")


@app.callback()
def demo() -> None:
    """Simulated partners sending realistic Noord-Holland signals (fake identifiers)."""


def _parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use an RFC 3339 time such as 2026-09-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("the start time needs an offset, e.g. Z or +02:00")
    return moment


def _write(path: Path, content: bytes) -> None:
    if path == STDOUT:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


@app.command("generate")
def generate_command(
    *,
    count: Annotated[int, typer.Option(min=0, help="Number of valid signals.")] = 3000,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same file.")
    ] = 2026,
    start: Annotated[
        str, typer.Option(help="Start of the time window, RFC 3339 with offset.")
    ] = "2026-09-01T00:00:00Z",
    days: Annotated[int, typer.Option(min=1, help="Length of the time window in days.")] = 60,
    malformed_ratio: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Broken lines to add, as a fraction of --count."),
    ] = 0.0,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="JSON-lines output ('-': stdout).")
    ] = STDOUT,
    truth_file: Annotated[
        Path | None,
        typer.Option("--truth", help="Also write the ground truth (planted sites) as JSON."),
    ] = None,
    outcomes: Annotated[
        bool,
        typer.Option(
            "--outcomes",
            help="Add what came of the signals: police findings weeks later, checks that "
            "found nothing, the OM's approvals, measures (docs/outcomes.md).",
        ),
    ] = False,
) -> None:
    """Generate signal traffic as JSON lines, with planted production sites to find."""
    err = console(stderr=True)
    moment = _parse_start(start)
    with progress("generating demo signals", count) as told:
        traffic = generate(
            count,
            seed=seed,
            start=moment,
            days=days,
            malformed_ratio=malformed_ratio,
            progress=told,
            outcomes=outcomes,
        )
    _write(out, to_jsonl(traffic))
    types = Counter(str(envelope["type"]) for envelope in traffic.signals)
    err.print(
        f"{len(traffic.signals)} signals ({len(types)} types), {len(traffic.malformed)} broken "
        f"lines, {len(traffic.planted)} planted sites, {len(traffic.decoys)} decoys"
        + (
            f", {len(traffic.outcomes)} outcomes ({_after(traffic)} after the window)"
            if outcomes
            else ""
        )
        + ("" if out == STDOUT else f" -> {out}"),
        markup=False,
    )
    if truth_file is not None:
        _write(truth_file, orjson.dumps(truth(traffic), option=orjson.OPT_INDENT_2) + b"\n")
        err.print(f"ground truth -> {truth_file}", markup=False)
        err.print(f"WARNING: {TRUTH_WARNING}", style="yellow", markup=False)


def _after(traffic: DemoTraffic) -> int:
    """Outcomes later than the window (what came of its last signals comes weeks later)."""
    end = traffic.start + timedelta(days=traffic.days)
    return sum(1 for o in traffic.outcomes if datetime.fromisoformat(str(o["time"])) >= end)
