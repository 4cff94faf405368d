"""The pure domain: envelope, schemas, identifiers, covenants, policy and pseudonyms.

Nothing in this package performs network or database I/O. Reading covenant and schema files
happens once, at load time, in the loaders; everything on the per-signal path is pure.
"""
