"""Feed cursors: an opaque, URL-safe token for a vector of partition offsets.

A cursor names, for each partition of the recipient's feed topic, the offset of the next
record to read. It carries no recipient or topic: the feed it applies to always comes from the
caller's token, so a cursor taken from another recipient only ever moves through one's own
feed. Clients must treat it as opaque; its layout may change with its version field.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from services.gateway.problems import Problem

_VERSION = 1
_MAX_CURSOR = 4096
_MAX_PARTITION = 2**31 - 1  # Kafka partitions are int32, offsets int64
_MAX_OFFSET = 2**63 - 1


def encode_cursor(positions: dict[int, int]) -> str:
    body = orjson.dumps({"v": _VERSION, "o": {str(p): o for p, o in sorted(positions.items())}})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[int, int]:
    """The offsets of ``cursor`` (empty for none: start at the beginning)."""
    if not cursor:
        return {}
    bad = Problem(
        400,
        "invalid_cursor",
        "the cursor is not one this gateway handed out; use the cursor of the previous "
        "page as is, or leave it out to start at the beginning",
    )
    if len(cursor) > _MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    offsets = value.get("o") if isinstance(value, dict) and value.get("v") == _VERSION else None
    if not isinstance(offsets, dict):
        raise bad
    positions: dict[int, int] = {}
    for partition, offset in offsets.items():
        # ASCII digits only: "²".isdigit() is true but int("²") raises (fuzz corpus)
        if not (isinstance(partition, str) and partition.isascii() and partition.isdigit()) or not (
            isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset <= _MAX_OFFSET
        ):
            raise bad
        if int(partition) > _MAX_PARTITION:
            raise bad
        positions[int(partition)] = offset
    return positions
