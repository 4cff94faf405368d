"""CSRF tokens: the sign-in form's (before there is a session) and their comparison.

Before sign-in there is no session, so the sign-in form's token lives in its own short-lived
cookie, signed with the server secret (itsdangerous, HMAC over a key derived from the secret)
and timestamped. A signed-in session's token is derived from the session token
(:mod:`services.web.sessions`). A form POST is accepted only if its ``csrf`` field equals the
expected token, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

LOGIN_COOKIE = "schakel_login"
LOGIN_SECONDS = 30 * 60
"""How long a sign-in form stays usable."""


class LoginTokens:
    """Makes and reads the sign-in form's CSRF token and the signed cookie carrying it."""

    def __init__(self, secret: bytes, *, max_age: int = LOGIN_SECONDS) -> None:
        if len(secret) < 32:
            raise ValueError("the web secret must be at least 32 bytes")
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret, salt="schakel-login")

    def new(self) -> tuple[str, str]:
        """A CSRF token for the sign-in form, and the cookie that carries it."""
        token = secrets.token_urlsafe(24)
        return token, self._serializer.dumps(token)

    def token(self, cookie: str | None) -> str | None:
        """The token in a sign-in cookie, or ``None`` if missing, forged or expired."""
        if not cookie:
            return None
        try:
            token = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        return token if isinstance(token, str) else None


def same_token(expected: str | None, offered: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; never true when either is missing."""
    if not expected or not offered:
        return False
    return hmac.compare_digest(expected.encode(), offered.encode())
