"""Verifying the audit log: recompute the hash chain and check the signed checkpoints.

:func:`verify` is pure: it takes the records (:class:`~services.audit.chain.ChainRecord`, in
``seq`` order, from a database or an export bundle), the checkpoints (from the database, a
witness, a bundle) and the trusted public keys, and says whether the log is intact. If not,
it names the first position where it is not, and what happened there:

``modified``
    The record's content no longer gives its stored hash, while it still claims the right
    predecessor: its body, record id or hash was changed.
``deleted``
    The record claims a predecessor (``prev_seq``) that is not there: records were removed.
``inserted``
    A record is not part of the chain: the record after it claims the one before it.
``reordered``
    A record claims a predecessor that comes after it, or sequence numbers do not increase.
``checkpoint-signature`` / ``unknown-key``
    A checkpoint's signature is not valid for its key, or signed by a key not trusted.
``checkpoint-mismatch``
    The chain at a signed checkpoint differs from what was signed: the records up to it were
    changed and the chain recomputed after the checkpoint was made.
``truncated``
    A checkpoint names a record beyond the end of the log: the newest records were cut off.
``anchor-signature``
    A purge commitment (:mod:`services.audit.retention`) is not validly signed by a trusted
    key: the anchor the remaining chain starts from was forged or altered.

After a retention purge the chain starts at the newest validly signed purge commitment (its
``seq`` and chain hash) instead of the genesis hash; checkpoints of purged records are skipped,
and one at the anchor itself must match it.

The classification uses ``prev_seq``, which is itself covered by the hash; a tamperer who
also rewrites it can change what a break is called, never hide that there is one. Records
after the newest checkpoint are vouched for by the chain only (anyone who can write the
database can append correctly chained records); the result says how many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from services.audit.chain import GENESIS, ChainRecord, link
from services.audit.checkpoint import Checkpoint, format_time
from services.audit.retention import PurgeCommitment
from services.core.progress import Progress, silent, told

FindingKind = Literal[
    "modified",
    "deleted",
    "inserted",
    "reordered",
    "checkpoint-signature",
    "unknown-key",
    "checkpoint-mismatch",
    "truncated",
    "anchor-signature",
]

MAX_FINDINGS = 20
"""Findings kept in a result; the first one is what matters, the rest are often its echo."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with the log, at ``seq``; ``record_id`` is the record concerned (for
    a deletion: the first record after the gap), when there is one."""

    kind: FindingKind
    seq: int
    record_id: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seq": self.seq,
            "record_id": self.record_id,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of :func:`verify`."""

    records: int
    """Records read."""
    last_seq: int
    """``seq`` of the last record (0 for an empty log)."""
    checkpoints: int
    """Validly signed checkpoints that match the chain."""
    newest_checkpoint: int
    """``seq`` of the newest matching checkpoint (0 if none)."""
    unsigned_tail: int
    """Records after the newest matching checkpoint, vouched for by the chain alone."""
    findings: tuple[Finding, ...]
    """The first :data:`MAX_FINDINGS` findings, in log order."""
    total_findings: int
    anchor_seq: int = 0
    """``seq`` of the purge anchor the chain was verified from (0: from genesis)."""

    @property
    def ok(self) -> bool:
        return self.total_findings == 0

    @property
    def first(self) -> Finding | None:
        """The first thing wrong, or ``None`` if the log is intact."""
        return self.findings[0] if self.findings else None

    @property
    def message(self) -> str:
        """One human sentence: intact and what was checked, or the first finding."""
        first = self.first
        if first is not None:
            more = self.total_findings - 1
            tail = f" ({more} further finding{'s' if more != 1 else ''} after it)" if more else ""
            return f"audit log NOT intact: {first.message}{tail}"
        text = f"audit log intact: {self.records} records up to seq {self.last_seq}, chain verified"
        if self.anchor_seq:
            text += f" from the signed purge anchor at seq {self.anchor_seq}"
        if self.checkpoints:
            text += (
                f"; {self.checkpoints} signed checkpoints match, the newest at seq "
                f"{self.newest_checkpoint}"
            )
            if self.unsigned_tail:
                text += f"; {self.unsigned_tail} newer records are not yet under a checkpoint"
        elif self.records:
            text += (
                "; no signed checkpoint, so a cut-off tail or a rewritten chain cannot be detected"
            )
        return text + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "records": self.records,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "newest_checkpoint": self.newest_checkpoint,
            "unsigned_tail": self.unsigned_tail,
            "total_findings": self.total_findings,
            "anchor_seq": self.anchor_seq,
            "findings": [finding.to_json() for finding in self.findings],
        }


