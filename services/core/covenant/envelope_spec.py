"""What a recipient gets of a signal's envelope: the ``envelope:`` block of a rule, resolved.

Envelope metadata are disclosures like data fields, so each value of a feed message comes from
the rule (docs/covenants.md#envelope):

* ``exchange_id`` — always; a per-recipient id keyed with a hub secret, so that neither the
  recipient nor the supplier (who knows its own signal ids) can tie it to the signal, while
  the recipient can still drop duplicates (``keyed``);
* ``type`` — always; the rule names the types, and the data cannot be read without it;
* ``source`` — ``keep`` (default) or ``omit``;
* ``time`` — ``generalise:day`` by default, or the coarsest time generalisation the rule's
  ``share`` applies when that is coarser, so the envelope never undoes a generalisation; a
  covenant can tighten it, ``omit`` it, or explicitly widen it (``generalise:hour``, ``keep``).

The audit record's ``fields`` name what went out as ``envelope.<name>`` (a signal schema may
not have a top-level property ``envelope``, so these never collide with data paths), and
``withheld_fields`` lists the envelope fields a rule omits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from services.core.covenant.model import Envelope
from services.core.covenant.transforms import ShareSpec, generaliser, parse_share

PREFIX: Final = "envelope."
KEYED: Final = "keyed"
"""How the exchange id is disclosed: keyed with a hub secret (see the module docstring)."""

DEFAULT_TIME: Final = "generalise:day"
TIME_PRECISION: Final = (
    "keep",
    "generalise:hour",
    "generalise:day",
    "generalise:week",
    "generalise:month",
    "generalise:year",
    "omit",
)
"""Envelope time specs, finest first."""


def rank(time_spec: str) -> int:
    """Where a time spec stands in :data:`TIME_PRECISION` (higher is coarser)."""
    return TIME_PRECISION.index(time_spec)


@dataclass(frozen=True, slots=True)
class EnvelopePlan:
    """An :class:`EnvelopeSpec` made ready for the hot path (one per compiled plan)."""

    time: Callable[[str], str] | None
    """From the RFC 3339 signal time to what the recipient gets; None: omitted."""
    source: bool
    disclosed: tuple[tuple[str, str], ...]
    withheld: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnvelopeSpec:
    """The envelope one rule discloses, defaults applied."""

    time: str
    """``keep``, ``omit`` or ``generalise:<hour|day|week|month|year>``."""
    source: str
    """``keep`` or ``omit``."""
    coarsest_share: tuple[str, str] | None
    """(field path, time spec) of the coarsest time generalisation in the rule's share."""

    @property
    def disclosed(self) -> tuple[tuple[str, str], ...]:
        """``(envelope.<name>, how)`` of every envelope field the recipient gets."""
        out = [(f"{PREFIX}exchange_id", KEYED), (f"{PREFIX}type", "keep")]
        if self.source != "omit":
            out.append((f"{PREFIX}source", self.source))
        if self.time != "omit":
            out.append((f"{PREFIX}time", self.time))
        return tuple(out)

    @property
    def withheld(self) -> tuple[str, ...]:
        """``envelope.<name>`` of every envelope field the rule omits."""
        return tuple(
            f"{PREFIX}{name}"
            for name, how in (("source", self.source), ("time", self.time))
            if how == "omit"
        )

    @property
    def undoes_share(self) -> bool:
        """An envelope time finer than a time generalisation of the share (only an explicit
        one can be: the default is never finer)."""
        return (
            self.coarsest_share is not None
            and self.time != "omit"
            and rank(self.time) < rank(self.coarsest_share[1])
        )

    def plan(self) -> EnvelopePlan:
        return EnvelopePlan(
            time=_time_function(self.time),
            source=self.source != "omit",
            disclosed=self.disclosed,
            withheld=self.withheld,
        )


def _time_function(spec: str) -> Callable[[str], str] | None:
    if spec == "omit":
        return None
    if spec == "keep":
        return _same
    apply = generaliser(parse_share(spec))

    def generalised(text: str) -> str:
        return str(apply(text))

    return generalised


def _same(text: str) -> str:
    return text


def resolve(envelope: Envelope, shares: Mapping[str, ShareSpec]) -> EnvelopeSpec:
    """The envelope a rule with these shares discloses."""
    coarsest: tuple[str, str] | None = None
    for path, spec in shares.items():
        timely = spec.action == "generalise" and spec.applies_to == "time"
        if timely and (coarsest is None or rank(spec.text) > rank(coarsest[1])):
            coarsest = (path, spec.text)
    time: str
    if envelope.time is not None:
        time = envelope.time
    elif coarsest is not None and rank(coarsest[1]) > rank(DEFAULT_TIME):
        time = coarsest[1]
    else:
        time = DEFAULT_TIME
    return EnvelopeSpec(
        time=time,
        source=envelope.source,
        coarsest_share=coarsest,
    )


DEFAULT_PLAN: Final = resolve(Envelope(), {}).plan()
"""The envelope of a rule that says nothing about it and generalises no time field."""
