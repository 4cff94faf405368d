"""`schakel coverage` (ingest, show as table/csv/json, publish) against a real database."""

from __future__ import annotations

import csv
import io
import re

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from services.cli.main import app
from services.coverage.store import SqlCoverageStore
from services.database.engine import make_engine
from services.web.access_log import AccessLog

runner = CliRunner()


@pytest.fixture
def database(tmp_path, monkeypatch, raw):
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("SCHAKEL_COVENANTS", raising=False)
    monkeypatch.setenv("SCHAKEL_DEMO", "1")  # the demo traffic is signed with TEST keys
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    signals = tmp_path / "signals.jsonl"
    signals.write_bytes(b"\n".join(raw) + b"\nnot json\n")
    result = runner.invoke(app, ["coverage", "ingest", str(signals), "--database", url])
    assert result.exit_code == 0, result.output
    assert f"{len(raw) + 1} signals read" in result.output
    return url


def _counts(url: str, month: str):
    engine = make_engine(url)
    try:
        return SqlCoverageStore(engine).counts([month])
    finally:
        engine.dispose()


def test_json_shows_the_suppressed_release_and_ranking(database):
    result = runner.invoke(
        app, ["coverage", "--month", "2026-10", "--format", "json", "--database", database]
    )
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.stdout)
    assert shown["month"] == "2026-10" and shown["threshold"] == 5
    true = _counts(database, "2026-10")
    rows = [r for r in shown["rows"] if r["month"] == "2026-10"]
    assert len(rows) == 44
    for row in rows:
        for category in ("reports", "indicators"):
            count = true[(row["municipality"], "2026-10", category)]
            assert row[category] == (count if count >= 5 else None)
    gaps = [g["gap"] for g in shown["ranking"]]
    assert gaps == sorted(gaps, reverse=True) and gaps
    assert len(shown["months"]) == 12 and shown["months"][-1] == "2026-10"


def test_csv_and_table_show_small_counts_as_below_the_threshold(database):
    result = runner.invoke(
        app, ["coverage", "--month", "2026-10", "--format", "csv", "--database", database]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 44
    true = _counts(database, "2026-10")
    for row in rows:
        count = true[(row["municipality"], "2026-10", "reports")]
        assert row["reports"] == (str(count) if count >= 5 else "<5")
    ranked = [r for r in rows if r["rank"]]
    assert [int(r["rank"]) for r in ranked] == list(range(1, len(ranked) + 1))

    table = runner.invoke(app, ["coverage", "--database", database, "--threshold", "8"])
    assert table.exit_code == 0, table.output
    assert "counts below 8 suppressed" in table.output and "<8" in table.output

    engine = make_engine(database)
    logged = [e for e in AccessLog(engine).entries() if e.route == "coverage"]
    engine.dispose()
    assert len(logged) == 2 and logged[0].user.startswith("cli:")


def test_a_bad_month_is_refused_with_the_fix(database):
    result = runner.invoke(app, ["coverage", "--month", "10-2026", "--database", database])
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_publish_without_a_hub_says_how_to_start_one(database):
    result = runner.invoke(
        app, ["coverage", "publish", "--month", "2026-10", "--database", database]
    )
    assert result.exit_code == 2
    assert "schakel up" in result.output


def test_publish_releases_to_the_campaign_feed_on_a_real_broker(
    database, kafka_settings, topic_admin, monkeypatch, tmp_path
):
    assert (tmp_path / "keys.json").exists()  # made by `coverage ingest`; signs checkpoints
    monkeypatch.setenv("SCHAKEL_KAFKA_BOOTSTRAP", kafka_settings.bootstrap_servers[0])
    monkeypatch.setenv("SCHAKEL_AUDIT_WITNESS", str(tmp_path / "witness.jsonl"))
    topic = "feed.campagneteam-nh"
    topic_admin.ensure_topics({topic: 1})
    result = runner.invoke(
        app, ["coverage", "publish", "--month", "2026-10", "--database", database]
    )
    assert result.exit_code == 0, result.output
    assert "published coverage 2026-10 to feed.campagneteam-nh" in result.output
    exchange = result.output.split("exchange ", 1)[1].split(" ", 1)[0]

    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(
            topic, auto_offset_reset="earliest", **kafka_settings.client_kwargs_aiokafka()
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
            return [orjson.loads(m.value) for ms in batch.values() for m in ms]
        finally:
            await consumer.stop()

    import asyncio

    messages = asyncio.run(read())
    assert exchange in {m["exchange_id"] for m in messages}

    from services.audit.store import SqlAuditStore

    store = SqlAuditStore(make_engine(database))
    try:
        record = store.get(exchange)
        assert record is not None and record["recipient"] == "campagneteam-nh"
    finally:
        store.close()


def test_unasked_the_table_says_which_month_it_shows_and_why(database):
    result = runner.invoke(app, ["coverage", "--database", database], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = re.search(
        r"Showing (\d{4}-\d{2}): the newest month with published counts", result.output
    )
    assert shown, result.output
    assert f"Coverage {shown.group(1)}: report gap" in result.output
