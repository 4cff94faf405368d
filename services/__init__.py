"""Schakel: a covenant-governed information-exchange hub.

``services.core`` is the pure domain (no I/O); every other subpackage is a thin shell of I/O
around it.
"""
