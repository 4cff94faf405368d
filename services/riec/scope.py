"""Who may see which items and cases: an admin everything; a RIEC analyst only those of the
recipients (its RIEC's parties) and covenants of its scope — both needed.

The RIEC's region (:func:`regions`, the municipalities whose RIEC bears the party's name)
is what the queue offers to filter by and what an item is marked against: a covenant rule may
send a RIEC something about a municipality outside it (a precursor transaction in Amsterdam,
say); the workplace shows it marked "outside the region" rather than hiding what the feed
delivered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.core.covenant.model import Covenant
from services.core.regions import ReferenceData
from services.web.users import ADMIN, RIEC_ANALYST, User


@dataclass(frozen=True, slots=True)
class Reach:
    """What one user reaches: ``None`` is unrestricted."""

    recipients: frozenset[str] | None
    covenants: frozenset[str] | None
    region: frozenset[str] | None
    """The municipalities of the user's RIEC(s), ``None`` for an admin (every region)."""

    def allows(self, recipient: str, covenant_id: str) -> bool:
        return (self.recipients is None or recipient in self.recipients) and (
            self.covenants is None or covenant_id in self.covenants
        )

    def in_region(self, municipality: str | None) -> bool:
        return self.region is None or municipality is None or municipality in self.region


NOTHING = Reach(frozenset(), frozenset(), frozenset())


def reach(user: User, regions: Mapping[str, frozenset[str]]) -> Reach:
    """What ``user`` reaches in the workplace; ``regions`` maps a RIEC party to the
    municipality codes of its region (a party without one reaches no municipality)."""
    if user.role == ADMIN:
        return Reach(None, None, None)
    if user.role != RIEC_ANALYST or not user.partners or not user.covenants:
        return NOTHING
    codes = frozenset(c for p in user.partners for c in regions.get(p, frozenset()))
    return Reach(user.partners, user.covenants, codes)


def regions(covenants: Iterable[Covenant], reference: ReferenceData) -> dict[str, frozenset[str]]:
    """Each RIEC party's region: the municipalities whose RIEC bears the party's name."""
    found: dict[str, frozenset[str]] = {}
    for covenant in covenants:
        for party_id, party in covenant.parties.items():
            if party.kind != "riec":
                continue
            codes = frozenset(
                code for code, m in reference.municipalities.items() if m.riec == party.name
            )
            found[party_id] = found.get(party_id, frozenset()) | codes
    return found
