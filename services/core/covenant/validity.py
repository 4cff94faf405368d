"""When a covenant version applies, how it ended, and which version applied most recently.

Validity dates are Dutch calendar days, both ends inclusive; a revocation stops a version from
its date on. These answers name the version a refusal cites: after a covenant ended, the
reason must name the version that last applied (``drugslocaties-nh@2025.1 expired on
2026-11-10``), not an older one that ended years before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from services.core.covenant.model import Covenant


def last_day(cov: Covenant) -> date | None:
    """The last day ``cov`` is in force (None: no end set)."""
    ends = [cov.valid.until] if cov.valid.until is not None else []
    if cov.revoked is not None:
        ends.append(cov.revoked.day - timedelta(days=1))
    return min(ends) if ends else None


def ended(cov: Covenant, day: date) -> bool:
    """Whether ``cov`` applied once and no longer does on ``day``."""
    end = last_day(cov)
    return end is not None and cov.valid.from_ <= end < day


def end_text(cov: Covenant) -> str:
    """How ``cov`` ends: ``expired on D`` or ``was revoked on D`` (for a version with an end)."""
    if cov.revoked is not None and (cov.valid.until is None or cov.revoked.day <= cov.valid.until):
        return f"was revoked on {cov.revoked.day}"
    return f"expired on {cov.valid.until}"


def refusal(cov: Covenant, day: date) -> str:
    """Why ``cov``, out of force on ``day``, allows nothing then."""
    if cov.revoked is not None and day >= cov.revoked.day:
        return f"covenant {cov.key} was revoked on {cov.revoked.day}"
    if day < cov.valid.from_:
        return f"covenant {cov.key} is not in force before {cov.valid.from_}"
    return f"covenant {cov.key} expired on {cov.valid.until}"


def recency(cov: Covenant, day: date) -> tuple[int, int]:
    """Sort key: the version that applied most recently before ``day`` sorts last.

    Versions that ended sort by their last day; after them come none, before them the ones
    not yet in force (the soonest last), so a refusal names what last applied, or else what
    applies next.
    """
    end = last_day(cov)
    if ended(cov, day) and end is not None:
        return (2, end.toordinal())
    if day < cov.valid.from_:
        return (1, -cov.valid.from_.toordinal())
    return (0, 0)


def most_recent(covenants: Iterable[Covenant], day: date) -> Covenant:
    """Of versions out of force on ``day``, the one that applied most recently (see
    :func:`recency`)."""
    return max(covenants, key=lambda cov: recency(cov, day))
