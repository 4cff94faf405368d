"""bench/run.py: only checked figures reach the table and docs/performance.md."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from bench import run

pytestmark = pytest.mark.timeout(60)

CHECKED = {"signals": 10, "deliveries": 30, "audit_records": 30, "dead_letters": 0}
FIGURE = {"name": "x", "hub": 5, "baseline": 10, "unit": "signals/s", "ratio": 0.5, "pass": True}


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(f"import sys\n{body}\n", encoding="utf-8")
    return path


def test_a_checked_figure_is_a_row_with_its_cpu_column(tmp_path: Path) -> None:
    row = {**FIGURE, "checked": CHECKED, "hub_cpu_us": 336.4, "baseline_cpu_us": 31.0}
    path = script(tmp_path, "good", f"print({orjson.dumps(row).decode()!r})")
    [good] = run.run_one(path, quick=True, timeout=30)
    assert good.verdict == "pass"
    assert good.checked == CHECKED
    assert good.cpu == "336 / 31"


def test_a_figure_without_the_counts_it_checked_is_an_error_not_a_row(tmp_path: Path) -> None:
    path = script(tmp_path, "unchecked", f"print({orjson.dumps(FIGURE).decode()!r})")
    [row] = run.run_one(path, quick=True, timeout=30)
    assert row.verdict == "ERROR"
    assert row.hub is None
    assert "without the counts it checked" in row.error


def test_a_refused_benchmark_shows_its_reason_and_none_of_its_figures(tmp_path: Path) -> None:
    figure = orjson.dumps({**FIGURE, "checked": CHECKED}).decode()
    body = (
        f"print({figure!r})\n"  # a figure printed before the refusal must not count either
        "print('router.py: REFUSED, no figure printed: deliveries: expected 30, found 0', "
        "file=sys.stderr)\nsys.exit(3)"
    )
    [row] = run.run_one(script(tmp_path, "refused", body), quick=True, timeout=30)
    assert row.verdict == "REFUSED"
    assert row.hub is None
    assert "deliveries: expected 30, found 0" in row.error


def test_write_docs_leaves_the_document_alone_when_a_benchmark_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    benches = tmp_path / "bench"
    benches.mkdir()
    good = orjson.dumps({**FIGURE, "checked": CHECKED}).decode()
    script(benches, "good", f"print({good!r})")
    script(
        benches, "broken", "print('x: REFUSED, no figure printed: y', file=sys.stderr)\nsys.exit(3)"
    )
    doc = tmp_path / "performance.md"
    before = f"intro\n{run.BEGIN}\nold table\n{run.END}\nanalysis\n"
    doc.write_text(before, encoding="utf-8")
    monkeypatch.setattr(run, "BENCH", benches)
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "DOC", doc)
    monkeypatch.setattr(sys, "argv", ["run.py", "--write-docs", "--quick"])
    with pytest.raises(SystemExit) as exited:
        run.main()
    assert exited.value.code == 1
    assert doc.read_text(encoding="utf-8") == before
    rows = orjson.loads((tmp_path / "out" / "bench" / "results.json").read_bytes())["rows"]
    assert {r["bench"]: r["refused"] for r in rows} == {"broken": True, "good": False}


def test_write_docs_writes_the_table_when_every_figure_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    benches = tmp_path / "bench"
    benches.mkdir()
    row = orjson.dumps({**FIGURE, "name": "checked thing", "checked": CHECKED}).decode()
    script(benches, "good", f"print({row!r})")
    doc = tmp_path / "performance.md"
    doc.write_text(f"intro\n{run.BEGIN}\nold table\n{run.END}\nanalysis\n", encoding="utf-8")
    monkeypatch.setattr(run, "BENCH", benches)
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "DOC", doc)
    monkeypatch.setattr(sys, "argv", ["run.py", "--write-docs", "--quick"])
    run.main()
    text = doc.read_text(encoding="utf-8")
    assert "| checked thing | 5 | 10 | signals/s | 0.5 |" in text
    assert "old table" not in text
    assert text.startswith("intro\n") and text.endswith("analysis\n")


def test_only_re_runs_one_benchmark_and_keeps_the_others_last_checked_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    benches = tmp_path / "bench"
    benches.mkdir()

    def bench(name: str, hub: int) -> None:
        row = orjson.dumps({**FIGURE, "name": f"{name} row", "hub": hub, "checked": CHECKED})
        script(benches, name, f"print({row.decode()!r})")

    bench("first", 111)
    bench("second", 222)
    doc = tmp_path / "performance.md"
    doc.write_text(f"{run.BEGIN}\n{run.END}\n", encoding="utf-8")
    monkeypatch.setattr(run, "BENCH", benches)
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "DOC", doc)
    monkeypatch.setattr(sys, "argv", ["run.py", "--write-docs"])
    run.main()
    bench("second", 333)
    bench("first", 999)  # not re-run below: its earlier row stays
    monkeypatch.setattr(sys, "argv", ["run.py", "--write-docs", "--only", "second"])
    run.main()
    text = doc.read_text(encoding="utf-8")
    assert "| first row | 111 |" in text
    assert "| second row | 333 |" in text
    assert "999" not in text and "| second row | 222 |" not in text
    assert "- `first`: `bench/first.py --json`, finished " in text
    assert "- `second`: `bench/second.py --json`, finished " in text
