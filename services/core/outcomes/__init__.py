"""Outcomes: what came of signals, returned to the partners that sent them, and indicators
tested against them (docs/outcomes.md). Pure: no I/O."""
