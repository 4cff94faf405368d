"""Reading and writing re-identification requests in their tables
(:mod:`services.database.tables.reid`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from services.audit.queries import utc
from services.database.tables.reid import metadata, reid_events, reid_requests
from services.reid.model import Request, State


def create_schema(engine: Engine) -> None:
    """Create the re-identification tables if missing."""
    metadata.create_all(engine)


def insert(connection: Connection, request: Request) -> None:
    """Store a new request."""
    connection.execute(
        reid_requests.insert(),
        {
            "id": request.id,
            "requester": request.requester,
            "recipient": request.recipient,
            "covenant_id": request.covenant_id,
            "pseudonym": request.pseudonym,
            "field": request.field,
            "kind": request.kind,
            "subject": request.subject,
            "source_record": request.source_record,
            "purpose": request.purpose,
            "case_ref": request.case_ref,
            "state": request.state.value,
            "requested_at": request.requested_at,
            "expires_at": request.expires_at,
        },
    )


def move(connection: Connection, request_id: str, source: State, values: Mapping[str, Any]) -> bool:
    """Set ``values`` on the request if it is still in state ``source``; whether it was.

    The state check is part of the ``UPDATE``, so two concurrent steps cannot both succeed
    (the second finds the state changed): this is what makes a reveal happen only once.
    """
    statement = (
        reid_requests.update()
        .where(reid_requests.c.id == request_id, reid_requests.c.state == source.value)
        .values(**values)
    )
    return connection.execute(statement).rowcount == 1


def add_event(
    connection: Connection, request_id: str, step: str, actor: str, at: datetime, record_id: str
) -> None:
    """Store one step of a request and the id of its audit record."""
    connection.execute(
        reid_events.insert(),
        {"request_id": request_id, "at": at, "step": step, "actor": actor, "record_id": record_id},
    )


def get(connection: Connection, request_id: str) -> Request | None:
    """The request with ``request_id``, or ``None``."""
    row = (
        connection.execute(select(reid_requests).where(reid_requests.c.id == request_id))
        .mappings()
        .one_or_none()
    )
    return None if row is None else _request(row)


def listing(engine: Engine, *, involving: str | None = None, limit: int = 200) -> list[Request]:
    """Requests, newest first; with ``involving``, only those that user filed or decided."""
    statement = select(reid_requests).order_by(reid_requests.c.requested_at.desc()).limit(limit)
    if involving is not None:
        statement = statement.where(
            (reid_requests.c.requester == involving) | (reid_requests.c.decided_by == involving)
        )
    with engine.connect() as connection:
        return [_request(row) for row in connection.execute(statement).mappings()]


def events(engine: Engine, request_id: str) -> list[tuple[str, str, datetime, str]]:
    """``(step, actor, at, record_id)`` of a request's steps, in order."""
    statement = (
        select(reid_events.c.step, reid_events.c.actor, reid_events.c.at, reid_events.c.record_id)
        .where(reid_events.c.request_id == request_id)
        .order_by(reid_events.c.id)
    )
    with engine.connect() as connection:
        return [(s, a, utc(at), r) for s, a, at, r in connection.execute(statement).all()]


def _moment(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _request(row: Mapping[Any, Any]) -> Request:
    return Request(
        id=row["id"],
        requester=row["requester"],
        recipient=row["recipient"],
        covenant_id=row["covenant_id"],
        pseudonym=row["pseudonym"],
        field=row["field"],
        kind=row["kind"],
        subject=row["subject"],
        source_record=row["source_record"],
        purpose=row["purpose"],
        case_ref=row["case_ref"],
        state=State(row["state"]),
        requested_at=utc(row["requested_at"]),
        expires_at=utc(row["expires_at"]),
        decided_by=row["decided_by"],
        decided_at=_moment(row["decided_at"]),
        reason=row["reason"],
        revealed_at=_moment(row["revealed_at"]),
    )
