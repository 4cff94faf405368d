"""Which ``{id}`` path segments of the RIEC JSON API may enter the access log: only one in the
format of an item id (an exchange id: a UUID) or a case id (``case-YYYY-`` and hex digits).
Anything else is text anyone can type — a name, an address — and is logged as a placeholder.
"""

from __future__ import annotations

import re

ITEM_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CASE_ID = re.compile(r"case-[0-9]{4}-[0-9a-f]{8,32}")
NOT_AN_ID = "<not an id>"


def loggable_id(kind: str, key: str) -> str:
    """``key`` if it has the format of a ``kind`` (``item`` or ``case``) id, else a placeholder."""
    pattern = ITEM_ID if kind == "item" else CASE_ID
    return key if pattern.fullmatch(key) else NOT_AN_ID
