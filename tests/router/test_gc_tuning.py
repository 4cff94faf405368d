"""The worker's garbage-collector settings."""

from __future__ import annotations

import gc

from services.router.gc_tuning import tune_gc


def test_tune_gc_freezes_start_up_objects_and_raises_the_threshold():
    before = gc.get_threshold()
    try:
        tune_gc(threshold=12_345)
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
