"""The root error of coverage."""

from __future__ import annotations

from services.core.errors import SchakelError


class CoverageError(SchakelError, ValueError):
    """A coverage query or release cannot be done as asked; the message says what to change."""
