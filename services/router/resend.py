"""Signals a partner sends again (pure: the loop looks up what the store holds and passes it in).

A signal id is decided once (deterministic exchange ids make the audit store skip records it
has). What comes back under an id already decided is one of two things:

* **the same signal again** (its canonical content digest — the signature's Merkle leaf, over
  the envelope without its signature attributes, as the gateway's digest — is the one decided
  before): an idempotent no-op. **The logged decision stands**: it is not decided again (a
  covenant reloaded in between would otherwise decide it differently), its record is not
  written again, and its feed messages are produced again — as logged, byte for byte — only
  when the broker never acknowledged them (a crash between logging and producing); one the
  broker acknowledged, or a recipient consumed, is not produced again, so repeated full
  re-sends do not multiply the feed. Messages the broker lost are the maintenance's to
  re-deliver, from the outbox (services/hub/maintenance.py).

"Decided before" means held by the audit index *or* by the audit log ahead of it
(:mod:`services.router.audit_tail`): on the log-first paths a signal read again within the
audit indexer's lag is screened as on the sql path.
* **other content under the same id** (a changed ``time``, other data): refused as
  :data:`CONFLICTING_RESEND`, dead-lettered and audited, as the gateway refuses it with 409.
  The decision made the first time stands; a changed signal needs a new id.

A signal without a signature has no digest to compare and is treated as the same signal.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.audit.model import OutboxEntry
from services.core.decision import Rejection, rejection_id
from services.core.records import rejection_record
from services.router.audit_tail import Logged
from services.router.batch import ACTOR, Consumed, DeadLetter, RoutedBatch

CONFLICTING_RESEND = "conflicting_resend"

SignalKey = tuple[str, str]
"""(source, signal id)."""


@dataclass(frozen=True)
class Screened:
    routed: RoutedBatch
    conflicting: int
    """Signals refused: an id decided before, sent with other content."""
    repeated: int
    """Feed messages of identical re-sends not produced again (the broker had them)."""
    resent: tuple[str, ...] = ()
    """Exchange ids of logged feed messages the broker never acknowledged, produced again."""


def decided_ids(routed: RoutedBatch) -> list[str]:
    """The record ids of the batch's decisions (to look up which were decided before)."""
    return [str(r["record_id"]) for r in routed.audit if r["action"] != "reject"]


def screen_resends(routed: RoutedBatch, logged: Mapping[str, Logged], now: datetime) -> Screened:
    """``routed`` without what re-sent or re-read signals must not change or produce again
    (see the module docstring); ``logged`` are the batch's decisions the audit log or index
    already holds, by record id."""
    if not logged and not routed.repeats:
        return Screened(routed, 0, 0)
    conflicting = _conflicting(routed, logged)
    out = RoutedBatch(
        signals=routed.signals,
        delivered=routed.delivered,
        withheld=routed.withheld,
        dead_letters=list(routed.dead_letters),
        origins=routed.origins,
        signal_of_exchange=routed.signal_of_exchange,
    )
    for record in routed.audit:
        if (str(record["origin"]), str(record["signal_id"])) in conflicting:
            continue
        if record["action"] != "reject" and str(record["record_id"]) in logged:
            continue  # decided before: the logged decision stands, not this one
        out.audit.append(record)
    repeated = 0
    for entry in routed.outbox:
        if _signal_of(entry, routed) in conflicting:
            continue
        before = logged.get(entry.exchange_id)
        if before is not None:
            # produced as logged below, or acknowledged (or consumed) before: not again
            repeated += before.copy is None
            continue
        out.outbox.append(entry)
    resent = []
    for record_id, before in logged.items():
        signal = routed.signal_of_exchange.get(record_id)
        if before.copy is not None and signal is not None and signal not in conflicting:
            out.outbox.append(before.copy)  # never acknowledged: produce it as decided then
            resent.append(record_id)
    refused = _refuse(out, routed, logged, conflicting, now)
    return Screened(out, len(refused), repeated, tuple(resent))


