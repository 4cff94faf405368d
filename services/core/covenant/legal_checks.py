"""``schakel covenant check`` for the legal footing of a covenant version.

- A law cited under ``legal_basis`` must be in force on the first day of the version: the WGS
  (Wet gegevensverwerking door samenwerkingsverbanden, Stb. 2024, 198) is in force since
  1 March 2025, so a version valid before then cannot rest on it (error).
- Signals about suspected drug locations are personal data of a criminal-law nature; a
  covenant with a private-law party (grid operator, housing corporation, farmers' hotline,
  chemicals trader, waste company, tip line) needs its own basis for that: AVG art. 10 with
  UAVG art. 33 (warning when no legal basis cites either).
- A covenant exchanging personal data rests on a DPIA (AVG art. 35): ``dpia`` names it
  (warning when absent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.core.covenant.loader import LoadedCovenant
from services.core.covenant.problems import Problem


@dataclass(frozen=True)
class Law:
    """A law a covenant may cite, recognised by ``pattern``, in force from ``in_force``."""

    name: str
    citation: str
    pattern: re.Pattern[str]
    in_force: date


LAWS = (
    Law(
        "WGS",
        "Wet gegevensverwerking door samenwerkingsverbanden, Stb. 2024, 198",
        re.compile(r"\bWGS\b|gegevensverwerking door samenwerkingsverbanden", re.IGNORECASE),
        date(2025, 3, 1),
    ),
)

PRIVATE_KINDS = frozenset({"energy", "housing", "rural", "chemicals", "waste", "residents"})
"""Party kinds that are private-law bodies (water is left out: water boards are public)."""

CRIMINAL_DATA_BASIS = re.compile(
    r"\bAVG\b[^;]*?\bart(?:ikel|\.)?\s*10\b|\bUAVG\b[^;]*?\bart(?:ikel|\.)?\s*33\b",
    re.IGNORECASE,
)
"""A legal basis citing AVG art. 10 or UAVG art. 33 (criminal-law personal data)."""


def check_legal(covenants: Iterable[LoadedCovenant]) -> list[Problem]:
    """Every problem with the legal bases and DPIA references of a covenant set."""
    problems: list[Problem] = []
    for item in covenants:
        cov = item.covenant
        for index, basis in enumerate(cov.legal_basis):
            for law in LAWS:
                if law.pattern.search(basis) and cov.valid.from_ < law.in_force:
                    problems.append(
                        Problem(
                            item.file,
                            item.line("legal_basis", index),
                            f"legal basis cites the {law.name} ({law.citation}), in force since "
                            f"{law.in_force}, but {cov.key} is valid from {cov.valid.from_}: a "
                            "version valid before then cannot rest on it",
                            f"cite the basis in force on {cov.valid.from_}, or let a new version "
                            f"that cites the {law.name} start on or after {law.in_force}",
                        )
                    )
        private = sorted(p for p, party in cov.parties.items() if party.kind in PRIVATE_KINDS)
        if private and not any(CRIMINAL_DATA_BASIS.search(b) for b in cov.legal_basis):
            named = ", ".join(private[:4]) + (" …" if len(private) > 4 else "")
            problems.append(
                Problem(
                    item.file,
                    item.line("legal_basis"),
                    f"private-law parties ({named}) exchange signals about suspected drug "
                    "locations, which are criminal-law personal data, but no legal basis cites "
                    "AVG art. 10 / UAVG art. 33",
                    'add the basis, e.g. "AVG art. 10 jo. UAVG art. 33 (strafrechtelijke '
                    'persoonsgegevens)"',
                    severity="warning",
                )
            )
        if cov.dpia is None:
            problems.append(
                Problem(
                    item.file,
                    item.line("legal_basis"),
                    f"{cov.key} names no DPIA: a covenant exchanging personal data rests on a "
                    "data protection impact assessment (AVG art. 35)",
                    "add `dpia: {reference: TEXT, date: YYYY-MM-DD}`",
                    severity="warning",
                )
            )
    return problems
