"""Run every benchmark in bench/ and print one table (``make bench``, ``make bench-quick``).

The convention a benchmark follows to appear here:

* it is a script ``bench/<name>.py`` that measures the hub and a baseline **in the same run**;
* with ``--json`` it prints its result as JSON on stdout — one object, or a list of objects,
  per line — each with ``name``, ``hub``, ``baseline``, ``unit``, ``ratio`` (hub/baseline),
  ``target`` (text, or a mapping of target -> met) and ``pass`` (true, false, or null for a
  row that has no target of its own), and ``checked``: the counts it verified before printing
  the figure (signals, deliveries, audit records, dead letters ...; see bench/verify.py). A row
  without them is shown as an error, not a figure. Optional ``hub_cpu_us`` / ``baseline_cpu_us``
  (CPU µs per unit) fill the CPU column. Anything else it prints goes to stderr or is ignored;
* a benchmark that finds the work it timed not done prints no figure and exits 3
  (``bench.verify.refusing``); its row reads REFUSED with the reason;
* two module-level literals give its sizes: ``BENCH_QUICK_ARGS = ["--signals", "2000"]`` for
  ``make bench-quick`` (seconds, to check the harness) and optionally ``BENCH_ARGS`` for
  ``make bench`` (default: no arguments, the script's own defaults). They are read from the
  source text, never by importing it. Scripts that do not declare them use ``FALLBACK_ARGS``.

``make bench`` (``--write-docs``) also rewrites the summary table at the top of
docs/performance.md (between the ``bench:begin``/``bench:end`` markers) with the machine's
core count, and each benchmark's command, time and load average; the analysis below the table
is left alone. It leaves the document alone when any benchmark failed or refused: the table
only ever holds checked figures. Raw results go to ``out/bench/results.json``, and each
benchmark's last checked rows to ``out/bench/latest/``: ``--only router --write-docs`` re-runs
one benchmark (say, after a refusal on a busy machine) and keeps the others' last rows, each
with its own time in the list under the table.

    .venv/bin/python bench/run.py [--quick] [--write-docs] [--only core,router] [--timeout S]
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SKIP = {"run.py"}
MODULES = {"verify.py", "observe.py", "workload.py", "sides.py"}
"""Shared code of the benchmarks, not benchmarks."""
REFUSED_EXIT = 3  # bench.verify.REFUSED_EXIT (not imported: run.py runs without the hub)
FALLBACK_ARGS: dict[str, dict[str, list[str]]] = {
    # scripts that predate the BENCH_*_ARGS convention (or belong to another change)
    "audit.py": {"quick": ["--records", "5000"], "full": ["--records", "200000", "--postgres"]},
    "stacking.py": {"quick": ["--signals", "2000", "--tracked", "5000"], "full": []},
    "scale.py": {"quick": ["--signals", "1500"], "full": []},
}


@dataclass
class Row:
    bench: str
    name: str
    hub: float | None
    baseline: float | None
    unit: str
    ratio: float | None
    target: str
    passed: bool | None
    notes: str = ""
    error: str = ""
    seconds: float = 0.0
    cpu: str = ""
    checked: dict[str, Any] | None = None
    refused: bool = False
    raw: dict[str, Any] | None = None
    """Everything the script printed for this row (counts, extra figures)."""
    command: str = ""
    measured: str = ""
    """When the script finished, and the load average then."""

    @property
    def verdict(self) -> str:
        if self.refused:
            return "REFUSED"
        if self.error:
            return "ERROR"
        return {True: "pass", False: "FAIL", None: "-"}[self.passed]


def declared_args(script: Path, quick: bool) -> list[str]:
    """``BENCH_QUICK_ARGS`` / ``BENCH_ARGS`` from the script's source, else the fallback."""
    wanted = "BENCH_QUICK_ARGS" if quick else "BENCH_ARGS"
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == wanted for t in targets) and node.value:
                return [str(a) for a in ast.literal_eval(node.value)]
    return FALLBACK_ARGS.get(script.name, {}).get("quick" if quick else "full", [])


