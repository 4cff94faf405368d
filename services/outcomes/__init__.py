"""The outcomes worker: the matching index, returns to the partners that signalled a location,
and the measurements indicators are tested by (docs/outcomes.md)."""
