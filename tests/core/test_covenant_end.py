"""After a covenant ends, refusals name the version that applied last, and a partner's signals
signed under the ended covenant's key say so (``covenant_ended``), not ``unknown_key``."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from services.core.decision import Decision
from services.core.pipeline import process
from services.core.records import rejection_record
from services.demo.keys import DemoSigner
from tests.core.builders import (
    ANOMALY_RULE,
    COVENANTS,
    REGISTRY,
    anomaly,
    covenant_text,
    shipped_policy,
)
from tests.core.builders import policy as build_policy

AFTER = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
V1 = {"version": '"2020.1"', "valid": "{from: 2020-11-01, until: 2025-10-31}"}
V2 = {"version": '"2025.1"', "valid": "{from: 2025-11-01, until: 2026-11-10}"}


def withheld(*texts: str, at: datetime = AFTER) -> list[Decision]:
    p = build_policy(*texts, today=at.date())
    outcome = process(orjson.dumps(anomaly()), REGISTRY, p, at)
    assert outcome.rejection is None, outcome.rejection
    assert outcome.decisions and all(d.result == "withheld" for d in outcome.decisions)
    return outcome.decisions


def test_withheld_after_the_end_cites_the_version_that_ended_last():
    for texts in [
        (covenant_text(ANOMALY_RULE, **V1), covenant_text(ANOMALY_RULE, **V2)),
        (covenant_text(ANOMALY_RULE, **V2), covenant_text(ANOMALY_RULE, **V1)),  # any order
    ]:
        [decision] = withheld(*texts)
        assert decision.reason == "covenant test-covenant@2025.1 expired on 2026-11-10"
        assert decision.rule is not None and decision.rule.covenant_version == "2025.1"


def test_a_revoked_last_version_is_cited_with_its_revocation():
    revoked = "{date: 2026-06-01, reason: partner left}"
    [decision] = withheld(
        covenant_text(ANOMALY_RULE, **V1), covenant_text(ANOMALY_RULE, **V2, revoked=revoked)
    )
    assert decision.reason == "covenant test-covenant@2025.1 was revoked on 2026-06-01"


def test_before_any_version_the_next_one_is_cited():
    later = {"version": '"2027.1"', "valid": "{from: 2027-01-01, until: 2028-12-31}"}
    latest = {"version": '"2029.1"', "valid": "{from: 2029-01-01, until: 2030-12-31}"}
    [decision] = withheld(
        covenant_text(ANOMALY_RULE, **latest), covenant_text(ANOMALY_RULE, **later)
    )
    assert decision.reason == "covenant test-covenant@2027.1 is not in force before 2027-01-01"


def ended_shipped_covenants(tmp: Path) -> Path:
    """``covenants/`` with drugslocaties-nh 2025.1 ending on 2026-11-10 (the issue's case)."""
    target = tmp / "covenants"
    shutil.copytree(COVENANTS, target)
    path = target / "drugslocaties-nh" / "2025.1.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("until: 2030-10-31") == 1
    path.write_text(text.replace("until: 2030-10-31", "until: 2026-11-10"), encoding="utf-8")
    return target


def test_the_shipped_case_cites_2025_1_and_says_the_covenant_ended(tmp_path: Path):
    p = shipped_policy(ended_shipped_covenants(tmp_path), today=date(2026, 11, 15))

    unsigned = process(orjson.dumps(anomaly()), REGISTRY, p, AFTER, expected_source="liander")
    assert unsigned.rejection is None and unsigned.decisions
    for decision in unsigned.decisions:
        assert decision.result == "withheld"
        assert decision.reason == "covenant drugslocaties-nh@2025.1 expired on 2026-11-10"
        assert decision.rule is not None and decision.rule.covenant_version == "2025.1"

    signed = orjson.dumps(DemoSigner()(anomaly(signal_id="liander-after-end")))
    outcome = process(signed, REGISTRY, p, AFTER, expected_source="liander")
    assert outcome.rejection is not None
    assert outcome.rejection.code == "covenant_ended"
    assert outcome.rejection.signal_id == "liander-after-end"
    record = rejection_record(outcome.rejection, actor="test")
    assert record["reason"].startswith("covenant_ended: ")
    assert "drugslocaties-nh@2025.1, which expired on 2026-11-10" in record["reason"]
    assert "2020.1" not in record["reason"]

    before = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # its last day: still delivered
    still = process(signed, REGISTRY, p, before, expected_source="liander")
    assert still.rejection is None and any(d.delivered for d in still.decisions)


def test_a_forged_signal_under_the_ended_key_is_a_bad_signature(tmp_path: Path):
    p = shipped_policy(ended_shipped_covenants(tmp_path), today=date(2026, 11, 15))
    forged = orjson.loads(orjson.dumps(DemoSigner()(anomaly())))
    forged["data"]["score"] = 0.5
    outcome = process(orjson.dumps(forged), REGISTRY, p, AFTER, expected_source="liander")
    assert outcome.rejection is not None and outcome.rejection.code == "bad_signature"
