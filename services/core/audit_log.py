"""The audit topic's messages: what the router writes ahead and the indexer reads (pure).

The log-first router writes a batch's audit records to the ``audit`` topic (with its feed
messages and consumed offsets in one Kafka transaction, or before any feed message where the
broker has no transactions); the audit indexer reads them in order and is the single writer of
the SQL index and hash chain. One message carries part of one batch:

* ``records`` — audit records as built by :mod:`services.core.records` (deterministic ids);
* ``feeds`` — a copy of every feed message of those records (exchange id, recipient, key,
  value, and where the broker put it when known), which the hub re-delivers after the broker
  lost data;
* ``produced`` — ``(exchange_id, partition, offset)`` of feed messages acknowledged after their
  copy was written (the broker without transactions sends the copies first).

Messages are split so none exceeds ``max_bytes`` (a batch of 500 signals makes ~1,500 records,
more than a broker's default 1 MiB message limit). Replays of a batch give messages with the
same ids; the indexer drops records and copies it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

FORMAT = 1
"""Version of the message layout; the indexer refuses any other (fix: upgrade the indexer)."""
MAX_MESSAGE_BYTES = 512 * 1024
PARTITION_MAX = 2**31 - 1
"""The largest partition number Kafka has (int32), and the outbox's column holds."""
OFFSET_MAX = 2**63 - 1
"""The largest offset Kafka has (int64), and the outbox's column holds."""


class AuditLogError(ValueError):
    """A message on the audit topic that is not an audit-log message of this version."""


@dataclass(frozen=True, slots=True)
class FeedCopy:
    """A feed message as the audit log keeps it, for re-delivery after broker data loss."""

    exchange_id: str
    recipient: str
    key: bytes
    value: bytes
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class AuditLogMessage:
    """One decoded message of the audit topic."""

    records: list[dict[str, Any]] = field(default_factory=list)
    feeds: list[FeedCopy] = field(default_factory=list)
    produced: list[tuple[str, int, int]] = field(default_factory=list)
    at: str = ""
    """When the router wrote it (ISO 8601, UTC): the feed copies' creation time."""

    def written_at(self, otherwise: datetime) -> datetime:
        """:attr:`at` as an aware time (naive: UTC); ``otherwise`` if it is not a time."""
        try:
            moment = datetime.fromisoformat(self.at)
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            moment.astimezone(UTC)  # a time at the edge of the calendar may have no UTC
        except (ValueError, OverflowError):
            return otherwise
        return moment


def encode(
    records: Sequence[Mapping[str, object]],
    feeds: Sequence[FeedCopy],
    at: str,
    *,
    produced: Sequence[tuple[str, int, int]] = (),
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> list[bytes]:
    """The messages carrying ``records``, ``feeds`` and ``produced``; none above ``max_bytes``
    unless a single item is (it then travels alone). Nothing to carry gives no message."""
    items = [
        *(("records", orjson.dumps(record)) for record in records),
        *(("feeds", _feed_json(feed)) for feed in feeds),
        *(("produced", orjson.dumps(list(entry))) for entry in produced),
    ]
    out: list[bytes] = []
    chunk: dict[str, list[bytes]] = {"records": [], "feeds": [], "produced": []}
    size = 0
    for kind, item in items:
        if size and size + len(item) > max_bytes:
            out.append(_message(chunk, at))
            chunk = {"records": [], "feeds": [], "produced": []}
            size = 0
        chunk[kind].append(item)
        size += len(item) + 1
    if size:
        out.append(_message(chunk, at))
    return out


class UnknownFormatError(AuditLogError):
    """A well-formed audit-log message of another format version: an indexer must stop rather
    than skip it (a rolling upgrade would otherwise discard every new record)."""


def decode(value: bytes) -> AuditLogMessage:
    """The message ``value`` read from the audit topic; :class:`AuditLogError` if it is not one."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise AuditLogError(f"audit-log message is not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        if isinstance(data, dict) and isinstance(data.get("format"), int):
            raise UnknownFormatError(  # another version wrote it: never skip, stop and say so
                f"audit-log message of format {data['format']!r}, expected {FORMAT}. Fix: run an "
                "audit indexer of the same Schakel version as the routers."
            )
        raise AuditLogError(
            f"audit-log message of format {_format_of(data)!r}, expected {FORMAT}. Fix: run an "
            "audit indexer of the same Schakel version as the routers."
        )
    try:
        records = [dict(record) for record in data["records"]]
        feeds = [_feed(item) for item in data["feeds"]]
        produced = [
            (_name(e), _number(p, PARTITION_MAX), _number(o, OFFSET_MAX))
            for e, p, o in data["produced"]
        ]
        at = str(data["at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditLogError(f"audit-log message is malformed ({exc.__class__.__name__})") from None
    if any(not isinstance(record.get("record_id"), str) for record in records):
        raise AuditLogError("audit-log message holds a record without a record_id")
    return AuditLogMessage(records, feeds, produced, at)


def record_ids(messages: Iterable[AuditLogMessage]) -> list[str]:
    """Every record id the messages carry, in order (duplicates kept)."""
    return [str(record["record_id"]) for message in messages for record in message.records]


def _feed_json(feed: FeedCopy) -> bytes:
    return orjson.dumps(
        [
            feed.exchange_id,
            feed.recipient,
            feed.key.decode("utf-8"),
            feed.value.decode("utf-8"),
            feed.partition,
            feed.offset,
        ]
    )


def _feed(item: Any) -> FeedCopy:
    exchange_id, recipient, key, value, partition, offset = item
    return FeedCopy(
        _name(exchange_id),
        _name(recipient),
        str(key).encode("utf-8"),
        str(value).encode("utf-8"),
        None if partition is None else _number(partition, PARTITION_MAX),
        None if offset is None else _number(offset, OFFSET_MAX),
    )


def _name(value: object) -> str:
    """An exchange id or recipient as the outbox can hold it: text, not empty, no NUL."""
    text = str(value)
    if not text or "\x00" in text:
        raise ValueError("an exchange id or recipient is empty or holds NUL")
    return text


def _number(value: Any, top: int) -> int:
    """A Kafka partition or offset as the outbox can hold it: 0 to ``top``."""
    number = int(value)  # TypeError or ValueError refuses what is no number
    if not 0 <= number <= top:
        raise ValueError("a partition or offset is out of range")
    return number


def _message(chunk: Mapping[str, list[bytes]], at: str) -> bytes:
    parts = [
        b'{"format":%d,"at":%s' % (FORMAT, orjson.dumps(at)),
        *(b',"%s":[%s]' % (kind.encode(), b",".join(items)) for kind, items in chunk.items()),
        b"}",
    ]
    return b"".join(parts)


def _format_of(data: object) -> object:
    """The format a message names, for an error: a number or nothing, else only its type (a
    string there may be anything, and errors and refusal records never carry content)."""
    value = data.get("format") if isinstance(data, dict) else data
    return value if value is None or isinstance(value, int | float) else type(value).__name__
