"""`schakel up`: the hub on one machine — broker, router workers, maintenance, demo partners."""
