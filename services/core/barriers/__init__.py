"""Barrier models (after the CCV barrier model) as data, and the matrix of which business-process
steps have signal sources, covenant rules and recipients (pure; no I/O besides reading files in
the loader)."""
