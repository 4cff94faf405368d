"""Garbage-collector settings for a router worker process.

Routing allocates many short-lived objects per signal (dicts, decisions, records), so the
cyclic collector's default generation-0 threshold (700 allocations) makes it run every few
signals and walk every long-lived object (compiled covenants, schemas, caches) again and
again. Freezing what start-up loaded and raising the threshold measured +10-20 % on the
router's batch step on this machine (docs/performance.md). Reference counting still frees
almost everything at once; only cycles wait longer.
"""

from __future__ import annotations

import gc


def tune_gc(threshold: int = 50_000) -> None:
    """Move everything allocated so far out of the collector's view and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 20, 20)