def _number(row: dict[str, Any], key: str) -> float | None:
    """``hub``/``baseline``, or the first ``hub_*``/``baseline_*`` figure a script reports."""
    value = row.get(key)
    if value is None:
        value = next((v for k, v in row.items() if k.startswith(f"{key}_")), None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unit(row: dict[str, Any]) -> str:
    if isinstance(row.get("unit"), str):
        return str(row["unit"])
    key = next((k for k in row if k.startswith("hub_")), "")
    return key.removeprefix("hub_").replace("_per_s", "/s").replace("_", " ") or "records/s"


def _target(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} ({'met' if ok else 'missed'})" for k, ok in value.items())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f">= {value:,.0f}"
    return str(value or "-")


def rows_from(bench: str, payload: Any, seconds: float) -> list[Row]:
    items = payload if isinstance(payload, list) else [payload]
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name = item.get("name") or item.get("benchmark") or bench
        if "database" in item and "name" not in item:
            name = f"{bench} ({item['database']})"
        hub, base = _number(item, "hub"), _number(item, "baseline")
        ratio = item.get("ratio")
        if not isinstance(ratio, int | float) and hub and base:
            ratio = hub / base
        passed = item.get("pass")
        checked = item.get("checked")
        if not isinstance(checked, dict) or not checked:
            out.append(
                error_row(bench, f"{name}: a figure without the counts it checked (see verify.py)")
            )
            continue
        out.append(
            Row(
                bench,
                str(name),
                hub,
                base,
                _unit(item),
                float(ratio) if isinstance(ratio, int | float) else None,
                _target(item.get("target", item.get("targets"))),
                passed if isinstance(passed, bool) else None,
                notes=", ".join(
                    f"{k} {v if v is not None else 'n/a'}"
                    for k, v in item.items()
                    if k.endswith("_ms") and k not in ("hub", "baseline")
                ),
                seconds=seconds,
                cpu=_cpu(item),
                checked=checked,
                raw=item,
            )
        )
    return out


def _cpu(row: dict[str, Any]) -> str:
    """``hub / baseline`` CPU µs per unit, where the script reports them."""
    figures = [row.get("hub_cpu_us"), row.get("baseline_cpu_us")]
    shown = [f"{v:,.0f}" if isinstance(v, int | float) else "-" for v in figures]
    return "" if figures == [None, None] else " / ".join(shown)


def run_one(script: Path, quick: bool, timeout: float) -> list[Row]:
    command = [sys.executable, str(script), "--json", *declared_args(script, quick)]
    shown = " ".join([f"bench/{script.name}", *command[2:]])
    print(f"$ {shown}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - our own scripts, argv list
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return [error_row(script.stem, f"timed out after {timeout:.0f} s")]
    seconds = time.monotonic() - started
    rows = []
    for line in done.stdout.splitlines():
        if line.startswith(("{", "[")):
            try:
                rows.extend(rows_from(script.stem, orjson.loads(line), seconds))
            except orjson.JSONDecodeError:
                continue
    if done.returncode == REFUSED_EXIT:
        reason = next(
            (line for line in reversed(done.stderr.splitlines()) if "REFUSED" in line),
            "the work it timed was not done",
        )
        refused = error_row(script.stem, reason.strip()[:300])
        refused.refused = True
        rows = [refused]  # and no figure, whatever it printed
    elif done.returncode != 0 or not rows:
        tail = (done.stderr.strip().splitlines() or ["no JSON result on stdout"])[-1]
        rows.append(error_row(script.stem, f"exit {done.returncode}: {tail[:160]}"))
    measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}"
    for row in rows:
        row.command, row.measured = shown, measured
    return rows


def error_row(bench: str, message: str) -> Row:
    return Row(bench, bench, None, None, "", None, "-", None, error=message)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def table(rows: list[Row], markdown: bool) -> str:
    head = [
        "benchmark",
        "hub",
        "baseline",
        "unit",
        "ratio",
        "CPU µs (hub / baseline)",
        "target",
        "result",
        "notes",
    ]
    body = [
        [
            r.name,
            _figure(r.hub),
            _figure(r.baseline),
            r.unit,
            "-" if r.ratio is None else f"{r.ratio:.3g}",
            r.cpu or "-",
            (r.error or r.target).replace("|", "\\|") if markdown else r.error or r.target,
            f"**{r.verdict}**" if markdown and r.verdict in ("FAIL", "REFUSED") else r.verdict,
            r.notes or "",
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*cells) for cells in body]
    )


