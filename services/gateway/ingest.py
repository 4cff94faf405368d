"""Accepting a partner's signals: validate each with the core, claim its id, produce, answer.

Each item of a request is checked with exactly the code the router runs
(:func:`~services.core.envelope.envelope_from_mapping`, :func:`~services.core.signal.accept`
with the partner as the expected source), then its signature is verified against the partners'
registered keys (:mod:`services.gateway.signatures`; the router verifies again) and its time
checked for plausibility (:mod:`services.core.time_window`). The body is read as strict I-JSON
(:mod:`services.core.strict_json`): an item with a member twice or an integer beyond 2^53 is
refused on its own, with its code. Good items
go through even when others in the same batch are bad; each bad one gets its own problem. A
good item is claimed in the idempotency record (:mod:`services.gateway.accepted`), produced to
``signals.<partner>`` keyed by its signal id, and counted accepted only once the broker
acknowledged it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.core.canonical import SIGNATURE_ATTRIBUTES
from services.core.covenant.keyring import Keyring
from services.core.envelope import MAX_ENVELOPE_BYTES, envelope_from_mapping
from services.core.errors import SchakelError, SignalRejected
from services.core.schema_registry import SchemaRegistry
from services.core.signal import accept
from services.core.time_window import check_not_ahead
from services.gateway.accepted import AcceptedIds, Claim, Wanted
from services.gateway.ports import Placed, Producer
from services.gateway.problems import Problem
from services.gateway.signatures import KeySource, verify
from services.router.topics import signals_topic

_STATUS = {"wrong_source": 403, "too_large": 413, "conflict": 409, "in_progress": 409}


@dataclass
class Outcome:
    """What became of a request: ids accepted (in request order) and a problem per bad item."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)
    counted: list[Counted] = field(default_factory=list)
    """One entry per item of the request, for the metrics."""


@dataclass(frozen=True, slots=True)
class Counted:
    """One item's outcome: its type (None when the registry does not know it), ``accepted``,
    ``duplicate`` or ``rejected``, and the problem code of a rejection."""

    type: str | None
    result: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class _Good:
    index: int
    signal_id: str
    value: bytes
    digest: str
    """Of the content (:class:`~services.gateway.accepted.Wanted`): a re-send signed in another
    batch, or singly, is the same signal."""
    whole: str


def rejection(index: int, signal_id: str | None, code: str, detail: str) -> Problem:
    status = 503 if code == "broker_unavailable" else _STATUS.get(code, 422)
    extra: dict[str, object] = {"index": index}
    if signal_id is not None:
        extra["signal_id"] = signal_id
    return Problem(status, code, detail, extra=extra)


