"""bench/verify.py: a benchmark refuses to print a figure for work that was not done."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.verify import REFUSED_EXIT, Counts, Refused, check, check_exchanges, refusing
from bench.workload import RECIPIENTS, expectation, feed_exchange_id, workload
from services.core.decision import exchange_id
from services.keys.testing import MemoryKeyStore

pytestmark = pytest.mark.timeout(60)


def test_a_workload_re_ided_without_re_signing_is_refused_before_anything_is_timed() -> None:
    # the 2026-11 router figures: ids changed after the generator signed, all bad_signature
    broken = workload(12, seed=3, resign=False)
    with pytest.raises(
        Refused, match=r"12 of 12 signals are rejected offline \(bad_signature 12\)"
    ):
        expectation(broken)


def test_the_re_signed_workload_is_accepted_and_fans_out_to_every_recipient() -> None:
    expected = expectation(workload(12, seed=3))
    assert expected.counts == Counts(
        signals=12, deliveries=12 * len(RECIPIENTS), audit_records=36, dead_letters=0
    )
    assert len(expected.exchange_ids) == 36
    assert not expected.rejections


def test_the_expected_exchanges_are_the_keyed_ids_the_feeds_carry_not_the_hubs_own() -> None:
    signals = workload(4, seed=3)
    expected = expectation(signals).exchange_ids
    pairs = [(str(s["source"]), str(s["id"]), r) for s in signals for r in RECIPIENTS]
    assert expected == {feed_exchange_id(*pair) for pair in pairs}
    assert not expected & {exchange_id(*pair) for pair in pairs}  # the hub's id never leaves
    # keyed with the router's keys: a router under other keys gives other ids
    other = expectation(signals, keys=MemoryKeyStore.for_tests(b"another seed")).exchange_ids
    assert len(other) == len(expected) and not other & expected


def test_planted_rejections_must_be_exactly_the_ones_planted() -> None:
    signals = workload(6, seed=3)
    signals[2] = {**signals[2], "id": "tampered"}  # one broken signature, planted
    assert expectation(signals, planted_rejections=1).counts.dead_letters == 1
    with pytest.raises(Refused, match="1 of 6 signals are rejected"):
        expectation(signals)


def test_a_hub_that_rejected_everything_is_refused_although_it_handled_every_signal() -> None:
    expected = expectation(workload(5, seed=3)).counts
    # what the old router bench saw: its loop counted 5 signals handled, all dead-lettered
    observed = Counts(signals=5, deliveries=0, audit_records=5, dead_letters=5)
    with pytest.raises(Refused) as refused:
        check("router", expected, observed)
    message = str(refused.value)
    assert "deliveries: expected 15, found 0" in message
    assert "audit records: expected 15, found 5" in message
    assert "dead letters: expected 0, found 5" in message
    assert "signals" not in message.split(":", 1)[1]  # only what differs is named


def test_every_count_the_expectation_has_is_checked_and_none_other() -> None:
    expected = Counts(signals=3, deliveries=9)
    assert check("passthrough", expected, replace(expected, audit_records=7)).deliveries == 9
    with pytest.raises(Refused, match="deliveries: expected 9, found none counted"):
        check("passthrough", expected, Counts(signals=3))


def test_feed_exchanges_must_be_exactly_the_expected_ones() -> None:
    expected = frozenset({"a", "b", "c"})
    assert check_exchanges("router", expected, ["c", "b", "a", "a"]) == 3
    with pytest.raises(Refused, match="1 of 3 expected exchanges never reached a feed"):
        check_exchanges("router", expected, ["a", "b"])
    with pytest.raises(Refused, match="and 1 unexpected ones did"):
        check_exchanges("router", expected, ["a", "b", "z"])


def test_a_refusal_exits_3_with_the_reason_and_prints_no_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def main() -> None:
        raise Refused("deliveries: expected 15, found 0")

    with pytest.raises(SystemExit) as exited:
        refusing(main)
    assert exited.value.code == REFUSED_EXIT
    out, err = capsys.readouterr()
    assert out == ""
    assert "REFUSED, no figure printed: deliveries: expected 15, found 0" in err
