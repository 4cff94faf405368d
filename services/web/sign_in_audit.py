"""Failed sign-ins as audit records: in the hash chain, searchable like any decision.

A refused sign-in (wrong password or unknown name) is written to the audit log as action
``sign-in``, result ``refused``, object ``web.sign-in``, so a privacy officer finds the
attempts on the exchanges page or with ``schakel audit search --result refused``, and
verification vouches for them like for every other record. The record names the account
only when it exists (a name that is no account may be a password typed in the wrong field),
never the password; the client is an HMAC of its address under the server secret (the same
client always gets the same reference, the address itself is not kept); and it says how long
the throttle (:mod:`services.web.throttle`) now blocks sign-in, if it does.

Sign-ins refused while a back-off runs are not written one by one (a flood would fill the
log); the failure that started the back-off is.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from services.audit.model import AuditStore
from services.core.errors import SchakelError
from services.web.sessions import Clock, utc_now

log = logging.getLogger(__name__)

ACTION: Final = "sign-in"
REFUSED: Final = "refused"
OBJECT: Final = "web.sign-in"


def client_reference(secret: bytes, client: str) -> str:
    """A stable reference to a client address that does not reveal it."""
    return hmac.new(secret, b"schakel-client\0" + client.encode(), hashlib.sha256).hexdigest()[:16]


class SignInAudit:
    """Writes refused sign-ins to ``store`` (the hub's audit log, without a signer: the
    writers' next checkpoint covers them)."""

    def __init__(
        self,
        store: AuditStore,
        secret: bytes,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._secret = secret
        self._clock = clock
        self._new_id = new_id

    def refused(self, account: str | None, client: str, backoff_seconds: float) -> None:
        """Record a refused sign-in on ``account`` (``None``: no such account) from
        ``client``, which started a back-off of ``backoff_seconds`` (0: none). A store error is
        logged (its type only) and raised: a refusal that cannot be audited is not answered."""
        record = self.record(account, client, backoff_seconds, self._clock())
        try:
            self._store.record([record], [])
        except SchakelError as error:
            log.error("a refused sign-in could not be audited: %s", type(error).__name__)
            raise

    def record(
        self, account: str | None, client: str, backoff_seconds: float, now: datetime
    ) -> dict[str, Any]:
        return {
            "record_id": f"sign-in-{self._new_id()}",
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "action": ACTION,
            "result": REFUSED,
            "object": OBJECT,
            "signal_id": None,
            "origin": None,
            "recipient": None,
            "actor": "web",
            "covenant": None,
            "account": account,
            "client": client_reference(self._secret, client),
            "reason": "wrong password" if account is not None else "no such account",
            "backoff_seconds": round(backoff_seconds, 3),
            "subjects": {},
        }