def machine() -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores (load average {load} at the end), Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_doc(rows: list[Row], quick: bool) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC}: markers {BEGIN} / {END} are missing; put them around the table")
    size = "quick sizes" if quick else "full sizes"
    command = " ".join(["bench/run.py", *sys.argv[1:]])
    runs = {r.bench: (r.command, r.measured) for r in rows}
    provenance = "\n".join(
        f"- `{bench}`: `{cmd}`, finished {when}" for bench, (cmd, when) in sorted(runs.items())
    )
    block = (
        f"{BEGIN}\nWritten by `{command}` ({size}) on {machine()}. Ratio = hub / baseline, "
        "both measured in the same run. Every figure was printed only after its script counted "
        "the work it timed (rows in the store, messages on the broker) and found what the "
        "workload implies (bench/verify.py); the counts are in `out/bench/results.json`.\n\n"
        f"{table(rows, markdown=True)}\n\nEach benchmark's command and when it ran:\n\n"
        f"{provenance}\n{END}"
    )
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(head + block + rest.split(END, 1)[1], encoding="utf-8")


def remember(out: Path, rows: list[Row], quick: bool) -> None:
    """Keep each benchmark's checked rows of this run, for a later ``--only`` run's table."""
    latest = out / ("latest-quick" if quick else "latest")
    latest.mkdir(parents=True, exist_ok=True)
    for bench in {r.bench for r in rows}:
        mine = [vars(r) for r in rows if r.bench == bench]
        if not any(r["error"] for r in mine):
            (latest / f"{bench}.json").write_bytes(orjson.dumps(mine, option=orjson.OPT_INDENT_2))


def with_earlier(out: Path, rows: list[Row], quick: bool) -> list[Row]:
    """``rows`` plus the last checked rows of every benchmark this run did not run."""
    ran = {r.bench for r in rows}
    earlier: list[Row] = []
    for path in sorted((out / ("latest-quick" if quick else "latest")).glob("*.json")):
        if path.stem not in ran:
            earlier.extend(Row(**item) for item in orjson.loads(path.read_bytes()))
    return sorted(rows + earlier, key=lambda r: r.bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/performance.md")
    parser.add_argument("--only", default="", help="comma-separated script names (core,router)")
    parser.add_argument("--timeout", type=float, default=0, help="per script (s); 0 = default")
    args = parser.parse_args()
    only = {n.strip().removesuffix(".py") for n in args.only.split(",") if n.strip()}
    timeout = args.timeout or (600.0 if args.quick else 7200.0)
    scripts = [
        p
        for p in sorted(BENCH.glob("*.py"))
        if p.name not in SKIP | MODULES
        and not p.name.startswith("_")
        and (not only or p.stem in only)
    ]
    rows: list[Row] = []
    for script in scripts:
        rows.extend(run_one(script, args.quick, timeout))
    print(f"\n{machine()}\n{table(rows, markdown=False)}")
    out = ROOT / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(
        orjson.dumps(
            {"machine": machine(), "quick": args.quick, "rows": [vars(r) for r in rows]},
            option=orjson.OPT_INDENT_2,
        )
    )
    remember(out, rows, args.quick)
    failed = [r for r in rows if r.error]
    if args.write_docs and failed:
        print(
            f"left {DOC.relative_to(ROOT)} alone: {len(failed)} benchmark(s) failed or refused "
            f"({', '.join(sorted({r.bench for r in failed}))}); the table holds checked figures only",
            file=sys.stderr,
        )
    elif args.write_docs:
        write_doc(with_earlier(out, rows, args.quick) if only else rows, args.quick)
        print(f"wrote the summary table of {DOC.relative_to(ROOT)}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