class _Findings:
    def __init__(self) -> None:
        self.kept: list[Finding] = []
        self.total = 0

    def add(self, kind: FindingKind, seq: int, record_id: str | None, message: str) -> None:
        self.total += 1
        if len(self.kept) < MAX_FINDINGS:
            self.kept.append(Finding(kind, seq, record_id, message))


def _named(seq: int, record_id: str | None) -> str:
    return f"seq {seq}" if record_id is None else f"seq {seq} (record {record_id})"


def _trusted(
    checkpoints: Iterable[Checkpoint], public_keys: Mapping[str, bytes], findings: _Findings
) -> list[Checkpoint]:
    """The validly signed checkpoints, each once, by ``seq``; findings for the others."""
    unique = {(c.seq, c.chain_hash, c.key_id, c.signature): c for c in checkpoints}
    trusted: list[Checkpoint] = []
    for checkpoint in sorted(unique.values(), key=lambda c: (c.seq, c.created_at)):
        where = f"the checkpoint at seq {checkpoint.seq} of {format_time(checkpoint.created_at)}"
        key = public_keys.get(checkpoint.key_id)
        if key is None:
            findings.add(
                "unknown-key",
                checkpoint.seq,
                None,
                f"{where} is signed by key {checkpoint.key_id}, which is not among the trusted "
                "public keys. Fix: pass the hub's public key (schakel keys public-key) if it "
                "is genuine; otherwise the checkpoint was forged.",
            )
        elif not checkpoint.verify(key):
            findings.add(
                "checkpoint-signature",
                checkpoint.seq,
                None,
                f"{where} does not carry a valid signature of key {checkpoint.key_id}: it was "
                "forged or altered.",
            )
        else:
            trusted.append(checkpoint)
    return trusted


def _anchor(
    anchors: Iterable[PurgeCommitment], public_keys: Mapping[str, bytes], findings: _Findings
) -> PurgeCommitment | None:
    """The newest validly signed purge commitment; findings for any that is not."""
    newest: PurgeCommitment | None = None
    for anchor in sorted(anchors, key=lambda a: a.seq):
        key = public_keys.get(anchor.key_id)
        if key is None or not anchor.verify(key):
            why = "a key not among the trusted public keys" if key is None else "no valid signature"
            findings.add(
                "anchor-signature",
                anchor.seq,
                None,
                f"the purge commitment up to seq {anchor.seq} of "
                f"{format_time(anchor.created_at)} (key {anchor.key_id}) has {why}: the anchor "
                "the chain starts from was forged or altered. Fix: pass the hub's public key if "
                "it is genuine; otherwise restore audit_purges from a good copy.",
            )
        else:
            newest = anchor
    return newest


