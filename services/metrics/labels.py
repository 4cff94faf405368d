"""Label values that may appear in metrics: names from configuration, never identifiers.

Every label value the hub exports is a partner, recipient, covenant, rule, signal type,
topic or reason *name* — all written by people in covenant files and code, all lower-case
words. :func:`safe` enforces that shape, so a value that slipped in from signal content (an
EAN, a postcode, a licence plate, a name) becomes ``other`` instead of a time series.
"""

from __future__ import annotations

import re

from services.core.decision import NO_RECIPIENT, Decision

OTHER = "other"
NONE = "none"
_NAME = re.compile(r"[a-z][a-z0-9._-]{0,62}")
_DIGITS = re.compile(r"\d{4,}")
"""Four or more digits in a row look like part of an identifier (postcode, EAN, KvK, BAG)."""


def safe(value: str | None) -> str:
    """``value`` when it is a lower-case name without long digit runs, else ``other``."""
    if not value or value == NO_RECIPIENT:
        return NONE
    if _NAME.fullmatch(value) is None or _DIGITS.search(value) is not None:
        return OTHER
    return value


_WITHHELD = (
    ("was revoked", "revoked"),
    ("is not in force", "not_yet_in_force"),
    ("expired on", "expired"),
    ("could not be evaluated", "condition_error"),
    ("not met", "condition_not_met"),
)


def withheld_reason(decision: Decision) -> str:
    """Why ``decision`` was withheld, as one of a fixed set of reason names."""
    return withheld_reason_of(decision.reason, has_rule=decision.rule is not None)


def withheld_reason_of(reason: str | None, *, has_rule: bool) -> str:
    """The reason name of a withheld audit record's ``reason`` text (see core.policy)."""
    if not has_rule:
        return "no_rule"
    text = reason or ""
    for fragment, name in _WITHHELD:
        if fragment in text:
            return name
    return OTHER


def rejection_code(reason: str | None) -> str:
    """The stable code of a rejection record's ``reason`` (``"<code>: <text>"``)."""
    code, _, _ = (reason or "").partition(":")
    return safe(code.strip())
