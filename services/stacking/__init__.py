"""The stacking service (IIPSy): evidence store, worker and alert publishing (see docs/stacking.md)."""