def verify(
    records: Iterable[ChainRecord],
    checkpoints: Iterable[Checkpoint],
    public_keys: Mapping[str, bytes],
    anchors: Iterable[PurgeCommitment] = (),
    *,
    progress: Progress = silent,
) -> Verification:
    """Check ``records`` (ascending ``seq``) against their hash chain and the checkpoints
    signed by ``public_keys`` (key id -> raw Ed25519 public key), starting from the newest
    signed purge commitment in ``anchors`` if there is one. Reads ``records`` once, telling
    ``progress`` how many it has checked now and then."""
    findings = _Findings()
    anchor = _anchor(anchors, public_keys, findings)
    pending = _trusted(checkpoints, public_keys, findings)
    head, head_seq, head_id = GENESIS, 0, None
    if anchor is not None:
        head, head_seq = anchor.chain_hash, anchor.seq
        for checkpoint in pending:
            if checkpoint.seq == anchor.seq and checkpoint.chain_hash != anchor.chain_hash:
                findings.add(
                    "checkpoint-mismatch",
                    anchor.seq,
                    None,
                    f"the purge anchor at seq {anchor.seq} differs from the checkpoint signed "
                    f"at {format_time(checkpoint.created_at)}: the anchor or the purged records "
                    "were changed before the purge.",
                )
        pending = [checkpoint for checkpoint in pending if checkpoint.seq > anchor.seq]
    next_checkpoint = 0
    matched = newest = unsigned = count = 0
    last: ChainRecord | None = None
    iterator = iter(told(records, progress))
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        count += 1
        seq, record_id = current.seq, current.record_id
        while next_checkpoint < len(pending) and pending[next_checkpoint].seq < seq:
            gone = pending[next_checkpoint]
            if gone.seq > head_seq:
                findings.add(
                    "deleted",
                    gone.seq,
                    None,
                    f"seq {gone.seq}, covered by a signed checkpoint, is missing: records "
                    f"between {_named(head_seq, head_id)} and {_named(seq, record_id)} were "
                    "deleted.",
                )
            next_checkpoint += 1
        intact = seq > head_seq and (
            link(head, seq, head_seq, record_id, current.body) == current.chain_hash
        )
        if intact or _broken(current, following, head_seq, head_id, findings):
            head, head_seq, head_id = current.chain_hash, seq, record_id
        while next_checkpoint < len(pending) and pending[next_checkpoint].seq == seq:
            checkpoint = pending[next_checkpoint]
            next_checkpoint += 1
            if checkpoint.chain_hash == current.chain_hash:
                matched += 1
                newest = seq
                unsigned = 0
            else:
                findings.add(
                    "checkpoint-mismatch",
                    seq,
                    record_id,
                    f"the chain at {_named(seq, record_id)} differs from the checkpoint signed "
                    f"at {format_time(checkpoint.created_at)}: records at or before it were "
                    "changed and the chain recomputed after it was signed.",
                )
        if newest != seq:
            unsigned += 1
        last, current = current, following
    if next_checkpoint < len(pending):
        beyond = pending[-1]
        findings.add(
            "truncated",
            beyond.seq,
            None,
            f"the log ends at {_named(last.seq, last.record_id) if last else 'no record'}, but "
            f"the checkpoint signed at {format_time(beyond.created_at)} covers records up to "
            f"seq {beyond.seq}: the newest records were cut off.",
        )
    return Verification(
        records=count,
        last_seq=0 if last is None else last.seq,
        checkpoints=matched,
        newest_checkpoint=newest,
        unsigned_tail=unsigned,
        findings=tuple(findings.kept),
        total_findings=findings.total,
        anchor_seq=0 if anchor is None else anchor.seq,
    )


def _broken(
    record: ChainRecord,
    following: ChainRecord | None,
    head_seq: int,
    head_id: str | None,
    findings: _Findings,
) -> bool:
    """Add the finding for ``record``, which does not chain onto the head at ``head_seq``;
    return whether the chain goes on from ``record`` (False: it is not part of the chain)."""
    seq, claimed, record_id = record.seq, record.prev_seq, record.record_id
    here = _named(seq, record_id)
    if seq <= head_seq or claimed >= seq:
        findings.add(
            "reordered",
            seq,
            record_id,
            f"{here} is out of order: it claims to follow seq {claimed} and comes after "
            f"seq {head_seq}; records were reordered.",
        )
    elif claimed < head_seq:
        findings.add(
            "inserted",
            head_seq,
            head_id,
            f"{_named(head_seq, head_id)} is not part of the hash chain: the record after it, "
            f"{here}, follows seq {claimed}; a record was inserted.",
        )
    elif claimed > head_seq:
        findings.add(
            "deleted",
            claimed,
            record_id,
            f"records were deleted before {here}: it follows seq {claimed} in the hash chain, "
            f"which is missing (the record before it now is seq {head_seq}).",
        )
    elif following is not None and following.prev_seq == head_seq:
        findings.add(
            "inserted",
            seq,
            record_id,
            f"{here} is not part of the hash chain: the record after it, "
            f"{_named(following.seq, following.record_id)}, follows seq {head_seq}; "
            "a record was inserted.",
        )
        return False
    else:
        findings.add(
            "modified",
            seq,
            record_id,
            f"hash mismatch at {here}: its content no longer matches its chain hash; the "
            "record was modified.",
        )
    return True
