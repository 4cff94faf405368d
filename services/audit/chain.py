"""The hash chain over the audit records: every record commits to the one before it.

A record's ``chain_hash`` is ::

    chain_hash_n = SHA-256( chain_hash_{n-1}                      32 bytes
                          || seq_n                               8 bytes, unsigned big-endian
                          || prev_seq_n                          8 bytes, unsigned big-endian
                          || len(record_id_n)                    4 bytes, unsigned big-endian
                          || record_id_n                         UTF-8
                          || body_n )                            UTF-8, to the end

``prev_seq_n`` is the ``seq`` of the record before it in the chain (0 for the first record),
and ``chain_hash_0`` is :data:`GENESIS`, a domain-separated constant, so a chain of this log
can never be mistaken for a hash chain of something else. ``body`` is the stored canonical
JSON text (sorted keys), hashed exactly as stored, never re-serialised. The length prefix of
``record_id`` and ``body`` being last make the encoding unambiguous.

``prev_seq`` is redundant for integrity (``chain_hash_{n-1}`` already commits to the previous
``seq``) but is stored with every record so that a verifier can tell *what* happened where
the chain breaks: a claimed predecessor that is missing means a deletion, one that is not
the row before means an insertion or a reordering (:mod:`services.audit.verify`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from services.audit.rows import AuditRow

GENESIS = hashlib.sha256(b"schakel-audit-chain/v1 genesis").digest()
"""``chain_hash_0``: the hash the first record links to."""

HASH_BYTES = 32
"""Length of a chain hash (SHA-256)."""

_HEADER = struct.Struct(">QQI")
_sha256 = hashlib.sha256


class ChainRecord(NamedTuple):
    """One audit record as the chain sees it: what is hashed, and the stored hash; read from
    a database for verification also what its index holds, which must agree with ``body``:
    the stored searchable columns (``columns``: the values of
    :data:`services.audit.index.INDEX_COLUMNS`) and the pseudonyms of its subject-index rows
    (``subjects``, sorted)."""

    seq: int
    prev_seq: int
    record_id: str
    body: str
    chain_hash: bytes
    columns: tuple[Any, ...] | None = None
    subjects: tuple[str, ...] | None = None


def link(previous: bytes, seq: int, prev_seq: int, record_id: str, body: str) -> bytes:
    """``chain_hash`` of the record ``(seq, record_id, body)`` following ``previous``."""
    rid = record_id.encode()
    return _sha256(previous + _HEADER.pack(seq, prev_seq, len(rid)) + rid + body.encode()).digest()


def unique_rows(rows: Iterable[AuditRow]) -> list[AuditRow]:
    """``rows`` without repeats of a ``record_id`` (the first one counts), so a batch can be
    chained before it is inserted."""
    seen: dict[str, AuditRow] = {}
    for row in rows:
        seen.setdefault(row.columns[0], row)
    return list(seen.values())


def chained(
    rows: Sequence[AuditRow], head: tuple[int, bytes]
) -> tuple[list[bytes], tuple[int, bytes]]:
    """The chain hashes of ``rows`` numbered after ``head`` = ``(seq, chain_hash)`` of the last
    stored record (``(0, GENESIS)`` for an empty log) — row ``i`` gets ``seq`` = head's + 1 +
    ``i`` and ``prev_seq`` = its ``seq`` - 1 — and the new head."""
    seq, previous = head
    hashes: list[bytes] = []
    append = hashes.append
    header = _HEADER.pack
    for row in rows:
        columns = row.columns
        rid = columns[0].encode()
        seq += 1
        previous = _sha256(
            previous + header(seq, seq - 1, len(rid)) + rid + columns[-1].encode()
        ).digest()
        append(previous)
    return hashes, (seq, previous)
