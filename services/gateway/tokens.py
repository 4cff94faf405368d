"""API tokens: issued once, stored only as a SHA-256 hash, revocable.

A token reads ``skl_<token_id>_<secret>``: the public ``token_id`` finds the row, the SHA-256
of the whole token is compared in constant time. The secret is 32 random bytes, so a plain
hash (no slow KDF) is enough: there is nothing to guess. Tokens belong to a *partner* (may
publish its own signals) or a *recipient* (may read its own feed), never both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import Engine, select, update

from services.core.envelope import PARTNER_ID_PATTERN
from services.database.tables.gateway import gateway_tokens
from services.gateway.errors import GatewayError

Kind = Literal["partner", "recipient"]
KINDS: Final[tuple[Kind, ...]] = ("partner", "recipient")

_TOKEN = re.compile(r"^skl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(PARTNER_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from: a partner or a recipient, by name, and the token used."""

    kind: Kind
    name: str
    token_id: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A row of ``schakel gateway token list`` (no secret, no hash)."""

    token_id: str
    kind: Kind
    principal: str
    created_at: datetime
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Tokens in the ``gateway_tokens`` table of ``engine``."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def issue(self, kind: Kind, principal: str) -> tuple[str, TokenInfo]:
        """A new token for ``principal``; the token is returned here and never again."""
        if kind not in KINDS:
            raise GatewayError(f"unknown token kind {kind!r}; use one of {', '.join(KINDS)}")
        if not _NAME.match(principal):
            raise GatewayError(
                f"{kind} names are lower-case slugs matching {PARTNER_ID_PATTERN}; "
                "use the name the covenants give the party"
            )
        token_id = secrets.token_hex(6)
        token = f"skl_{token_id}_{secrets.token_urlsafe(32)}"
        info = TokenInfo(token_id, kind, principal, self._clock(), None)
        with self._engine.begin() as connection:
            connection.execute(
                gateway_tokens.insert().values(
                    token_id=token_id,
                    kind=kind,
                    principal=principal,
                    token_hash=token_hash(token),
                    created_at=info.created_at,
                )
            )
        return token, info

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by its id; False if there is no such unrevoked token."""
        with self._engine.begin() as connection:
            done = connection.execute(
                update(gateway_tokens)
                .where(gateway_tokens.c.token_id == token_id, gateway_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        return bool(done.rowcount)

    def list(self, kind: Kind | None = None, principal: str | None = None) -> list[TokenInfo]:
        query = select(
            gateway_tokens.c.token_id,
            gateway_tokens.c.kind,
            gateway_tokens.c.principal,
            gateway_tokens.c.created_at,
            gateway_tokens.c.revoked_at,
        ).order_by(gateway_tokens.c.kind, gateway_tokens.c.principal, gateway_tokens.c.created_at)
        if kind is not None:
            query = query.where(gateway_tokens.c.kind == kind)
        if principal is not None:
            query = query.where(gateway_tokens.c.principal == principal)
        with self._engine.connect() as connection:
            return [TokenInfo(*row) for row in connection.execute(query)]

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token; None for anything else."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        query = select(
            gateway_tokens.c.kind,
            gateway_tokens.c.principal,
            gateway_tokens.c.token_hash,
            gateway_tokens.c.revoked_at,
        ).where(gateway_tokens.c.token_id == match.group(1))
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.token_hash, token_hash(token)):
            return None
        kind: Kind = "partner" if row.kind == "partner" else "recipient"
        return Principal(kind, row.principal, match.group(1))
