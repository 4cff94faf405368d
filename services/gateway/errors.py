"""The gateway's root exception."""

from __future__ import annotations

from services.core.errors import SchakelError


class GatewayError(SchakelError):
    """The gateway cannot do what was asked (a token, a broker or a store problem). Messages
    name the thing and the fix, never a token or an identifier."""


class UnknownTopic(GatewayError):  # noqa: N818 - reads as a sentence in messages
    """The topic asked for does not exist on the broker."""
