"""No leaf of a delivered feed message is more precise than its rule allows — envelope included.

Over random covenants (random shares and ``envelope`` blocks) and random signals (times in
various offsets), every value of every feed message is checked against what the rule says,
worked out here independently of the policy: the top-level keys, the keyed exchange id, the
type, the source, the time at exactly the precision the rule (or its default) gives, and each
data leaf in the form of its share spec.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.core.decision import exchange_id
from services.core.records import audit_record, feed_message
from tests.core.builders import NOW, keys, policy, signal
from tests.fuzz.strategies import fuzz_settings
from tests.properties.generators import RECIPIENTS, GeneratedRule, anomalies, covenants

KEYS = keys()
DUTCH = ZoneInfo("Europe/Amsterdam")
FINEST_FIRST = (
    "keep",
    "generalise:hour",
    "generalise:day",
    "generalise:week",
    "generalise:month",
    "generalise:year",
    "omit",
)
ALWAYS = {"exchange_id", "type", "covenant", "data", "retention_days", "reidentify"}
PSEUDONYM = re.compile(r"[pr][1-9][0-9]*\.[A-Za-z0-9_-]+")
BAND = re.compile(r"\[(-?[0-9.]+),(-?[0-9.]+)\)")
DATA_FORMS = {
    "pseudonymise": PSEUDONYM,
    "generalise:postcode4": re.compile(r"[0-9]{4}"),
    "generalise:week": re.compile(r"[0-9]{4}-W[0-9]{2}"),
    "generalise:month": re.compile(r"[0-9]{4}-[0-9]{2}"),
}


def expected_time_spec(rule: GeneratedRule) -> str:
    """The rule's envelope time: as written, else the day or a coarser share generalisation."""
    if "time" in rule.envelope:
        return rule.envelope["time"]
    coarsest = "generalise:day"
    for spec in rule.share.values():
        if spec in FINEST_FIRST and FINEST_FIRST.index(spec) > FINEST_FIRST.index(coarsest):
            coarsest = spec
    return coarsest


def expected_time(spec: str, sent: str) -> str | None:
    local = datetime.fromisoformat(sent).astimezone(DUTCH)
    year, week, _ = local.isocalendar()
    return {
        "omit": None,
        "generalise:hour": local.replace(minute=0, second=0, microsecond=0).isoformat(),
        "generalise:day": local.date().isoformat(),
        "generalise:week": f"{year}-W{week:02d}",
        "generalise:month": f"{local.year:04d}-{local.month:02d}",
        "generalise:year": f"{local.year:04d}",
    }[spec]


def leaves(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            out.extend(leaves(item, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", item))
    return out


def spec_for(path: str, share: dict[str, str]) -> str | None:
    while True:
        if path in share:
            return share[path]
        if "." not in path:
            return None
        path = path.rsplit(".", 1)[0]


def assert_data_leaf(path: str, value: Any, share: dict[str, str]) -> None:
    spec = spec_for(path, share)
    assert spec is not None, f"data.{path} is not shared"
    if spec in ("keep", "plain"):  # the value as validated: nothing to be finer than
        return
    if spec.startswith("generalise:band:"):
        width = float(spec.removeprefix("generalise:band:"))
        match = BAND.fullmatch(str(value))
        assert match, f"data.{path}={value!r} is not a band"
        assert abs(float(match[2]) - float(match[1]) - width) < 1e-9
        return
    assert DATA_FORMS[spec].fullmatch(str(value)), f"data.{path}={value!r} is finer than {spec}"


def assert_envelope(message: dict[str, Any], rule: GeneratedRule, sent: dict[str, Any]) -> None:
    keys_ = set(message)
    assert ALWAYS <= keys_ <= ALWAYS | {"source", "time"}, sorted(keys_)
    assert message["type"] == sent["type"]
    if rule.envelope.get("source") == "omit":
        assert "source" not in message
    else:
        assert message["source"] == sent["source"]
    spec = expected_time_spec(rule)
    if spec == "keep":
        assert datetime.fromisoformat(message["time"]) == datetime.fromisoformat(sent["time"])
    else:
        assert message.get("time") == expected_time(spec, sent["time"]), (spec, sent["time"])
    given = message["exchange_id"]
    assert uuid.UUID(given).version == 8
    guessable = {exchange_id(sent["source"], sent["id"], r) for r in RECIPIENTS}
    assert given not in guessable and sent["id"] not in given
    assert message["covenant"]["rule"] == rule.rule_id
    assert message["retention_days"] == 30


@fuzz_settings(150)
@given(covenants(), st.lists(anomalies(), min_size=1, max_size=3))
def test_no_leaf_of_a_delivered_message_is_finer_than_its_rule_allows(covenant, envelopes):
    compiled = policy(covenant.text(), store=KEYS)
    for sent in envelopes:
        for decision in compiled.decide(signal(sent), NOW):
            if not decision.delivered:
                continue
            rule = covenant.rule_for(decision.recipient)
            assert rule is not None
            message = feed_message(decision)
            assert_envelope(message, rule, sent)
            for path, value in leaves(message["data"]):
                assert_data_leaf(path, value, rule.share)
            fields = audit_record(decision, actor="test")["fields"]
            time_spec = expected_time_spec(rule)
            assert fields.get("envelope.time") == (None if time_spec == "omit" else time_spec)
            assert fields["envelope.exchange_id"] == "keyed"
