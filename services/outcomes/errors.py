"""The one exception of the outcomes service."""

from __future__ import annotations

from services.core.errors import SchakelError


class OutcomeError(SchakelError):
    """The outcome store or worker cannot do its work; the message names the thing and the fix
    and never an identifier."""
