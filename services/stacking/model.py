"""The interface of the stacking evidence store (SQL in production, memory in tests)."""

from __future__ import annotations

from typing import Protocol

from services.core.stacking.alerts import Alert
from services.core.stacking.engine import Changes, Snapshot


class StackingStore(Protocol):
    """Durable stacking state: locations, evidence, aliases and alerts (pseudonyms only)."""

    def load(self) -> Snapshot:
        """Everything stored, to resume the stacker after a restart."""
        ...

    def write(self, changes: Changes) -> None:
        """Make one batch's changes durable, all or nothing; idempotent for replayed evidence."""
        ...

    def unpublished(self) -> list[Alert]:
        """Alerts whose newest revision has not been acknowledged by the broker yet."""
        ...

    def mark_published(self, alerts: list[Alert]) -> None:
        """Note that these revisions were published (a newer revision stays unpublished)."""
        ...

    def alerts(
        self, *, municipality: str | None = None, min_score: float = 0.0, limit: int = 1000
    ) -> list[Alert]:
        """Current alerts, highest score first."""
        ...

    def close(self) -> None: ...
