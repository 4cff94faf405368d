"""Which covenants are illustrations: read from the covenant files the hub runs.

The covenant report and the record page show, beside a covenant's name, that it is an
illustration and not the text of a signed covenant (the covenant file's ``illustration``
field). Read per request, so a page follows edits to the files; a file that does not load
simply has no note (``schakel covenant check`` reports it).
"""

from __future__ import annotations

from datetime import date

from services.config import Paths
from services.core.covenant.loader import load_files
from services.core.covenant.model import Covenant


def illustrations(paths: Paths) -> dict[str, str]:
    """``covenant@version`` -> illustration note; the bare covenant id names the note of its
    newest version (a report covers every version)."""
    notes: dict[str, str] = {}
    covenants = sorted((i.covenant for i in load_files(paths.covenants).covenants), key=_start)
    for cov in covenants:  # oldest first: a bare id ends up with its newest version's note
        if cov.illustration:
            notes[cov.key] = notes[cov.covenant] = cov.illustration
    return notes


def _start(cov: Covenant) -> date:
    return cov.valid.from_
