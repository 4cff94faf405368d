"""The four-eyes re-identification workflow: request, approve or reject, reveal once.

Rules, each checked where it applies:

* only a user acting for the recipient may file a request — an ``admin``, a
  ``privacy-officer`` scoped to the recipient (as partner) or to the covenant, or a
  ``riec-analyst`` scoped to both (from a case file, :mod:`services.riec.cases`);
* only pseudonyms delivered to that recipient under a rule with ``reidentify: on-request``
  qualify, and the covenant in force must still allow it (:mod:`services.reid.issued`);
* a second, different user approves or rejects — an ``admin`` or a ``privacy-officer``
  scoped to that covenant;
* only the requester reveals, only an approved request, only once, and only before the request
  expires (:data:`~services.reid.model.REQUEST_TTL` after it was filed);
* neither approved nor revealed once its purpose is over, as
  :attr:`Reidentification.purpose_over` says (by default: a request filed from a RIEC case,
  once the case is closed or purged, :mod:`services.reid.purpose`).

Every step writes an event row and an audit record (action ``reidentify-<step>``, subjects the
hub-internal pseudonym, never the value; record id ``reid-<request id>-<step>``, so a retried
write is idempotent). A reveal is committed as spent and audited *before* the value is handed
back, so a value is never shown without an audit record; if auditing fails the value is not
shown and the request stays spent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

from sqlalchemy import Engine

from services.audit.model import AuditStore
from services.audit.queries import Scope, record
from services.core.covenant.model import Covenant
from services.core.errors import SchakelError
from services.core.pseudonyms import INTERNAL, Domain, PseudonymError, Pseudonymiser
from services.reid import store
from services.reid.issued import check_in_force, find_issue
from services.reid.model import (
    REQUEST_TTL,
    ReidError,
    Request,
    Revealed,
    State,
    UnknownRequestError,
)
from services.reid.purpose import case_over
from services.web.users import ADMIN, PRIVACY_OFFICER, RIEC_ANALYST, User

Clock = Callable[[], datetime]
PurposeOver = Callable[[Request], str | None]
"""Why a request's purpose is over (a sentence), or ``None`` while it holds."""

MAX_PURPOSE: Final = 500
MAX_CASE: Final = 100
STEP_RESULTS: Final = {  # the audit record's "result" per step
    "request": "requested",
    "approve": "approved",
    "reject": "rejected",
    "reveal": "revealed",
}


def may_request(user: User, recipient: str, covenant_id: str) -> bool:
    """Whether ``user`` may file a request for ``recipient`` under ``covenant_id``."""
    if user.role == ADMIN:
        return True
    if user.role == RIEC_ANALYST:  # from a case file, for its own RIEC under its covenants
        return recipient in user.partners and covenant_id in user.covenants
    return user.role == PRIVACY_OFFICER and (
        recipient in user.partners or covenant_id in user.covenants
    )


def may_decide(user: User, covenant_id: str) -> bool:
    """Whether ``user`` may approve or reject requests under ``covenant_id``."""
    return user.role == ADMIN or (user.role == PRIVACY_OFFICER and covenant_id in user.covenants)


def _now(clock: Clock) -> datetime:
    moment = clock()
    if moment.utcoffset() is None:
        raise ReidError("the clock gave a time without zone. Fix: use datetime.now(UTC).")
    return moment.astimezone(UTC)


