"""Export bundles: the audit log in one file that an outside auditor can verify alone.

A bundle is a JSON-lines file (UTF-8, one JSON object per line, sorted keys):

1. a header ``{"format": "schakel-audit-bundle/v1", "exported_at": ..., "chain": <the
   encoding, in words>, "public_keys": [{"key_id", "public_key" (hex, raw Ed25519),
   "fingerprint"}]}``;
2. ``{"checkpoint": {...}}`` per checkpoint (:meth:`~services.audit.checkpoint.Checkpoint.to_json`),
   then ``{"purge": {...}}`` per purge commitment
   (:meth:`~services.audit.retention.PurgeCommitment.to_json`): the signed anchors the records
   start from after a retention purge (none for a log that was never purged);
3. ``{"record": {"seq", "prev_seq", "record_id", "chain_hash" (hex), "body"}}`` per record in
   ``seq`` order, ``body`` being the stored canonical JSON *text*, hashed as is;
4. a trailer ``{"end": {"records": n}}``, so a bundle cut short in transit is noticed.

``schakel audit verify --bundle FILE`` needs nothing else. The keys in the header are what
the hub says it signs with; an auditor who got the public key through another channel pins it
with ``--public-key`` (the bundle's keys are then trusted only where they equal it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from services.audit.chain import HASH_BYTES, ChainRecord
from services.audit.checkpoint import Checkpoint, format_time
from services.audit.errors import AuditStoreError
from services.audit.retention import PurgeCommitment
from services.core.keys import ED25519_KEY_BYTES, public_key_fingerprint
from services.core.progress import Progress, silent, told

FORMAT = "schakel-audit-bundle/v1"
"""The ``format`` of the header; readers refuse anything else."""

CHAIN_ENCODING = (
    "chain_hash_n = SHA-256(chain_hash_{n-1} || u64be(seq_n) || u64be(prev_seq_n) || "
    "u32be(len(record_id_n)) || record_id_n || body_n), UTF-8 text, chain_hash_0 = "
    "SHA-256('schakel-audit-chain/v1 genesis')"
)

_DUMP = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True, slots=True)
class Bundle:
    """An opened bundle: header, checkpoints and trusted-by-the-hub keys read; the records
    are streamed by :meth:`records`."""

    path: Path
    exported_at: str
    public_keys: Mapping[str, bytes]
    checkpoints: list[Checkpoint]
    purges: list[PurgeCommitment]

    def records(self) -> Iterator[ChainRecord]:
        """The records in file order; :class:`AuditStoreError` if a line is malformed or the
        file ends before its trailer."""
        count = 0
        for number, kind, value in _lines(self.path):
            if kind == "record":
                count += 1
                yield _record(value, self._where(number))
            elif kind == "end":
                if type(value) is not dict or value.get("records") != count:
                    raise AuditStoreError(
                        f"{self._where(number)}: the trailer does not match the {count} records "
                        "before it. Fix: ask for the bundle again; it was altered."
                    )
                return
        raise AuditStoreError(
            f"bundle {self.path} ends without its trailer line: the file is incomplete. "
            "Fix: copy or download it again."
        )

    def _where(self, number: int) -> str:
        return f"line {number} of bundle {self.path}"


def write_bundle(
    path: Path,
    records: Iterable[ChainRecord],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, bytes],
    exported_at: datetime,
    purges: Iterable[PurgeCommitment] = (),
    *,
    progress: Progress = silent,
) -> int:
    """Write a bundle to ``path`` (replaced if it exists); return the number of records,
    telling ``progress`` how many are written now and then."""
    header = {
        "format": FORMAT,
        "exported_at": format_time(exported_at),
        "chain": CHAIN_ENCODING,
        "public_keys": [
            {"key_id": key_id, "public_key": raw.hex(), "fingerprint": public_key_fingerprint(raw)}
            for key_id, raw in sorted(public_keys.items())
        ],
    }
    count = 0
    try:
        with path.open("wb") as out:
            out.write(orjson.dumps(header, option=_DUMP))
            for checkpoint in checkpoints:
                out.write(orjson.dumps({"checkpoint": checkpoint.to_json()}, option=_DUMP))
            for purge in purges:
                out.write(orjson.dumps({"purge": purge.to_json()}, option=_DUMP))
            for record in told(records, progress):
                line = {
                    "seq": record.seq,
                    "prev_seq": record.prev_seq,
                    "record_id": record.record_id,
                    "chain_hash": record.chain_hash.hex(),
                    "body": record.body,
                }
                out.write(orjson.dumps({"record": line}, option=_DUMP))
                count += 1
            out.write(orjson.dumps({"end": {"records": count}}, option=_DUMP))
    except OSError as error:
        raise AuditStoreError(
            f"cannot write the audit bundle {path}: {error.strerror}. Fix: choose a writable "
            "path with enough free space for --out."
        ) from None
    return count


def bundle_records(path: Path) -> int | None:
    """The record count a bundle's trailer states (read from its end), or None if the file
    does not end with one; a cheap total for progress, not a check (``records`` checks)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 256))
            tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        records = orjson.loads(tail)["end"]["records"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return records if type(records) is int else None


def open_bundle(path: Path) -> Bundle:
    """Read a bundle's header and checkpoints; :class:`AuditStoreError` if it is not one."""
    exported_at = ""
    keys: dict[str, bytes] = {}
    checkpoints: list[Checkpoint] = []
    purges: list[PurgeCommitment] = []
    for number, kind, value in _lines(path):
        where = f"line {number} of bundle {path}"
        if kind == "format":
            if value != FORMAT:
                raise AuditStoreError(
                    f"{path} is not a Schakel audit bundle ({FORMAT}). Fix: pass a file made by "
                    "`schakel audit export`."
                )
        elif kind == "header":
            exported_at, keys = value
        elif kind == "checkpoint":
            checkpoints.append(Checkpoint.from_json(value, where))
        elif kind == "purge":
            purges.append(PurgeCommitment.from_json(value, where))
        else:
            break
    return Bundle(path, exported_at, keys, checkpoints, purges)


def _lines(path: Path) -> Iterator[tuple[int, str, Any]]:
    """``(line number, kind, value)`` per line; the header gives two: ``format`` and
    ``header`` (its export time and keys)."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise AuditStoreError(
            f"cannot open the audit bundle {path}: {error.strerror}. Fix: check the path."
        ) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            where = f"line {number} of bundle {path}"
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise AuditStoreError(
                    f"{where} is not JSON. Fix: ask for the bundle again; it was damaged."
                ) from None
            if not isinstance(data, dict) or (number > 1 and len(data) != 1):
                raise AuditStoreError(f"{where} is not a bundle line. Fix: ask for it again.")
            if number == 1:
                yield number, "format", data.get("format")
                yield number, "header", (str(data.get("exported_at", "")), _keys(data, where))
                continue
            ((kind, value),) = data.items()
            yield number, kind, value


def _keys(header: Mapping[str, Any], where: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for entry in header.get("public_keys") or []:
        try:
            raw = bytes.fromhex(entry["public_key"])
            key_id = entry["key_id"]
        except (KeyError, TypeError, ValueError):
            raw, key_id = b"", None
        if type(key_id) is not str or len(raw) != ED25519_KEY_BYTES:
            raise AuditStoreError(
                f"{where} lists a public key that is not a key id with 32 raw Ed25519 bytes "
                "in hex. Fix: ask for the bundle again."
            )
        keys[key_id] = raw
    return keys


def _record(value: Any, where: str) -> ChainRecord:
    try:
        record = ChainRecord(
            value["seq"],
            value["prev_seq"],
            value["record_id"],
            value["body"],
            bytes.fromhex(value["chain_hash"]),
        )
    except (KeyError, TypeError, ValueError):
        record = None
    if (
        record is None
        or type(record.seq) is not int
        or type(record.prev_seq) is not int
        or type(record.record_id) is not str
        or type(record.body) is not str
        or len(record.chain_hash) != HASH_BYTES
    ):
        raise AuditStoreError(
            f"{where} is not an audit record line (seq, prev_seq, record_id, chain_hash, "
            "body). Fix: ask for the bundle again; it was damaged."
        )
    return record
