"""Re-identification requests as data: their states, the request itself and its errors.

A request moves ``requested`` → ``approved`` | ``rejected``, and ``approved`` → ``revealed``.
It expires :data:`REQUEST_TTL` after it was filed: an expired request can no longer be
approved or revealed, so an approval cannot be kept in a drawer for later. Nothing here holds
a revealed value; only :class:`Revealed`, handed back once by the workflow, does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from services.core.errors import SchakelError

REQUEST_TTL: Final = timedelta(hours=24)
"""How long a request may be approved and revealed after it was filed."""


class State(StrEnum):
    """Where a request is in the four-eyes workflow."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVEALED = "revealed"


class ReidError(SchakelError):
    """A re-identification step was refused; the message says why and what to do.

    Never carries the value behind a pseudonym.
    """


class UnknownRequestError(ReidError):
    """No request has the given id."""


@dataclass(frozen=True, slots=True)
class Request:
    """One re-identification request (its row in ``reid_requests``).

    ``pseudonym`` is the recipient's pseudonym, ``field`` the field it was delivered in,
    ``kind`` the identifier kind behind it and ``subject`` the hub-internal pseudonym of the
    value — what the audit log indexes subjects by — and ``source_record`` the delivered audit
    record that issued the pseudonym. None of these is the value itself.
    """

    id: str
    requester: str
    recipient: str
    covenant_id: str
    pseudonym: str
    field: str
    kind: str
    subject: str
    source_record: str
    purpose: str
    case_ref: str
    state: State
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    revealed_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """Whether the request can no longer be approved or revealed at ``now``."""
        return now >= self.expires_at

    def status(self, now: datetime) -> str:
        """The state to show: ``expired`` for an open request past its expiry."""
        open_states = (State.REQUESTED, State.APPROVED)
        return "expired" if self.state in open_states and self.expired(now) else str(self.state)


@dataclass(frozen=True, slots=True)
class Revealed:
    """The value behind a pseudonym, returned once to the requester. Never store or log it."""

    request_id: str
    kind: str
    value: str

    def __repr__(self) -> str:
        return f"Revealed(request_id={self.request_id!r}, kind={self.kind!r}, value=<hidden>)"