def _text(what: str, value: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ReidError(f"a re-identification request needs a {what}. Fix: give one.")
    if len(value) > limit:
        raise ReidError(f"the {what} is longer than {limit} characters. Fix: shorten it.")
    return value


class Reidentification:
    """Re-identification requests on ``engine`` (which also holds the audit tables), audited
    into ``audit``; ``covenants`` are the covenant versions the hub knows (in force or not)."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditStore,
        pseudonymiser: Pseudonymiser,
        covenants: Sequence[Covenant],
        *,
        clock: Clock = lambda: datetime.now(UTC),
        ttl: timedelta = REQUEST_TTL,
        new_id: Callable[[], str] = lambda: secrets.token_hex(6),
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._pseudonymiser = pseudonymiser
        self._covenants = tuple(covenants)
        self._clock = clock
        self._ttl = ttl
        self._new_id = new_id
        self.purpose_over: PurposeOver | None = partial(case_over, engine)
        """Asked before a request is approved or revealed: by default, a request filed from a
        RIEC case is spent once the case is closed or purged (:mod:`services.reid.purpose`)."""

    @property
    def engine(self) -> Engine:
        """The database of the requests and the audit tables (and the web users)."""
        return self._engine

    @property
    def audit(self) -> AuditStore:
        """The audit store the steps are written to."""
        return self._audit

    def create_schema(self) -> None:
        """Create the request tables if missing."""
        store.create_schema(self._engine)

    # -- the steps -----------------------------------------------------------------------

    def request(
        self,
        requester: User,
        *,
        recipient: str,
        covenant_id: str,
        pseudonym: str,
        purpose: str,
        case_ref: str,
    ) -> Request:
        """File a request to reveal ``pseudonym``; :class:`ReidError` when it does not qualify."""
        now = _now(self._clock)
        if not may_request(requester, recipient, covenant_id):
            raise ReidError(
                f"{requester.name} ({requester.role}) may not request re-identification for "
                f"{recipient} under {covenant_id}. Fix: an admin, or a privacy officer scoped to "
                "that recipient or covenant, files the request."
            )
        purpose = _text("purpose", purpose, MAX_PURPOSE)
        case_ref = _text("case reference", case_ref, MAX_CASE)
        pseudonym = pseudonym.strip()
        try:
            self._pseudonymiser.key_version_of(pseudonym)
        except PseudonymError as error:
            raise ReidError(f"{error}. Fix: copy the pseudonym from the feed message.") from None
        if not pseudonym.startswith("r"):
            raise ReidError(
                "the pseudonym is one-way (prefix 'p'): it was issued under a rule without "
                "re-identification and cannot be revealed."
            )
        check_in_force(self._covenants, covenant_id, recipient, now)
        issue = find_issue(self._engine, recipient, covenant_id, pseudonym)
        kind, subject = self._subject(Domain(covenant_id, recipient, reversible=True), pseudonym)
        made = Request(
            id=self._new_id(),
            requester=requester.name,
            recipient=recipient,
            covenant_id=covenant_id,
            pseudonym=pseudonym,
            field=issue.field,
            kind=kind,
            subject=subject,
            source_record=issue.record_id,
            purpose=purpose,
            case_ref=case_ref,
            state=State.REQUESTED,
            requested_at=now,
            expires_at=now + self._ttl,
        )
        with self._engine.begin() as connection:
            store.insert(connection, made)
            store.add_event(
                connection, made.id, "request", made.requester, now, _rid(made, "request")
            )
        self._write_audit(made, "request", made.requester, now)
        return made

    def approve(self, request_id: str, approver: User) -> Request:
        """Approve a request (four eyes: not by its requester)."""
        return self._decide(request_id, approver, State.APPROVED, None)

    def reject(self, request_id: str, approver: User, reason: str) -> Request:
        """Reject a request, with the reason the requester will see."""
        return self._decide(request_id, approver, State.REJECTED, _text("reason", reason, 500))

    def reveal(self, request_id: str, user: User) -> Revealed:
        """The value behind the pseudonym of an approved request, once, to its requester."""
        now = _now(self._clock)
        current = self.get(request_id)
        if user.name != current.requester:
            raise ReidError(
                f"only {current.requester}, who filed request {request_id}, may see its value."
            )
        if current.state is State.REVEALED:
            raise ReidError(
                f"request {request_id} was revealed already and shows its value only once. "
                "Fix: file a new request if the value is needed again."
            )
        if current.state is not State.APPROVED:
            raise ReidError(
                f"request {request_id} is {current.state}, not approved. Fix: wait for a second "
                "authorised user to approve it."
            )
        self._check_open(current, now)
        self._check_purpose(current)
        check_in_force(self._covenants, current.covenant_id, current.recipient, now)
        domain = Domain(current.covenant_id, current.recipient, reversible=True)
        try:
            kind, value = self._pseudonymiser.reidentify(domain, current.pseudonym)
        except SchakelError as error:
            raise ReidError(f"request {request_id}: {error}") from None
        with self._engine.begin() as connection:
            moved = store.move(
                connection, request_id, State.APPROVED, {"state": "revealed", "revealed_at": now}
            )
            if moved:
                store.add_event(
                    connection, request_id, "reveal", user.name, now, _rid(current, "reveal")
                )
        if not moved:
            raise ReidError(
                f"request {request_id} was revealed meanwhile; it shows its value once."
            )
        try:
            self._write_audit(current, "reveal", user.name, now)
        except SchakelError:
            raise ReidError(
                f"request {request_id}: the reveal could not be audited, so the value is not "
                "shown; the request is spent. Fix: repair the audit store, then file a new "
                "request."
            ) from None
        return Revealed(request_id, kind, value)

    # -- reading -------------------------------------------------------------------------

    def get(self, request_id: str) -> Request:
        """The request with ``request_id``; :class:`UnknownRequestError` if there is none."""
        with self._engine.connect() as connection:
            found = store.get(connection, request_id)
        if found is None:
            raise UnknownRequestError(
                f"no re-identification request {request_id!r}. Fix: see `schakel reid list`."
            )
        return found

    def listing(self, involving: str | None = None) -> list[Request]:
        """Requests, newest first; with ``involving``, those that user filed or decided."""
        return store.listing(self._engine, involving=involving)

    def now(self) -> datetime:
        """The workflow's clock, for showing expiry."""
        return _now(self._clock)

    # -- helpers -------------------------------------------------------------------------

    def _decide(self, request_id: str, approver: User, to: State, reason: str | None) -> Request:
        now = _now(self._clock)
        current = self.get(request_id)
        step = "approve" if to is State.APPROVED else "reject"
        if approver.name == current.requester:
            raise ReidError(
                f"{approver.name} filed request {request_id} and may not {step} it (four eyes). "
                "Fix: a second authorised user decides."
            )
        if not may_decide(approver, current.covenant_id):
            raise ReidError(
                f"{approver.name} ({approver.role}) may not {step} requests under "
                f"{current.covenant_id}. Fix: an admin, or a privacy officer scoped to that "
                "covenant, decides."
            )
        if current.state is not State.REQUESTED:
            raise ReidError(f"request {request_id} is {current.state} already; it is decided once.")
        self._check_open(current, now)
        if to is State.APPROVED:
            self._check_purpose(current)
            check_in_force(self._covenants, current.covenant_id, current.recipient, now)
        values = {
            "state": to.value,
            "decided_by": approver.name,
            "decided_at": now,
            "reason": reason,
        }
        with self._engine.begin() as connection:
            moved = store.move(connection, request_id, State.REQUESTED, values)
            if moved:
                store.add_event(
                    connection, request_id, step, approver.name, now, _rid(current, step)
                )
        if not moved:
            raise ReidError(f"request {request_id} was decided meanwhile; it is decided once.")
        self._write_audit(current, step, approver.name, now, reason)
        return self.get(request_id)

    def _check_open(self, current: Request, now: datetime) -> None:
        if current.expired(now):
            raise ReidError(
                f"request {current.id} expired at {current.expires_at.isoformat()}. Fix: file "
                "a new request."
            )

    def _check_purpose(self, current: Request) -> None:
        over = self.purpose_over(current) if self.purpose_over is not None else None
        if over is not None:
            raise ReidError(
                f"request {current.id}: {over}, so its purpose is over and the value is not "
                "for it any more. Fix: a request for a purpose that still holds."
            )

    def _subject(self, domain: Domain, pseudonym: str) -> tuple[str, str]:
        """``(kind, hub-internal pseudonym)`` of the value; the value itself is dropped here."""
        try:
            kind, value = self._pseudonymiser.reidentify(domain, pseudonym)
            return kind, self._pseudonymiser.pseudonym(INTERNAL, kind, value)
        except SchakelError as error:
            raise ReidError(f"{error}. Fix: copy the pseudonym from the feed message.") from None

    def _write_audit(
        self, current: Request, step: str, actor: str, now: datetime, reason: str | None = None
    ) -> None:
        self._audit.record([self._audit_record(current, step, actor, now, reason)], [])

    def _audit_record(
        self, current: Request, step: str, actor: str, now: datetime, reason: str | None
    ) -> dict[str, Any]:
        source = record(self._engine, current.source_record, Scope.everything())
        covenant = (source.entry.body.get("covenant") if source else None) or {
            "id": current.covenant_id
        }
        return {
            "record_id": _rid(current, step),
            "action": f"reidentify-{step}",
            "result": STEP_RESULTS[step],
            "object": current.kind,
            "signal_id": source.entry.body.get("signal_id") if source else None,
            "origin": None,
            "recipient": current.recipient,
            "actor": actor,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "processing_activity": covenant.get("purpose"),
            "trace_id": current.id,
            "covenant": covenant,
            "fields": {},
            "withheld_fields": [],
            "pseudonyms": {current.field: current.pseudonym},
            "subjects": {current.field: current.subject},
            "reason": reason,
            "retention_days": None,
            "reidentify": True,
            "request": {
                "id": current.id,
                "requester": current.requester,
                "purpose": current.purpose,
                "case": current.case_ref,
                "source_record": current.source_record,
            },
        }


def _rid(current: Request, step: str) -> str:
    return f"reid-{current.id}-{step}"
