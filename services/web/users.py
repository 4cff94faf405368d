"""Users of the web workplace: roles, scopes, adding and signing in.

Roles:

``privacy-officer``
    Reads the audit log, within the covenants and/or partners of the user's scope (no scope
    rows at all means the user sees nothing until one is given).
``covenant-manager``
    Sees covenant reports (aggregates) and the integrity check, not individual records.
``admin``
    Sees everything, unscoped.
``riec-analyst``
    Works in the RIEC workplace (:mod:`services.riec`): triages the alerts and signals its
    RIEC's feeds delivered and keeps case files — only of the recipients (RIEC parties) named
    as its ``partner`` scope and under the covenants of its ``covenant`` scope (both needed;
    without either it sees nothing). It never reads the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from services.audit.queries import Scope
from services.database.tables.web import metadata, web_sessions, web_user_scopes, web_users
from services.web.passwords import LOG2_N, check_password, dummy_hash, hash_password

PRIVACY_OFFICER: Final = "privacy-officer"
COVENANT_MANAGER: Final = "covenant-manager"
ADMIN: Final = "admin"
RIEC_ANALYST: Final = "riec-analyst"
ROLES: Final = (PRIVACY_OFFICER, COVENANT_MANAGER, ADMIN, RIEC_ANALYST)
SCOPED: Final = (PRIVACY_OFFICER, RIEC_ANALYST)
"""Roles that have a covenant and partner scope."""


USER_CHANGED: Final = "changed"
"""The ``result`` of the audit record of a change to a user (:func:`user_change_record`)."""


class UserError(ValueError):
    """A user cannot be added as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    covenants: frozenset[str]
    partners: frozenset[str]

    @property
    def scope(self) -> Scope:
        """What this user may see of the audit log."""
        if self.role == RIEC_ANALYST:
            return Scope(covenants=self.covenants, partners=self.partners)
        if self.role != PRIVACY_OFFICER:
            return Scope.everything()
        return Scope(
            covenants=self.covenants if self.covenants or not self.partners else None,
            partners=self.partners or None,
        )


class UserStore:
    """Users in the ``web_users`` tables of ``engine``; ``kdf_cost`` is scrypt's log2 N."""

    def __init__(self, engine: Engine, *, kdf_cost: int = LOG2_N) -> None:
        self._engine = engine
        self._kdf_cost = kdf_cost

    def create_schema(self) -> None:
        """Create the web tables if missing (until the Alembic migrations include them)."""
        metadata.create_all(self._engine)

    def add(
        self,
        name: str,
        password: str,
        role: str,
        *,
        covenants: Iterable[str] = (),
        partners: Iterable[str] = (),
    ) -> User:
        """Add a user; :class:`UserError` for an unknown role, a taken name or a scope on a
        role that has none."""
        covenants, partners = frozenset(covenants), frozenset(partners)
        if not name.strip() or name != name.strip():
            raise UserError("a user name must be non-empty without surrounding spaces.")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}. Fix: use one of {', '.join(ROLES)}.")
        if role not in SCOPED and (covenants or partners):
            raise UserError(
                f"only a {PRIVACY_OFFICER} or a {RIEC_ANALYST} has a covenant or partner scope."
            )
        scope_rows = _scope_rows(name, covenants, partners)
        user_row = {
            "name": name,
            "role": role,
            "password_hash": hash_password(password, log2_n=self._kdf_cost),
            "created_at": datetime.now(UTC),
        }
        try:
            with self._engine.begin() as connection:
                connection.execute(web_users.insert(), user_row)
                if scope_rows:
                    connection.execute(web_user_scopes.insert(), scope_rows)
        except IntegrityError:
            raise UserError(f"a user named {name!r} exists already.") from None
        return User(name, role, covenants, partners)

    def remove(self, name: str) -> User:
        """Remove the user with their scope and sessions (signed out at once)."""
        user = self._existing(name)
        with self._engine.begin() as connection:
            _end_sessions(connection, name)
            connection.execute(delete(web_user_scopes).where(web_user_scopes.c.user_name == name))
            connection.execute(delete(web_users).where(web_users.c.name == name))
        return user

    def set_password(self, name: str, password: str) -> User:
        """Give the user a new password; their sessions end (sign in again with it)."""
        user = self._existing(name)
        digest = hash_password(password, log2_n=self._kdf_cost)
        with self._engine.begin() as connection:
            connection.execute(
                update(web_users).where(web_users.c.name == name).values(password_hash=digest)
            )
            _end_sessions(connection, name)
        return user

    def set_scope(
        self, name: str, *, covenants: Iterable[str] = (), partners: Iterable[str] = ()
    ) -> User:
        """Replace a privacy officer's scope (none at all: they see nothing until given one)."""
        user = self._existing(name)
        if user.role not in SCOPED:
            raise UserError(
                f"{name} is a {user.role}, who sees everything their role allows; only a "
                f"{PRIVACY_OFFICER} or a {RIEC_ANALYST} has a covenant or partner scope."
            )
        covenants, partners = frozenset(covenants), frozenset(partners)
        rows = _scope_rows(name, covenants, partners)
        with self._engine.begin() as connection:
            connection.execute(delete(web_user_scopes).where(web_user_scopes.c.user_name == name))
            if rows:
                connection.execute(web_user_scopes.insert(), rows)
        return User(name, user.role, covenants, partners)

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UserError(f"there is no user {name!r}. Fix: see `schakel users list`.")
        return user

    def get(self, name: str) -> User | None:
        """The user called ``name``, with scope, or ``None``."""
        with self._engine.connect() as connection:
            role = connection.execute(
                select(web_users.c.role).where(web_users.c.name == name)
            ).scalar_one_or_none()
            if role is None:
                return None
            scopes = connection.execute(
                select(web_user_scopes.c.kind, web_user_scopes.c.value).where(
                    web_user_scopes.c.user_name == name
                )
            ).all()
        covenants = frozenset(value for kind, value in scopes if kind == "covenant")
        partners = frozenset(value for kind, value in scopes if kind == "partner")
        return User(name, role, covenants, partners)

    def names(self) -> list[tuple[str, str]]:
        """``(name, role)`` of every user, by name."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(web_users.c.name, web_users.c.role).order_by(web_users.c.name)
            ).all()
        return [(name, role) for name, role in rows]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is right, else ``None``; as slow for unknown names."""
        with self._engine.connect() as connection:
            stored = connection.execute(
                select(web_users.c.password_hash).where(web_users.c.name == name)
            ).scalar_one_or_none()
        if stored is None:
            check_password(password, dummy_hash(self._kdf_cost))
            return None
        return self.get(name) if check_password(password, stored) else None


