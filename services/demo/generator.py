"""Deterministic, realistic Noord-Holland signal traffic for demos, replays and tests.

:func:`generate` returns a :class:`DemoTraffic`: CloudEvents envelopes from the covenant
partners in time order, the ground truth of the production sites planted in them (and of the
decoys), and, when asked, broken lines to mix in. :func:`to_jsonl` writes it as JSON lines;
:func:`stream` yields an endless supply for the live ``--demo`` mode.

Determinism is the contract: the output depends only on the arguments. All randomness comes
from one ``random.Random(seed)``, the start time is passed in (no wall clock), the map and
partner tables are fixed data, and serialisation is orjson's (stable key order and floats).
The same arguments therefore give a byte-identical file on every machine, so a committed
example file can be checked by regenerating it.

What is in the traffic:

* background noise, mixed by :data:`~services.demo.partners.TYPE_WEIGHTS`, from the partner
  that serves each municipality, with mostly low scores;
* about one planted production site per 150 signals (at least 5 from 1,000 signals on), each
  reported by at least three partner kinds under varied spellings of one address
  (:mod:`services.demo.planting`);
* about one decoy per 100 signals: two weak or same-kind signals about one address;
* ``round(count * malformed_ratio)`` broken lines on top of ``count`` good signals, every
  kind of :data:`~services.demo.malformed.MALFORMED_KINDS` at least once from 500 signals on.

Every good signal is signed by its partner's TEST key (:mod:`services.demo.keys`; the public
halves are registered in ``covenants/``); broken lines are left unsigned, as they are
rejected for what is broken before any signature is looked at.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from services.core.progress import Progress, silent, told
from services.demo.builder import Builder
from services.demo.geography import pick_postcode4
from services.demo.identities import postcode_letters
from services.demo.keys import DemoSigner
from services.demo.malformed import MALFORMED_KINDS, NEEDS, MalformedLine, corrupt
from services.demo.outcomes import OutcomeTruth, demo_outcomes
from services.demo.partners import PARTNERS, TYPE_WEIGHTS, Partner, pick_place
from services.demo.planting import SCENARIOS, Decoy, PlantedLocation, plant, plant_decoy
from services.demo.signals import Subject
from services.demo.timing import TimeStyle, rfc3339

__all__ = [
    "TRUTH_WARNING",
    "DemoTraffic",
    "generate",
    "planted_count",
    "stream",
    "to_jsonl",
    "truth",
]

SIGNALS_PER_PLANTED = 150
SIGNALS_PER_DECOY = 100
MIN_PLANTED = 5
MIN_PLANTED_FROM = 1000
ALL_MALFORMED_FROM = 500
TRUTH_WARNING = (
    "TEST DATA: the ground truth holds the raw (fake) identifiers of planted locations. "
    "Keep it with the demo files; never load it into a system with real partner data."
)


@dataclass(frozen=True)
class DemoTraffic:
    """Generated signals plus the truth about them."""

    signals: list[dict[str, Any]]
    """CloudEvents envelopes (JSON-able dicts), in time order."""
    planted: list[PlantedLocation]
    decoys: list[Decoy]
    malformed: list[MalformedLine]
    """Broken lines, by position among ``signals`` (see :func:`to_jsonl`)."""
    seed: int
    start: datetime
    days: int
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    """With ``outcomes=True``: what came of the signals (findings, checks, approvals,
    measures), signed envelopes in time order — later than the window too (docs/outcomes.md)."""
    outcome_truth: list[OutcomeTruth] = field(default_factory=list)

    def lines(self) -> Iterator[bytes]:
        """Every output line without its newline: signals with the broken lines in between,
        and the outcomes in time order among them (the last ones after the window)."""
        broken = iter(self.malformed)
        pending = next(broken, None)
        later = iter(self.outcomes)
        outcome = next(later, None)
        for position, envelope in enumerate(self.signals):
            while pending is not None and pending.after <= position:
                yield pending.line
                pending = next(broken, None)
            while outcome is not None and _time(outcome) <= _time(envelope):
                yield orjson.dumps(outcome)
                outcome = next(later, None)
            yield orjson.dumps(envelope)
        while pending is not None:
            yield pending.line
            pending = next(broken, None)
        while outcome is not None:
            yield orjson.dumps(outcome)
            outcome = next(later, None)

    def malformed_line_numbers(self) -> list[tuple[int, str]]:
        """``(line number, kind)`` of each broken line in :func:`to_jsonl` output (1-based)."""
        return [(m.after + i + 1, m.kind) for i, m in enumerate(self.malformed)]


def planted_count(count: int) -> int:
    """How many production sites ``count`` signals hide: 1 per 150, at least 5 from 1,000."""
    planted = round(count / SIGNALS_PER_PLANTED)
    return max(planted, MIN_PLANTED) if count >= MIN_PLANTED_FROM else planted


def generate(
    count: int,
    *,
    seed: int,
    start: datetime,
    days: int = 60,
    malformed_ratio: float = 0.0,
    progress: Progress = silent,
    outcomes: bool = False,
) -> DemoTraffic:
    """``count`` valid signals sent in ``[start, start + days)``, plus broken lines if asked.

    ``start`` must be timezone-aware. ``malformed_ratio`` (0 to 1) adds
    ``round(count * malformed_ratio)`` broken lines on top of the ``count`` good ones.
    ``progress`` hears how far it is, in signals of ``count`` (made counts half, signed the
    other half: the two take about as long). ``outcomes`` adds what came of the signals
    (:mod:`services.demo.outcomes`), from a random stream of its own: the signals are the same
    with or without.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if not 0.0 <= malformed_ratio <= 1.0:
        raise ValueError("malformed_ratio must be between 0 and 1")
    b = Builder(random.Random(seed), start, days)  # noqa: S311 - reproducible test data
    planted: list[PlantedLocation] = []
    decoys: list[Decoy] = []
    for number, scenario in zip(
        range(1, planted_count(count) + 1), itertools.cycle(SCENARIOS), strict=False
    ):
        planted.append(plant(b, scenario, number))
    for _ in range(round(count / SIGNALS_PER_DECOY)):
        decoys.append(plant_decoy(b))
    if len(b.drafts) > count:  # cannot happen at 1 site per 150 signals; keeps the truth true
        raise ValueError(f"count {count} is too small for the planted sites and decoys")
    types, weights = list(TYPE_WEIGHTS), list(TYPE_WEIGHTS.values())
    while len(b.drafts) < count:
        _background(b, b.rng.choices(types, weights)[0], keep=True)
        progress(len(b.drafts) // 2, count)
    b.drafts.sort(key=lambda d: (d.time, d.id))
    signer = DemoSigner()  # each partner signs with its test key (deterministic: Ed25519)

    def signing(signed: int, _: int | None = None, /) -> None:
        progress((count + signed) // 2, count)

    signals = [signer(d.envelope()) for d in told(b.drafts, signing, every=100)]
    later, later_truth = demo_outcomes(seed, signals, planted, decoys) if outcomes else ([], [])
    return DemoTraffic(
        signals=signals,
        planted=planted,
        decoys=decoys,
        malformed=_malformed(b, count, malformed_ratio),
        seed=seed,
        start=b.start,
        days=days,
        outcomes=later,
        outcome_truth=later_truth,
    )


def _time(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(envelope["time"]))


def _background(b: Builder, signal_type: str, *, keep: bool) -> dict[str, Any]:
    """One everyday signal of ``signal_type``; kept among the signals only if ``keep``."""
    rng = b.rng
    candidates = [p for p in PARTNERS if signal_type in p.types]
    sender: Partner = rng.choices(candidates, [p.share for p in candidates])[0]
    place = pick_place(rng, sender, rural=signal_type == "rural.barn_rental_approach.v1")
    subject: Subject
    if signal_type in ("energy.area_load_peak.v1", "water.sewer_contamination_spike.v1"):
        subject = Subject(place, area=str(pick_postcode4(rng, place)))
    elif signal_type == "waste.drug_waste_dumping.v1" and rng.random() < 0.75:
        street = f"{pick_postcode4(rng, place)}{postcode_letters(rng)}"
        subject = Subject(place, postcode=street)
    elif signal_type == "residents.anonymous_tip.v1" and rng.random() < 0.4:
        subject = Subject(place)
    else:
        rural = signal_type == "rural.barn_rental_approach.v1" or rng.random() < 0.08 * place.rural
        subject = Subject(place, location=b.locations.new(place, rural=rural))
    made = b.emit(sender, signal_type, subject) if keep else b.draft(sender, signal_type, subject)
    return made.envelope()


def _malformed(b: Builder, count: int, ratio: float) -> list[MalformedLine]:
    """The broken lines: each kind equally often (all of them from 500 signals on)."""
    rng = b.rng
    wanted = round(count * ratio)
    kinds = list(MALFORMED_KINDS)
    if ratio > 0 and count >= ALL_MALFORMED_FROM:
        wanted = max(wanted, len(kinds))
    chosen = kinds * (wanted // len(kinds)) + rng.sample(kinds, wanted % len(kinds))
    rng.shuffle(chosen)
    types, weights = list(TYPE_WEIGHTS), list(TYPE_WEIGHTS.values())
    lines: list[MalformedLine] = []
    for kind in chosen:
        allowed = NEEDS.get(kind)
        signal_type = rng.choice(allowed) if allowed else rng.choices(types, weights)[0]
        envelope = _background(b, signal_type, keep=False)
        if kind == "invalid_postcode" and "address" not in envelope["data"]:
            raise AssertionError("invalid_postcode needs a signal type with a required address")
        lines.append(MalformedLine(kind, corrupt(rng, kind, envelope), rng.randrange(count + 1)))
    lines.sort(key=lambda line: line.after)
    return lines


def to_jsonl(traffic: DemoTraffic) -> bytes:
    """The traffic as JSON lines (UTF-8, ``\\n`` after every line), broken lines included."""
    return b"".join(line + b"\n" for line in traffic.lines())


def truth(traffic: DemoTraffic) -> dict[str, Any]:
    """The ground truth as a JSON-able document: parameters, planted sites, decoys, bad lines."""
    return {
        "warning": TRUTH_WARNING,
        "seed": traffic.seed,
        "start": rfc3339(traffic.start, TimeStyle.UTC),
        "days": traffic.days,
        "signals": len(traffic.signals),
        "planted": [p.as_dict() for p in traffic.planted],
        "decoys": [d.as_dict() for d in traffic.decoys],
        "malformed": [
            {"line": number, "kind": kind} for number, kind in traffic.malformed_line_numbers()
        ],
        **({"outcomes": [t.as_dict() for t in traffic.outcome_truth]} if traffic.outcomes else {}),
    }


def stream(
    seed: int,
    start: datetime,
    *,
    signals_per_day: float = 50.0,
    chunk_days: int = 7,
    outcomes: bool = False,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Endless ``(partner id, envelope)`` pairs in time order, from ``start`` on.

    Made lazily, one chunk of ``chunk_days`` at a time, each a :func:`generate` call with a
    seed derived from ``seed`` and the chunk number, so planted sites (whose signals span
    their chunk) keep appearing. Deterministic like :func:`generate`; only valid signals.
    A live demo paces them by each envelope's ``time``. With ``outcomes``, what came of each
    chunk's signals (weeks later) is merged in at its own time.
    """
    if signals_per_day <= 0:
        raise ValueError("signals_per_day must be positive")
    per_chunk = max(1, round(signals_per_day * chunk_days))
    waiting: list[tuple[datetime, int, dict[str, Any]]] = []
    order = itertools.count()
    for chunk in itertools.count():
        chunk_rng = random.Random(f"schakel-demo:{seed}:{chunk}")  # noqa: S311 - test data
        chunk_seed = chunk_rng.getrandbits(63)
        traffic = generate(
            per_chunk,
            seed=chunk_seed,
            start=start + timedelta(days=chunk * chunk_days),
            days=chunk_days,
            outcomes=outcomes,
        )
        for envelope in traffic.outcomes:
            heapq.heappush(waiting, (_time(envelope), next(order), envelope))
        for envelope in traffic.signals:
            at = _time(envelope)
            while waiting and waiting[0][0] <= at:
                later = heapq.heappop(waiting)[2]
                yield later["source"], later
            yield envelope["source"], envelope
