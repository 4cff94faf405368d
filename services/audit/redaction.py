"""What a partner-scoped privacy officer may see of one audit record: its own side only.

An audit record names both sides of an exchange: the origin (whose signal it was) and the
recipient. A privacy officer scoped to partners sees every record one of *their* partners is
on (:class:`~services.audit.queries.Scope`), but the other side's own references are not
theirs to learn:

* of the **origin** (when it is not one of the officer's partners): its signal id and trace
  id, its envelope signature, and the hub-internal pseudonyms of the signal's identifiers
  (``subjects``: the hub's own linking keys, never a partner's);
* of the **recipient** (when it is not one of them): the pseudonyms it was given, its feed
  exchange id, and which of its own signals an outcome answers (``answers.signal_id``);
* of an **approver** (when it is not one of them): the approval signal's id.

Bodies are redacted when read, never when stored: the stored record, its hash and the chain
stay whole, and an unscoped (hub-wide) privacy officer sees everything. A redacted view
lists what it left out under ``redacted``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

__all__ = ["ORIGIN_SIDE", "RECIPIENT_SIDE", "REDACTED", "redact"]

REDACTED: Final = "[redacted: another partner's]"

ORIGIN_SIDE: Final = ("signal_id", "trace_id", "partner_signature", "subjects")
"""Top-level fields that belong to the record's origin."""
RECIPIENT_SIDE: Final = ("pseudonyms", "feed_exchange_id", "answers.signal_id")
"""Fields that belong to the record's recipient (``answers``: an outcome's return)."""


def redact(
    body: dict[str, Any],
    origin: str | None,
    recipient: str | None,
    partners: Collection[str] | None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``body`` as an officer scoped to ``partners`` may see it (``None``: unscoped, all of
    it), and the paths left out. The stored ``body`` is not changed."""
    if partners is None:
        return body, ()
    paths: list[str] = []
    if origin not in partners:
        paths += ORIGIN_SIDE
    if recipient not in partners:
        paths += RECIPIENT_SIDE
    approval = body.get("approval")
    if isinstance(approval, dict) and approval.get("by") not in partners:
        paths.append("approval.signal_id")
    shown = dict(body)
    done: list[str] = []
    for path in paths:
        if _blank(shown, path.split(".")):
            done.append(path)
    return shown, tuple(done)


def _blank(body: dict[str, Any], parts: list[str]) -> bool:
    """Replace the value at ``parts`` (copying every dict on the way); False when absent or
    empty."""
    head, rest = parts[0], parts[1:]
    value = body.get(head)
    if value is None or value in ({}, ""):
        return False
    if rest:
        if not isinstance(value, dict):
            return False
        copied = dict(value)
        body[head] = copied
        return _blank(copied, rest)
    if isinstance(value, dict):  # keep the field paths, drop the values
        body[head] = dict.fromkeys(value, REDACTED)
    else:
        body[head] = REDACTED
    return True
