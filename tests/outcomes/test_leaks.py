"""Property: no partner ever receives another partner's identifier or signal id through a return.

Random partners signal random locations (several spellings of a few addresses, shared EANs);
random outcomes — findings with an approval, a refusal or none, checks that found nothing —
arrive at random locations and times, in random batches and orders. Then:

* every return a partner receives answers a signal **it sent itself**, about the outcome's
  location, received by the hub before the outcome (and, when the rule needs an approval,
  before the approval) and within the rule's reach;
* no message (value or Kafka key) holds any signal id but the recipient's own answered one,
  any raw identifier in any spelling, or a hub-internal pseudonym;
* exactly the returns the covenant allows are delivered (a model of the shipped rules): none
  missing, none extra — the rest is withheld, and every pair decided is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import fuzz_settings
from tests.outcomes.helpers import (
    NOW,
    anomaly,
    approval,
    envelope,
    finding,
    make_hub,
    nothing_found,
    observation,
    water,
)

ADDRESSES = (
    ("1811 ab 12-a", "1811AB12A", "1811AB 12A"),
    ("1015 CD 7", "1015cd7", "1015CD 7"),
    ("2011 EF 3-bis", "2011ef 3 bis", "2011EF 3BIS"),
)
"""Spellings of three addresses; the last is the canonical form."""
EANS = ("871685900000000011", "871685900000000028")

# The shipped return rules, as a model: outcome type -> recipient -> (types answered, reach,
# approval needed).
ENERGY = {"energy.consumption_anomaly.v1"}
MODEL: dict[str, dict[str, tuple[set[str], int, bool]]] = {
    "police.location_finding.v1": {
        "liander": (ENERGY, 365, True),
        "pwn": ({"water.abnormal_use.v1"}, 365, True),
        "woonwaard": ({"housing.observation.v1"}, 365, True),
        "elan-wonen": ({"housing.observation.v1"}, 365, True),
    },
    "police.nothing_found.v1": {
        p: ({"energy.consumption_anomaly.v1", "water.abnormal_use.v1", "housing.observation.v1",
             "waste.drug_waste_dumping.v1", "residents.anonymous_tip.v1"}, 180, False)
        for p in ("liander", "pwn", "woonwaard", "elan-wonen")
    },
}  # fmt: skip


def tip(days_ago: float, address: str) -> dict[str, Any]:
    return envelope(
        "meld-misdaad-anoniem",
        "residents.anonymous_tip.v1",
        {"category": "cannabis_cultivation", "address": address, "municipality": "GM0361",
         "received_at": "2026-10-01T20:00:00Z", "channel": "web_form"},
        days_ago=days_ago,
    )  # fmt: skip


signal_specs = st.tuples(
    st.sampled_from(["liander", "pwn", "woonwaard", "elan-wonen", "meld-misdaad-anoniem"]),
    st.integers(0, len(ADDRESSES) - 1),  # which address
    st.integers(0, 2),  # which spelling
    st.integers(5, 170),  # days before NOW
    st.integers(0, len(EANS) - 1),
)
outcome_specs = st.tuples(
    st.sampled_from(["police.location_finding.v1", "police.nothing_found.v1"]),
    st.integers(0, len(ADDRESSES) - 1),
    st.integers(0, 2),
    st.integers(1, 120),
    st.sampled_from(["approved", "refused", None]),
)


def make_signal(spec: tuple[str, int, int, int, int]) -> dict[str, Any]:
    partner, where, spelling, days, ean = spec
    address = ADDRESSES[where][spelling]
    if partner == "liander":
        return anomaly(days, address=address, ean=EANS[(where + ean) % len(EANS)] if where < 2
                       else EANS[ean])  # fmt: skip
    if partner == "pwn":
        return water(days, address=address)
    if partner == "meld-misdaad-anoniem":
        return tip(days, address)
    return observation(days, address=address, source=partner)


@given(
    signals=st.lists(signal_specs, min_size=1, max_size=12),
    outcomes=st.lists(outcome_specs, min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
    batch_size=st.integers(1, 6),
)
@fuzz_settings(40)
def test_no_partner_receives_another_partners_identifier_or_signal_id(
    signals: list[tuple[str, int, int, int, int]],
    outcomes: list[tuple[str, int, int, int, str | None]],
    order: Any,
    batch_size: int,
) -> None:
    hub = make_hub()
    sent = [make_signal(spec) for spec in signals]
    where_of = {e["id"]: spec[1] for e, spec in zip(sent, signals, strict=True)}
    made: list[dict[str, Any]] = []
    outcome_of: dict[str, tuple[str, int, int, str | None]] = {}
    approval_of: dict[str, str] = {}
    for kind, where, spelling, days, decision in outcomes:
        address = ADDRESSES[where][spelling]
        made_one = finding(days, address=address) if kind.endswith("finding.v1") else (
            nothing_found(days, address=address))  # fmt: skip
        made.append(made_one)
        outcome_of[made_one["id"]] = (kind, where, days, decision)
        if decision is not None and kind.endswith("finding.v1"):
            made.append(approval(made_one, decision=decision, days_ago=max(days - 1, 0)))
            approval_of[made_one["id"]] = made[-1]["id"]
    everything = sent + made
    order.shuffle(everything)
    received = {e["id"]: n for n, e in enumerate(everything)}  # the hub's receipt order
    delivered: list[tuple[str, dict[str, Any], bytes]] = []
    audited: set[tuple[str, str, str]] = set()
    for start in range(0, len(everything), batch_size):
        _, decided = hub.feed(everything[start : start + batch_size])
        for item in decided.feed:
            delivered.append((item.recipient, _json(item.value), item.key + item.value))
        for record in decided.audit:
            answers = record.get("answers")
            if isinstance(answers, dict):
                audited.add((str(record["signal_id"]), str(answers["source"]),
                             str(answers["signal_id"])))  # fmt: skip

    got = _check_messages(hub, sent, everything, delivered)
    assert got == _expected(sent, where_of, outcome_of, audited, received, approval_of)


def _days_ago(e: dict[str, Any]) -> float:
    return (NOW - datetime.fromisoformat(e["time"])).total_seconds() / 86400


def _json(value: bytes) -> dict[str, Any]:
    loaded = orjson.loads(value)
    assert isinstance(loaded, dict)
    return loaded


def _check_messages(
    hub: Any,
    sent: list[dict[str, Any]],
    everything: list[dict[str, Any]],
    delivered: list[tuple[str, dict[str, Any], bytes]],
) -> set[tuple[str, str]]:
    """Check each delivered message for leaks; return (recipient, answered signal id)."""
    ids_by_partner: dict[str, set[str]] = {}
    for e in sent:
        ids_by_partner.setdefault(e["source"], set()).add(e["id"])
    all_ids = {e["id"] for e in everything}
    raws = {s for spellings in ADDRESSES for s in spellings} | set(EANS)
    raws |= {s.replace(" ", "") for spellings in ADDRESSES for s in spellings}
    pseudonyms = {hub.location(spellings[-1]) for spellings in ADDRESSES}
    by_id = {e["id"]: e for e in sent}
    got: set[tuple[str, str]] = set()
    for recipient, message, blob in delivered:
        answered = message["answers"]["signal_id"]
        assert answered in ids_by_partner.get(recipient, set()), "another partner's signal"
        assert message["answers"]["type"] == by_id[answered]["type"]
        for other in all_ids - {answered}:
            assert other.encode() not in blob, "a signal id that is not the recipient's own"
        for raw in raws:
            assert raw.encode() not in blob, "a raw identifier"
        for pseudonym in pseudonyms:
            assert pseudonym.encode() not in blob, "a hub-internal pseudonym"
        got.add((recipient, answered))
    return got


def _expected(
    sent: list[dict[str, Any]],
    where_of: dict[str, int],
    outcome_of: dict[str, tuple[str, int, int, str | None]],
    audited: set[tuple[str, str, str]],
    received: dict[str, int],
    approval_of: dict[str, str],
) -> set[tuple[str, str]]:
    """The returns the shipped rules allow (each also audited): only about a signal the hub
    received before the outcome, and before the approval that covers it."""
    expected: set[tuple[str, str]] = set()
    for outcome_id, (kind, where, days, decision) in outcome_of.items():
        for e in sent:
            rule = MODEL[kind].get(e["source"])
            if rule is None or where_of[e["id"]] != where:
                continue
            types, reach, needs_approval = rule
            before = timedelta(days=_days_ago(e)) - timedelta(days=days)
            if e["type"] not in types or not (timedelta(0) <= before <= timedelta(days=reach)):
                continue
            if received[e["id"]] > received[outcome_id]:
                continue  # received after the outcome: never a candidate
            if needs_approval and (
                decision != "approved" or received[e["id"]] > received[approval_of[outcome_id]]
            ):
                continue
            expected.add((e["source"], e["id"]))
            assert (outcome_id, e["source"], e["id"]) in audited
    return expected
