"""Reference data on municipalities, and named regions built from it.

The reference file (``covenants/reference/municipalities_nh.csv``, from the province's list)
gives each CBS municipality code its safety region, police unit and RIEC. Covenants name
regions either as explicit code lists or as a selector over this table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # an annotation only: services.config imports this module for every
    # command and worker, and the covenant model (pydantic) costs ≈ 0.1 s to import
    from services.core.covenant.model import RegionSelector

REFERENCE_FILE = (
    Path(__file__).resolve().parents[2] / "covenants" / "reference" / "municipalities_nh.csv"
)


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    name: str
    safety_region: str
    police_unit: str
    riec: str


@dataclass(frozen=True)
class ReferenceData:
    """The municipalities the hub knows, by CBS code."""

    municipalities: Mapping[str, Municipality]

    @classmethod
    def from_csv(cls, text: str) -> ReferenceData:
        rows = csv.DictReader(io.StringIO(text))
        found = {
            row["gm_code"]: Municipality(
                code=row["gm_code"],
                name=row["gemeentenaam"],
                safety_region=row["veiligheidsregio"],
                police_unit=row["politie_eenheid"],
                riec=row["riec"],
            )
            for row in rows
        }
        return cls(found)

    @classmethod
    def load(cls, path: Path = REFERENCE_FILE) -> ReferenceData:
        return cls.from_csv(path.read_text(encoding="utf-8"))

    def select(self, selector: RegionSelector) -> frozenset[str]:
        """Codes matching every attribute the selector sets (province selects all)."""
        codes: Iterable[Municipality] = self.municipalities.values()
        if selector.riec is not None:
            codes = [m for m in codes if m.riec == selector.riec]
        if selector.safety_region is not None:
            codes = [m for m in codes if m.safety_region == selector.safety_region]
        if selector.police_unit is not None:
            codes = [m for m in codes if m.police_unit == selector.police_unit]
        return frozenset(m.code for m in codes)

    def values_of(self, attribute: str) -> frozenset[str]:
        """All values of one attribute, for 'did you mean' hints."""
        return frozenset(str(getattr(m, attribute)) for m in self.municipalities.values())

    def name_of(self, code: str) -> str:
        municipality = self.municipalities.get(code)
        return municipality.name if municipality else code
