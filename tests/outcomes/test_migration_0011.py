"""Revision 0011 on an outcome index written at 0010: every row stays, gets a receipt time
(its own time, the best the hub knows of it), and a second approval of the same outcome can be
stored next to the first; the downgrade keeps the first approval of each."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from services.database.engine import make_engine
from services.database.migrate import alembic_config


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        found: str = request.getfixturevalue("postgres_url")
        return found
    return f"sqlite:///{tmp_path}/audit.db"


def _run(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = conn.execute(text(statement))
                if result.returns_rows:
                    rows += [tuple(r) for r in result]
            return rows
    finally:
        engine.dispose()


def test_0011_adds_receipt_times_and_keys_every_approval(url: str) -> None:
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0010")
    _run(
        url,
        "INSERT INTO outcome_signals VALUES ('liander', 'l-1', 'energy.consumption_anomaly.v1', "
        "100, 'energy', 'GM0361', 0.9, true, NULL, 'r', 999)",
        "INSERT INTO outcome_events VALUES ('politie-nh', 'p-1', 'police.location_finding.v1', "
        "'finding', 200, 'GM0361', '{}', '[]', '{}', 'r', NULL, 999)",
        "INSERT INTO outcome_approvals VALUES ('politie-nh', 'p-1', 'om-nh', 'approved', "
        "'om-1', 300)",
    )
    command.upgrade(config, "0011")
    assert _run(
        url,
        "SELECT received_us FROM outcome_signals UNION ALL "
        "SELECT received_us FROM outcome_events UNION ALL "
        "SELECT received_us FROM outcome_approvals",
    ) == [(100,), (200,), (300,)]
    _run(
        url,
        "INSERT INTO outcome_approvals VALUES ('politie-nh', 'p-1', 'om-nh', 'approved', "
        "'om-2', 400, 400)",
    )
    assert len(_run(url, "SELECT signal_id FROM outcome_approvals")) == 2
    command.downgrade(config, "0010")
    assert _run(url, "SELECT signal_id FROM outcome_approvals") == [("om-1",)]
    assert _run(url, "SELECT count(*) FROM outcome_signals") == [(1,)]
