"""The idempotency record: claims, conflicts, take-over of abandoned claims, pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.gateway.accepted import PENDING_TIMEOUT, AcceptedIds, Claim, Wanted
from tests.gateway.helpers import NOW

pytestmark = pytest.mark.timeout(30)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


def test_claims_then_accepted_then_done(migrated_engine):
    ids = AcceptedIds(migrated_engine, Clock())
    assert ids.claim("liander", [Wanted("s1", "d1")]) == {"s1": Claim.NEW}
    assert ids.claim("liander", [Wanted("s1", "d1")]) == {"s1": Claim.BUSY}
    ids.accepted("liander", ["s1"])
    assert ids.claim("liander", [Wanted("s1", "d1"), Wanted("s2", "d2")]) == {
        "s1": Claim.DONE,
        "s2": Claim.NEW,
    }
    assert ids.claim("liander", [Wanted("s1", "other")]) == {"s1": Claim.CONFLICT}
    assert ids.claim("vitens", [Wanted("s1", "other")]) == {"s1": Claim.NEW}


def test_released_claims_can_be_claimed_again(migrated_engine):
    ids = AcceptedIds(migrated_engine, Clock())
    ids.claim("liander", [Wanted("s1", "d1")])
    ids.release("liander", ["s1"])
    assert ids.claim("liander", [Wanted("s1", "d1")]) == {"s1": Claim.NEW}


def test_an_abandoned_pending_claim_is_taken_over(migrated_engine):
    clock = Clock()
    ids = AcceptedIds(migrated_engine, clock)
    ids.claim("liander", [Wanted("s1", "d1")])
    clock.now += PENDING_TIMEOUT + timedelta(seconds=1)
    assert ids.claim("liander", [Wanted("s1", "d1")]) == {"s1": Claim.NEW}
    assert ids.claim("liander", [Wanted("s1", "d1")]) == {"s1": Claim.BUSY}


def test_old_ids_are_pruned(migrated_engine):
    clock = Clock()
    ids = AcceptedIds(migrated_engine, clock)
    ids.claim("liander", [Wanted("old", "d")])
    ids.accepted("liander", ["old"])
    clock.now += timedelta(days=8)
    ids.claim("liander", [Wanted("new", "d")])
    assert ids.prune(timedelta(days=7)) == 1
    assert ids.claim("liander", [Wanted("old", "d")]) == {"old": Claim.NEW}
    assert ids.claim("liander", [Wanted("new", "d")]) == {"new": Claim.BUSY}
