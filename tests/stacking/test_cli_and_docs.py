"""``schakel stacking alerts`` and the examples in docs/stacking.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.stacking.config import parse_stacking
from services.database.engine import make_engine
from services.demo.generator import generate
from services.stacking.store import SqlStackingStore
from tests.conftest import ROOT
from tests.stacking.helpers import NOW, make_hub, records

DOC = (ROOT / "docs" / "stacking.md").read_text(encoding="utf-8")


def test_alerts_are_listed_by_pseudonym_municipality_and_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", url)
    traffic = generate(1500, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)
    hub = make_hub()
    store = SqlStackingStore(make_engine(url))
    store.create_schema()
    store.write(hub.step().run(records(traffic.signals), NOW).changes)
    expected = store.alerts()
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["stacking", "alerts", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = orjson.loads(result.stdout)
    assert [a["alert_id"] for a in listed] == [a.alert_id for a in expected]
    assert {a["location"] for a in listed} <= {hub.location(p.address) for p in traffic.planted}
    place = listed[0]["municipality"]
    result = runner.invoke(app, ["stacking", "alerts", "--municipality", place])
    assert result.exit_code == 0 and place in result.stdout
    text = result.stdout + orjson.dumps(listed).decode()
    for site in traffic.planted:
        assert site.address not in text and site.ean not in text


def test_the_documented_stacking_file_is_valid() -> None:
    [example] = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)
    loaded = parse_stacking(example, "docs/stacking.md")
    assert loaded.problems == () and loaded.config is not None
    shipped = parse_stacking(
        (ROOT / "covenants" / "stacking" / "iipsy.yaml").read_text(encoding="utf-8"), "iipsy"
    ).config
    assert shipped is not None
    assert loaded.config.model_dump(exclude={"strength"}) == shipped.model_dump(
        exclude={"strength"}
    )
