"""NH Drugsalert coverage: per municipality and month, reports by residents and businesses
against other indicators, released only as suppressed counts (pure; no I/O)."""
