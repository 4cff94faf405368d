"""Envelope metadata are disclosures too: the time, source and exchange id a recipient gets
come from the rule (docs/covenants.md#envelope), never copied from the signal."""

from __future__ import annotations

import re
import textwrap
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from services.core.decision import EXCHANGE_NAMESPACE, exchange_id
from services.core.records import audit_record, feed_key, feed_message
from services.core.schema_registry import (
    SchemaDefinitionError,
    SchemaRegistry,
    default_schema_dir,
)
from tests.core.builders import (
    ANOMALY_RULE,
    NOW,
    anomaly,
    checked,
    covenant_text,
    keys,
    policy,
    signal,
)

KEYS = keys()

TIP_COVENANT = textwrap.dedent(
    """\
    covenant: tips
    version: "1"
    title: Tips
    legal_basis: ["AVG art. 6 lid 1 sub e"]
    purposes: {signalering: Signaleren}
    valid: {from: 2025-01-01, until: 2027-12-31}
    signatures: optional
    parties:
      meld-misdaad-anoniem: {name: MMA, kind: residents, roles: [supplier]}
      riec-nh: {name: RIEC NH, kind: riec, roles: [recipient]}
    rules:
      - id: tip-facts
        article: "art. 6"
        purpose: signalering
        from: [meld-misdaad-anoniem]
        types: [residents.anonymous_tip.v1]
        to: [riec-nh]
        share: {category: keep, municipality: keep, received_at: "generalise:month"}
        retention: P30D
    """
)


def tip(time: str = "2026-09-02T00:50:20Z", signal_id: str = "mma-000017") -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": signal_id,
        "source": "meld-misdaad-anoniem",
        "type": "residents.anonymous_tip.v1",
        "time": time,
        "data": {
            "category": "drug_lab",
            "municipality": "GM0361",
            "received_at": "2026-09-02T00:40:00Z",
            "channel": "phone",
        },
    }


def delivered(text: str, envelope: dict[str, object]):
    [decision] = policy(text, store=KEYS).decide(signal(envelope), NOW)
    assert decision.delivered, decision.reason
    return decision


def test_a_month_generalisation_is_not_undone_by_the_envelope_time():
    decision = delivered(TIP_COVENANT, tip())
    message = feed_message(decision)
    assert message["data"]["received_at"] == "2026-09"
    assert message["time"] == "2026-09"  # was "2026-09-02T00:50:20Z"
    text = orjson.dumps(message).decode()
    assert "2026-09-02" not in text and "00:50" not in text
    fields = audit_record(decision, actor="test")["fields"]
    assert fields["envelope.time"] == "generalise:month"
    assert fields["envelope.source"] == "keep"


def test_the_default_envelope_time_is_the_dutch_calendar_day():
    rule = ANOMALY_RULE.replace(', period: "generalise:week"', "")
    envelope = anomaly() | {"time": "2026-11-01T23:30:00Z"}  # 00:30 on 2 November in NL
    message = feed_message(delivered(covenant_text(rule), envelope))
    assert message["time"] == "2026-11-02"


@pytest.mark.parametrize(
    ("block", "time", "source"),
    [
        ("{time: keep}", "2026-09-02T00:50:20Z", "meld-misdaad-anoniem"),
        ('{time: "generalise:year"}', "2026", "meld-misdaad-anoniem"),
        ("{time: omit, source: omit}", None, None),
        ("{source: omit}", "2026-09", None),
    ],
)
def test_a_rule_can_tighten_widen_or_omit_the_envelope(block, time, source):
    text = TIP_COVENANT.replace(
        "    retention: P30D", f"    envelope: {block}\n    retention: P30D"
    )
    decision = delivered(text, tip())
    message = feed_message(decision)
    assert message.get("time") == time
    assert message.get("source") == source
    record = audit_record(decision, actor="test")
    for name, value in (("time", time), ("source", source)):
        assert (f"envelope.{name}" in record["fields"]) == (value is not None)
        assert (f"envelope.{name}" in record["withheld_fields"]) == (value is None)


