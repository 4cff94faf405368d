"""IIPSy stacking, pure: evidence per location, the stacking rule, and alert decisions.

No I/O here: :mod:`services.stacking` is the shell that reads signals, keeps the evidence in
SQL and publishes alerts. See docs/stacking.md.
"""
