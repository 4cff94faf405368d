"""How the hub tells, for a value in a RIEC's feed message, whether it is one of that
recipient's pseudonyms and which premises (hub-internal pseudonym) it stands for.

Only the hub holds the keys, so only the hub can answer; the value behind the pseudonym is
used in memory for one HMAC and dropped — the workplace keeps the internal pseudonym alone,
as the audit log and the outcome index do. A one-way pseudonym (``p…``) is the recipient's
but names no premises the hub can recover.
"""

from __future__ import annotations

from services.core.errors import SchakelError
from services.core.outcomes.entries import PREMISES_KINDS
from services.core.pseudonyms import INTERNAL, Domain, PseudonymError, Pseudonymiser
from services.riec.items import Locate


def locator(pseudonymiser: Pseudonymiser) -> Locate:
    """A :data:`~services.riec.items.Locate` on the hub's pseudonymiser."""

    def locate(recipient: str, covenant_id: str, value: str) -> tuple[bool, str | None]:
        if value[:1] not in ("p", "r"):
            return False, None
        try:
            pseudonymiser.key_version_of(value)
        except PseudonymError:
            return False, None
        if value[0] == "p":
            return True, None
        try:
            kind, canonical = pseudonymiser.reidentify(
                Domain(covenant_id, recipient, reversible=True), value
            )
        except SchakelError:
            return False, None
        if kind not in PREMISES_KINDS:
            return True, None
        return True, pseudonymiser.pseudonym(INTERNAL, kind, canonical)

    return locate
