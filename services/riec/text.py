"""What free text the workplace stores: no control or escape characters (a terminal escape,
a NUL, a bidirectional override), which would let one analyst's text disguise itself or
others' on a page, in an export or in a terminal. Only multi-line fields (notes, decisions,
outcome descriptions) keep line breaks and tabs."""

from __future__ import annotations

import unicodedata

LINE_BREAKS = frozenset("\n\r\t")
# bidirectional embeddings, overrides and isolates: they reorder the text around them
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def refused_character(value: str, *, lines: bool = False) -> str | None:
    """The first character of ``value`` the workplace refuses, as ``U+XXXX``, or ``None``."""
    for char in value:
        if lines and char in LINE_BREAKS:
            continue
        if unicodedata.category(char) == "Cc" or char in BIDI:
            return f"U+{ord(char):04X}"
    return None
