"""The root exception of the metrics package."""

from __future__ import annotations

from services.core.errors import SchakelError


class MetricsError(SchakelError):
    """Metrics or health endpoints cannot be set up (a bad setting, a port in use)."""
