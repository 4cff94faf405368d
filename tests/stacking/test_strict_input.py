"""The stacking worker reads signals as the router does: input that means two things, or whose
time is implausible, is skipped under its rejection code and never used."""

from __future__ import annotations

from services.router.topics import signals_topic
from services.stacking.batch import Record
from tests.core.attacks import ATTACKS, INVALID_UTF8, NOW, good
from tests.stacking.helpers import make_hub


def test_no_attack_is_used_for_stacking_and_each_is_counted_under_its_code() -> None:
    hub = make_hub()
    topic = signals_topic("liander")
    assert hub.step().run([Record(topic, good("liander-good"))], NOW).used == 1
    attacks = [*ATTACKS.values(), INVALID_UTF8]
    stacked = hub.step().run([Record(topic, a.raw) for a in attacks], NOW)
    assert stacked.signals == len(attacks) and stacked.used == 0 and not stacked.audit
    expected: dict[str, int] = {}
    for attack in attacks:
        expected[attack.code] = expected.get(attack.code, 0) + 1
    assert stacked.skipped == expected