def test_an_explicit_time_finer_than_the_share_is_a_warning_with_its_line():
    text = TIP_COVENANT.replace(
        "    retention: P30D", '    envelope: {time: "generalise:day"}\n    retention: P30D'
    )
    result = checked(text)
    assert result.ok
    [warning] = [p for p in result.problems if "envelope time" in p.message]
    assert warning.severity == "warning"
    assert warning.line == text.splitlines().index('    envelope: {time: "generalise:day"}') + 1
    assert "received_at" in warning.message and "generalise:month" in warning.hint


def test_an_unknown_envelope_value_is_refused_with_its_line():
    text = TIP_COVENANT.replace(
        "    retention: P30D", "    envelope: {time: minute}\n    retention: P30D"
    )
    result = checked(text)
    assert not result.ok
    [error] = result.errors
    assert error.line == text.splitlines().index("    envelope: {time: minute}") + 1


def test_rules_that_differ_only_in_their_envelope_disagree():
    second = TIP_COVENANT.split("rules:\n", 1)[1].replace("tip-facts", "tip-facts-2")
    second = second.replace(
        "    retention: P30D", "    envelope: {time: omit}\n    retention: P30D"
    )
    result = checked(TIP_COVENANT + second)
    assert any("share differently" in p.message for p in result.errors)


def test_the_exchange_id_a_recipient_gets_cannot_be_tied_to_the_signal():
    """The hub's exchange id is uuid5(source, signal id, recipient): the supplier, who knows
    its signal ids, could find which signal a recipient's record is. The id given out is keyed."""
    compiled = policy(TIP_COVENANT, store=KEYS)
    [decision] = compiled.decide(signal(tip()), NOW)
    message = feed_message(decision)
    given = message["exchange_id"]
    assert uuid.UUID(given).version == 8
    supplier_guesses = {
        exchange_id("meld-misdaad-anoniem", f"mma-{n:06d}", "riec-nh") for n in range(100)
    }
    assert decision.exchange_id in supplier_guesses  # the hub's own id is guessable...
    assert given not in supplier_guesses  # ...the one handed out is not
    assert given != str(uuid.uuid5(EXCHANGE_NAMESPACE, "meld-misdaad-anoniem\x1fmma-000017"))
    assert feed_key(decision) == given  # no pseudonym shared: the Kafka key is that id too
    # stable, so a recipient can drop a re-delivered or replayed copy, and audited
    [again] = compiled.decide(signal(tip()), datetime(2026, 11, 23, tzinfo=UTC))
    assert feed_message(again)["exchange_id"] == given
    assert audit_record(decision, actor="t")["feed_exchange_id"] == given
    # and one per exchange
    [other] = compiled.decide(signal(tip(signal_id="mma-000018")), NOW)
    assert feed_message(other)["exchange_id"] != given
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", given
    )


def test_withheld_decisions_have_no_feed_message_or_id():
    [decision] = policy(TIP_COVENANT, store=KEYS).decide(
        signal(tip()),
        datetime(2028, 1, 1, tzinfo=UTC),  # the covenant has ended
    )
    assert not decision.delivered and decision.feed_id is None
    assert audit_record(decision, actor="t")["feed_exchange_id"] is None
    with pytest.raises(ValueError, match="delivered"):
        feed_message(decision)


def test_a_signal_schema_may_not_name_a_top_level_property_envelope(tmp_path):
    """Audit records name envelope metadata ``envelope.<name>``: no data path may look alike."""
    source = sorted(default_schema_dir().glob("*.json"))[0]
    schema = orjson.loads(source.read_bytes())
    schema["properties"]["envelope"] = {"type": "string"}
    (tmp_path / source.name).write_bytes(orjson.dumps(schema))
    with pytest.raises(SchemaDefinitionError, match="envelope: the name is reserved"):
        SchemaRegistry.load(tmp_path)
