"""The barrier plan's small-count threshold: as strict as any covenant in force asks.

The plan shows coverage counts and findings per municipality and quarter next to the coverage
page, so it suppresses small counts at least as strictly as the coverage publication does
(services/core/coverage/feed.py): the stricter of the hub's floor (5), every coverage
aggregate's ``min_cell`` and every party's ``aggregate_only.min_cell``.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.core.covenant.model import Covenant
from services.core.coverage.release import DEFAULT_THRESHOLD


def plan_threshold(covenants: Iterable[Covenant]) -> int:
    """The largest small-count threshold any of ``covenants`` declares, and never below 5."""
    threshold = DEFAULT_THRESHOLD
    for covenant in covenants:
        for party in covenant.parties.values():
            if party.aggregate_only is not None:
                threshold = max(threshold, party.aggregate_only.min_cell)
        for aggregate in covenant.aggregates:
            threshold = max(threshold, aggregate.min_cell)
    return threshold
