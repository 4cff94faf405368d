"""Logging every view of audit data: who looked at what, when.

One row per request that shows audit data (page or JSON). ``detail`` holds the route's
parameters that are not identifiers — filters, a record id, a covenant — and, for subject
look-ups, only the identifier kind and how many internal pseudonyms were searched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from services.database.tables.web import access_log


@dataclass(frozen=True, slots=True)
class AccessEntry:
    at: datetime
    user: str
    route: str
    detail: dict[str, Any]


class AccessLog:
    """Writes and reads the ``access_log`` table of ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, user: str, route: str, detail: Mapping[str, Any]) -> None:
        row = {
            "at": datetime.now(UTC),
            "user_name": user,
            "route": route,
            "detail": orjson.dumps(dict(detail), option=orjson.OPT_SORT_KEYS).decode(),
        }
        with self._engine.begin() as connection:
            connection.execute(access_log.insert(), row)

    def entries(self, *, user: str | None = None, limit: int = 100) -> list[AccessEntry]:
        """The newest ``limit`` entries, newest first, optionally of one user."""
        statement = select(
            access_log.c.at, access_log.c.user_name, access_log.c.route, access_log.c.detail
        )
        if user is not None:
            statement = statement.where(access_log.c.user_name == user)
        statement = statement.order_by(access_log.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            AccessEntry(at if at.tzinfo else at.replace(tzinfo=UTC), name, route, orjson.loads(d))
            for at, name, route, d in rows
        ]
