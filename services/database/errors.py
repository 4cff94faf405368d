"""The root error of the hub's database package."""

from __future__ import annotations

from services.core.errors import SchakelError


class DatabaseError(SchakelError):
    """The hub's database could not be reached, opened or brought to the newest schema; the
    message names the database (password masked) and the fix."""