def describe_scope(user: User) -> str:
    """What ``user`` sees, in words (for the CLI and the audit record)."""
    if user.role not in SCOPED:
        return "everything the role allows"
    parts = []
    if user.covenants:
        parts.append("covenants " + ", ".join(sorted(user.covenants)))
    if user.partners:
        parts.append("partners " + ", ".join(sorted(user.partners)))
    return " and ".join(parts) or "nothing (no scope yet)"


def user_change_record(change: str, user: User, *, actor: str, at: datetime) -> dict[str, Any]:
    """The audit record of a change to a user of the workplace: ``change`` is ``add``,
    ``remove``, ``password`` or ``scope``. It names the account, its role and scope (never a
    password), and who made the change."""
    what = {
        "add": f"user {user.name} added as {user.role}, seeing {describe_scope(user)}",
        "remove": f"user {user.name} ({user.role}) removed and signed out",
        "password": f"password of user {user.name} changed; their sessions ended",
        "scope": f"scope of user {user.name} set: sees {describe_scope(user)}",
    }[change]
    return {
        "record_id": f"user-{change}-{uuid.uuid4()}",
        "action": f"user-{change}",
        "result": USER_CHANGED,
        "object": "web-user",
        "signal_id": None,
        "origin": None,
        "recipient": None,
        "actor": actor,
        "timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "processing_activity": "access management of the workplace",
        "trace_id": None,
        "covenant": None,
        "fields": {},
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": {},
        "reason": what,
        "retention_days": None,
        "reidentify": False,
        "user": {
            "name": user.name,
            "role": user.role,
            "covenants": sorted(user.covenants),
            "partners": sorted(user.partners),
        },
    }


def _scope_rows(
    name: str, covenants: Iterable[str], partners: Iterable[str]
) -> list[dict[str, str]]:
    rows = [{"user_name": name, "kind": "covenant", "value": c} for c in sorted(covenants)]
    return rows + [{"user_name": name, "kind": "partner", "value": p} for p in sorted(partners)]


def _end_sessions(connection: Connection, name: str) -> None:
    connection.execute(delete(web_sessions).where(web_sessions.c.user_name == name))
