"""Users of the web workplace: roles, scopes, adding and signing in.

Roles:

``privacy-officer``
    Reads the audit log, within the covenants and/or partners of the user's scope (no scope
    rows at all means the user sees nothing until one is given).
``covenant-manager``
    Sees covenant reports (aggregates) and the integrity check, not individual records.
``admin``
    Sees everything, unscoped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from services.audit.queries import Scope
from services.web.passwords import LOG2_N, check_password, dummy_hash, hash_password
from services.web.schema import metadata, web_user_scopes, web_users

PRIVACY_OFFICER: Final = "privacy-officer"
COVENANT_MANAGER: Final = "covenant-manager"
ADMIN: Final = "admin"
ROLES: Final = (PRIVACY_OFFICER, COVENANT_MANAGER, ADMIN)


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
        if role != PRIVACY_OFFICER and (covenants or partners):
            raise UserError(f"only a {PRIVACY_OFFICER} has a covenant or partner scope.")
        scope_rows = [{"user_name": name, "kind": "covenant", "value": c} for c in covenants]
        scope_rows += [{"user_name": name, "kind": "partner", "value": p} for p in partners]
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
