"""The root exception of the stacking service."""

from __future__ import annotations

from services.core.errors import SchakelError


class StackingError(SchakelError):
    """The stacking service cannot go on; the message names the thing and the fix."""
