"""How the pages write values that must not break or sprawl: Jinja filters for the templates.

``when`` writes a moment as ``2026-10-30 03:54:45`` (UTC, to the second) in a ``<time>``
element that keeps it on one line and carries the exact moment in its ``datetime``
attribute; ``breakable`` lets a long name (a signal type, a step code, a
``covenant@version/rule``) wrap after its ``_``, ``/`` and ``@`` rather than push a table past
the window (a ``<wbr>``: copying the name copies it whole).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markupsafe import Markup, escape

_SEPARATORS = re.compile(r"([/@_])")


def when(moment: datetime | None, empty: str = "—") -> Markup:
    """``moment`` (aware, or naive UTC) as a one-line ``<time>``; ``empty`` for ``None``."""
    if moment is None:
        return escape(empty)
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), shown)


def breakable(name: object) -> Markup:
    """``name``, escaped, with a line-break opportunity after each ``_``, ``/`` and ``@``."""
    parts = _SEPARATORS.split(str(name))
    return Markup("").join(
        Markup("{}<wbr>").format(part) if _SEPARATORS.fullmatch(part) else escape(part)
        for part in parts
    )
