"""Signed, expiring session cookies and CSRF tokens.

The session cookie holds the user name and the session's CSRF token, signed with the server
secret (itsdangerous, HMAC-SHA1 over a key derived from the secret) and timestamped, so it
expires after ``max_age`` seconds without server-side state. The user is looked up again on
every request, so a removed user or changed role takes effect at once.

Before sign-in there is no session, so the sign-in form's token lives in its own short-lived
signed cookie. A form POST is accepted only if its ``csrf`` field equals the token of the
request's session (or pre-session) cookie, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "schakel_session"
LOGIN_COOKIE = "schakel_login"


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf: str


class SessionSigner:
    """Makes and reads session and sign-in cookies signed with ``secret``."""

    def __init__(self, secret: bytes, *, max_age: int) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self.max_age = max_age
        self._sessions = URLSafeTimedSerializer(secret, salt="schakel-session")
        self._logins = URLSafeTimedSerializer(secret, salt="schakel-login")

    def new_session(self, user: str) -> tuple[Session, str]:
        session = Session(user, secrets.token_urlsafe(24))
        return session, self._sessions.dumps({"u": session.user, "c": session.csrf})

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or ``None`` if missing, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        user, csrf = data.get("u"), data.get("c")
        if not isinstance(user, str) or not isinstance(csrf, str):
            return None
        return Session(user, csrf)

    def new_login_token(self) -> tuple[str, str]:
        """A CSRF token for the sign-in form, and the cookie that carries it."""
        token = secrets.token_urlsafe(24)
        return token, self._logins.dumps(token)

    def login_token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._logins.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def same_token(expected: str | None, offered: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; never true when either is missing."""
    if not expected or not offered:
        return False
    return hmac.compare_digest(expected.encode(), offered.encode())
