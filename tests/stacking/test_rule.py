"""The stacking rule and the stacker: windows, independence, scores, dedup and updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.core.stacking.config import AlertTarget, StackingConfig
from services.core.stacking.engine import Stacker
from services.core.stacking.evidence import Evidence, Observation
from services.core.stacking.rule import evaluate

T0 = datetime(2026, 9, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
CONFIG = StackingConfig(
    stacking="test",
    version="1",
    purpose="datastapeling",
    alert=AlertTarget(source="schakel", type="hub.stacked_location_alert.v1"),
    window_days=30,
    min_partner_kinds=3,
    min_score=0.8,
    min_strength=0.5,
)


def ev(n: int, kind: str, *, day: float = 0.0, strength: float = 0.7, source: str = "") -> Evidence:
    return Evidence(
        source=source or f"partner-{kind}",
        signal_id=f"s{n}",
        partner_kind=kind,
        signal_type=f"{kind}.thing.v1",
        barrier_steps=("cannabis.cultivate",),
        time=T0 + timedelta(days=day),
        strength=strength,
    )


def obs(e: Evidence, location: str = "p1.loc") -> Observation:
    return Observation(
        primary=location,
        others=(),
        municipality="GM0361",
        locate=lambda: "r1.x",
        evidence=e,
        subjects={},
    )


def test_three_kinds_within_the_window_stack() -> None:
    stack = evaluate(CONFIG, [ev(1, "energy"), ev(2, "water", day=10), ev(3, "housing", day=29)])
    assert stack.met
    assert stack.partner_kinds == ("energy", "housing", "water")
    assert stack.score == round(1 - 0.3**3, 4)
    assert stack.first_seen == T0 and stack.last_seen == T0 + timedelta(days=29)


def test_evidence_outside_the_window_does_not_count() -> None:
    stack = evaluate(CONFIG, [ev(1, "energy"), ev(2, "water", day=10), ev(3, "housing", day=31)])
    assert not stack.met
    assert stack.partner_kinds == ("housing", "water")


def test_two_signals_of_one_partner_kind_are_not_independent() -> None:
    same = [ev(1, "energy"), ev(2, "energy", day=1), ev(3, "water", day=2, source="pwn"),
            ev(4, "water", day=3, source="hhnk")]  # fmt: skip
    stack = evaluate(CONFIG, same)
    assert not stack.met
    assert stack.partner_kinds == ("energy", "water")
    assert len(stack.evidence) == 4


def test_weak_evidence_does_not_count_and_score_needs_strength() -> None:
    weak = evaluate(CONFIG, [ev(1, "energy"), ev(2, "water"), ev(3, "housing", strength=0.4)])
    assert not weak.met
    strict = CONFIG.model_copy(update={"min_score": 0.9})
    low = [
        ev(1, "energy", strength=0.5),
        ev(2, "water", strength=0.5),
        ev(3, "housing", strength=0.5),
    ]
    assert evaluate(strict, low).partner_kinds == ("energy", "housing", "water")
    assert evaluate(strict, low).score == 0.875
    assert not evaluate(strict, low).met
    assert evaluate(CONFIG, low).met


def test_an_alert_is_raised_once_and_updated_by_new_evidence() -> None:
    stacker = Stacker(CONFIG)
    first = stacker.apply([obs(ev(1, "energy")), obs(ev(2, "water", day=1))], NOW)
    assert not first.alerts and len(first.evidence) == 2
    raised = stacker.apply([obs(ev(3, "housing", day=2))], NOW)
    [alert] = raised.alerts.values()
    assert alert.revision == 1 and alert.evidence_count == 3
    again = stacker.apply([obs(ev(3, "housing", day=2)), obs(ev(1, "energy"))], NOW)
    assert not again and again.duplicates == 2  # the same evidence never raises twice
    updated = stacker.apply([obs(ev(4, "residents", day=3, strength=0.9))], NOW)
    [newer] = updated.alerts.values()
    assert newer.alert_id == alert.alert_id and newer.revision == 2
    assert newer.signal_id != alert.signal_id and newer.evidence_count == 4
    assert newer.score > alert.score
    weak = stacker.apply([obs(ev(5, "waste", day=4, strength=0.2))], NOW)
    assert not weak.alerts and len(weak.evidence) == 1  # kept as evidence, changes no alert


def test_replaying_the_signals_gives_the_same_ids() -> None:
    batch = [obs(ev(1, "energy")), obs(ev(2, "water", day=1)), obs(ev(3, "housing", day=2))]
    one, two = Stacker(CONFIG).apply(batch, NOW), Stacker(CONFIG).apply(batch, NOW)
    assert [(a.alert_id, a.signal_id) for a in one.alerts.values()] == [
        (a.alert_id, a.signal_id) for a in two.alerts.values()
    ]


def test_old_evidence_leaves_the_window_and_a_new_stack_is_a_new_alert() -> None:
    stacker = Stacker(CONFIG)
    old = stacker.apply([obs(ev(1, "energy")), obs(ev(2, "water")), obs(ev(3, "housing"))], NOW)
    [first] = old.alerts.values()
    later = [obs(ev(n, kind, day=100)) for n, kind in ((4, "energy"), (5, "water"), (6, "rural"))]
    changes = stacker.apply(later, NOW)
    assert {key for _, key in changes.expired} == {
        f"partner-{k}\x1fs{n}" for n, k in ((1, "energy"), (2, "water"), (3, "housing"))
    }
    [second] = changes.alerts.values()
    assert second.alert_id != first.alert_id and second.revision == 1


def test_locations_are_kept_apart_and_aliases_join_them() -> None:
    stacker = Stacker(CONFIG)
    with_ean = Observation(
        primary="p1.addr", others=("p1.ean",), municipality="GM0361", locate=lambda: "r1.x",
        evidence=ev(1, "energy"), subjects={},
    )  # fmt: skip
    only_ean = Observation(
        primary=None, others=("p1.ean",), municipality="GM0361", locate=lambda: None,
        evidence=ev(2, "energy2"), subjects={},
    )  # fmt: skip
    changes = stacker.apply([with_ean, only_ean, obs(ev(3, "water"), "p1.elsewhere")], NOW)
    assert changes.aliases == {"p1.ean": "p1.addr"}
    assert [k for k, _ in changes.evidence] == ["p1.addr", "p1.addr", "p1.elsewhere"]
    assert not changes.alerts


def test_evidence_under_an_ean_moves_to_the_address_once_they_are_linked() -> None:
    stacker = Stacker(CONFIG)

    def seen(n: int, kind: str, primary: str | None, others: tuple[str, ...]) -> Observation:
        return Observation(
            primary=primary, others=others, municipality="GM0361",
            locate=lambda: "r1.x" if primary else None, evidence=ev(n, kind), subjects={},
        )  # fmt: skip

    first = stacker.apply([seen(1, "energy", None, ("p1.ean",))], NOW)
    assert [k for k, _ in first.evidence] == ["p1.ean"]
    linked = stacker.apply([seen(2, "water", "p1.addr", ("p1.ean",))], NOW)
    assert linked.dropped == ["p1.ean"] and ("p1.ean", "partner-energy\x1fs1") in linked.expired
    assert {(k, e.signal_id) for k, e in linked.evidence} == {("p1.addr", "s1"), ("p1.addr", "s2")}
    raised = stacker.apply([seen(3, "housing", None, ("p1.ean",))], NOW)
    [alert] = raised.alerts.values()
    assert alert.location == "p1.addr" and alert.partner_kinds == ("energy", "housing", "water")
    assert alert.locator == "r1.x"
    assert stacker.apply([seen(1, "energy", None, ("p1.ean",))], NOW).duplicates == 1