class Ingest:
    """Validates, de-duplicates and produces a partner's signals."""

    def __init__(
        self,
        registry: SchemaRegistry,
        producer: Producer,
        accepted: AcceptedIds,
        *,
        keys: KeySource | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._producer = producer
        self._accepted = accepted
        self._keys = keys
        self._clock = clock

    async def submit(self, partner: str, items: Sequence[object]) -> Outcome:
        keyring = self._keys() if self._keys is not None else None
        now = self._clock()
        # validation and Ed25519 verification cost ~0.4 ms a signal: off the event loop, so a
        # 500-signal batch does not stall every other request (long-polls, probes) meanwhile
        rejected, good, first, repeats = await asyncio.to_thread(
            self._check_all, partner, items, keyring, now
        )
        done: set[str] = set()
        accepted = await self._produce(partner, good, rejected, done)
        for repeat in repeats:  # answered like its first occurrence, listed accepted once
            if repeat.signal_id not in accepted:
                earlier = rejected[first[repeat.signal_id].index]
                rejected[repeat.index] = rejection(
                    repeat.index, repeat.signal_id, earlier.code, earlier.detail
                )
        return Outcome(
            accepted=[item.signal_id for item in good if item.signal_id in accepted],
            rejected=[rejected[i] for i in sorted(rejected)],
            counted=self._counted(items, rejected, good, done),
        )

    def _check_all(
        self, partner: str, items: Sequence[object], keyring: Keyring | None, now: datetime
    ) -> tuple[dict[int, Problem], list[_Good], dict[str, _Good], list[_Good]]:
        """Each item checked: the problems by index, the good ones (first of each signal id),
        the first of each id, and the repeats of an id with the same content."""
        rejected: dict[int, Problem] = {}
        good: list[_Good] = []
        first: dict[str, _Good] = {}
        repeats: list[_Good] = []
        for index, item in enumerate(items):
            checked = self._check(partner, index, item, keyring, now)
            if isinstance(checked, Problem):
                rejected[index] = checked
            elif checked.signal_id not in first:
                first[checked.signal_id] = checked
                good.append(checked)
            elif first[checked.signal_id].digest == checked.digest:
                repeats.append(checked)  # same signal twice in one batch: one produce
            else:
                rejected[index] = rejection(
                    index, checked.signal_id, "conflict", _CONFLICT + " (earlier in this batch)"
                )
        return rejected, good, first, repeats

    def _counted(
        self,
        items: Sequence[object],
        rejected: Mapping[int, Problem],
        good: Sequence[_Good],
        done: set[str],
    ) -> list[Counted]:
        firsts = {item.index for item in good if item.signal_id not in done}
        counted = []
        for index, item in enumerate(items):
            kind: Any = item.get("type") if isinstance(item, dict) else None
            known = kind if isinstance(kind, str) and kind in self._registry else None
            problem = rejected.get(index)
            if problem is not None:
                counted.append(Counted(known, "rejected", problem.code))
            else:
                counted.append(Counted(known, "accepted" if index in firsts else "duplicate"))
        return counted

    def _check(
        self, partner: str, index: int, item: object, keyring: Keyring | None, now: datetime
    ) -> _Good | Problem:
        if isinstance(item, SignalRejected):  # not I-JSON (services.core.strict_json)
            return rejection(index, item.signal_id, item.code, item.message)
        if not isinstance(item, dict):
            return rejection(index, None, "invalid_envelope", "a signal must be a JSON object")
        try:
            value = orjson.dumps(item)
        except TypeError:  # nested deeper than orjson writes (255) but read (1024): corpus
            return rejection(
                index, None, "invalid_envelope", "the signal is nested too deeply; flatten its data"
            )
        if len(value) > MAX_ENVELOPE_BYTES:
            sid = item.get("id")
            return rejection(
                index,
                sid if isinstance(sid, str) and len(sid) <= 128 else None,
                "too_large",
                f"signal is {len(value)} bytes; the limit is {MAX_ENVELOPE_BYTES}",
            )
        try:
            envelope = envelope_from_mapping(item)
            signal = accept(envelope, self._registry, expected_source=partner)
            if keyring is not None:
                verify(item, keyring, now, signal_id=envelope.id)
                keyring.window.check(
                    signal.source, signal.type, signal.time, now, signal_id=envelope.id
                )
            else:
                check_not_ahead(signal.time, now, signal_id=envelope.id)
        except SignalRejected as exc:
            return rejection(index, exc.signal_id, exc.code, exc.message)
        content = {k: v for k, v in item.items() if k not in SIGNATURE_ATTRIBUTES}
        digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
        whole = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return _Good(index, envelope.id, value, digest, whole)

    async def _produce(
        self, partner: str, good: list[_Good], rejected: dict[int, Problem], done: set[str]
    ) -> set[str]:
        """Produce the new ones; return every id accepted, noting in ``done`` those that
        were accepted before (answered from the idempotency record)."""
        claims = await asyncio.to_thread(
            self._accepted.claim, partner, [Wanted(g.signal_id, g.digest, g.whole) for g in good]
        )
        accepted: set[str] = set()
        to_send: list[_Good] = []
        for item in good:
            claim = claims[item.signal_id]
            if claim is Claim.NEW:
                to_send.append(item)
            elif claim is Claim.DONE:
                accepted.add(item.signal_id)
                done.add(item.signal_id)
            elif claim is Claim.CONFLICT:
                rejected[item.index] = rejection(item.index, item.signal_id, "conflict", _CONFLICT)
            else:
                rejected[item.index] = rejection(
                    item.index,
                    item.signal_id,
                    "in_progress",
                    "this signal id is being accepted by another request; retry in a moment",
                )
        topic = signals_topic(partner)
        results = await asyncio.gather(
            *(self._producer.send(topic, g.signal_id.encode(), g.value) for g in to_send),
            return_exceptions=True,
        )
        placed: list[str] = []
        failed: list[str] = []
        for item, result in zip(to_send, results, strict=True):
            if isinstance(result, Placed):
                placed.append(item.signal_id)
            elif isinstance(result, SchakelError | OSError):
                failed.append(item.signal_id)
                rejected[item.index] = rejection(
                    item.index,
                    item.signal_id,
                    "broker_unavailable",
                    "the broker did not acknowledge this signal; send it again later",
                )
            else:
                raise result
        await asyncio.to_thread(self._accepted.accepted, partner, placed)
        await asyncio.to_thread(self._accepted.release, partner, failed)
        return accepted | set(placed)


_CONFLICT = (
    "this signal id was already used for a signal with different content; give each signal "
    "its own id (a re-send must carry the same content)"
)