def _refuse(
    out: RoutedBatch,
    routed: RoutedBatch,
    logged: Mapping[str, Logged],
    conflicting: Mapping[SignalKey, str],
    now: datetime,
) -> set[tuple[SignalKey, str]]:
    """Add a refusal record and dead letter to ``out`` for every distinct conflicting content:
    against a decision made before, or against the first occurrence in this batch."""
    refusals = [(key, digest, routed.origins.get(key)) for key, digest in conflicting.items()]
    # read again within this batch (route_batch decided only the first): other content is
    # refused as a re-send after its decision is (the same content again is nothing new)
    before = _decided_digests(routed, logged)
    for r in routed.repeats:
        standing = before.get(r.key, r.first)  # the decision made before, else the first here
        if r.digest is not None and standing is not None and r.digest != standing:
            refusals.append((r.key, r.digest, r.record))
    refused: set[tuple[SignalKey, str]] = set()
    for key, digest, origin in sorted(refusals, key=lambda r: (r[0], r[1])):
        if (key, digest) in refused:
            continue  # one refusal per distinct content, as the rejection id says
        refused.add((key, digest))
        rejection = _rejection(key, digest, now)
        out.audit.append(rejection_record(rejection, actor=ACTOR))
        out.dead_letters.append(_dead_letter(rejection, origin, now))
    return refused


def _conflicting(routed: RoutedBatch, logged: Mapping[str, Logged]) -> dict[SignalKey, str]:
    """The batch's signals decided before with another content digest → their new digest."""
    conflicting: dict[SignalKey, str] = {}
    for record in routed.audit:
        before = logged.get(str(record["record_id"]))
        if before is None or record["action"] == "reject":
            continue
        new, old = _digest(record), _digest(before.record)
        if new is not None and old is not None and new != old:
            conflicting[(str(record["origin"]), str(record["signal_id"]))] = new
    return conflicting


def _decided_digests(routed: RoutedBatch, logged: Mapping[str, Logged]) -> dict[SignalKey, str]:
    """The content digest each of the batch's signals was decided with before, if it was."""
    digests: dict[SignalKey, str] = {}
    for record in routed.audit:
        before = logged.get(str(record["record_id"]))
        digest = _digest(before.record) if before is not None else None
        if digest is not None and record["action"] != "reject":
            digests[(str(record["origin"]), str(record["signal_id"]))] = digest
    return digests


def _digest(record: Mapping[str, Any]) -> str | None:
    signature = record.get("partner_signature")
    if not isinstance(signature, Mapping):
        return None
    leaf = signature.get("leaf")
    return leaf if isinstance(leaf, str) else None


def _signal_of(entry: OutboxEntry, routed: RoutedBatch) -> SignalKey | None:
    return routed.signal_of_exchange.get(entry.exchange_id)


def _rejection(key: SignalKey, digest: str, now: datetime) -> Rejection:
    source, signal_id = key
    return Rejection(
        # one record per distinct conflicting content: the same conflict sent again is skipped
        rejection_id=rejection_id(source, f"{signal_id}\x1fresend:{digest}"),
        signal_id=signal_id,
        source=source,
        code=CONFLICTING_RESEND,
        reason=(
            f"signal id {signal_id!r} of {source!r} was decided before with other content "
            "(another content digest); the first decision stands. Fix: give a changed signal "
            "a new id"
        ),
        decided_at=now,
    )


def _dead_letter(rejection: Rejection, record: Consumed | None, now: datetime) -> DeadLetter:
    return DeadLetter(
        key=(rejection.source or "-").encode(),
        value=orjson.dumps(
            {
                "rejection_id": rejection.rejection_id,
                "signal_id": rejection.signal_id,
                "partner": rejection.source,
                "code": rejection.code,
                "reason": rejection.reason,
                "topic": record.topic if record else None,
                "partition": record.partition if record else None,
                "offset": record.offset if record else None,
                "original": base64.b64encode(record.value).decode() if record else None,
                "rejected_at": now.isoformat(),
            }
        ),
    )
