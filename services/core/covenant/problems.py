"""A problem found in a covenant file: where it is, what is wrong, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the loader or checker; ``line``/``column`` are 1-based (0 = whole file)."""

    file: str
    line: int
    message: str
    hint: str = ""
    severity: Severity = "error"
    column: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        hint = f" (fix: {self.hint})" if self.hint else ""
        return f"{where}: {self.severity}: {self.message}{hint}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"
