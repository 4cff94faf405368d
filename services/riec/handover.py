"""Hand-over: a RIEC offers a case to a partner's own process as a signal under a covenant rule.

The analyst picks the premises by one of the case's own pseudonyms and the measure asked for;
the hub recovers the value behind the pseudonym in memory (the analyst never sees it), builds
a ``riec.case_handover.v1`` signal from the RIEC, signs it with the RIEC's key and decides it
with the policy in force — the same pipeline the router runs. Only when a rule delivers it to
someone is it published on the RIEC's signals topic, where the router routes, pseudonymises
and audits it like any other signal; otherwise nothing leaves the workplace and the analyst is
told no rule allows it (deny by default).

Building and deciding (:meth:`HandOver.prepare`) is apart from publishing
(:meth:`HandOver.publish`): the case files stage the hand-over between the two
(:mod:`services.riec.cases`). The signal's id and time are given, so preparing it again —
a retry after a crash or a failed publish — builds the very same envelope, which the router
takes as the same signal (its content digest excludes the signature).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from services.core.errors import SchakelError
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.pseudonyms import Domain, Pseudonymiser
from services.core.schema_registry import SchemaRegistry
from services.riec.model import Case, RiecError

HANDOVER_TYPE: Final = "riec.case_handover.v1"
MEASURES: Final = (
    "closure_13b",
    "lease_termination",
    "energy_recovery",
    "benefits_review",
    "environmental_enforcement",
)

Signer = Callable[[Mapping[str, Any]], dict[str, Any]]
Publish = Callable[[str, bytes], None]
"""``(source partner, signed envelope bytes)``: put the signal on ``signals.<source>``."""
Rules = Callable[[], tuple[SchemaRegistry, Policy]]
"""The schema registry and policy in force now."""


class WithheldError(RiecError):
    """No covenant rule delivers the hand-over to anyone: nothing was sent (deny by default).
    ``signal_id`` names the signal that was built and not sent."""

    def __init__(self, message: str, signal_id: str) -> None:
        super().__init__(message)
        self.signal_id = signal_id


@dataclass(frozen=True, slots=True)
class HandedOver:
    signal_id: str
    recipients: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A hand-over signal built, signed and decided, not published yet. ``raw`` holds the value
    behind the pseudonym in the clear: it lives in memory only, never in a store or a log."""

    source: str
    raw: bytes = field(repr=False)
    handed: HandedOver


class HandOver:
    """Builds, checks and publishes hand-over signals."""

    def __init__(
        self, pseudonymiser: Pseudonymiser, rules: Rules, sign: Signer, publish: Publish
    ) -> None:
        self._pseudonymiser = pseudonymiser
        self._rules = rules
        self._sign = sign
        self._publish = publish

    def prepare(
        self,
        case: Case,
        pseudonym: str,
        measure: str,
        municipality: str,
        at: datetime,
        signal_id: str,
        now: datetime | None = None,
    ) -> Prepared:
        """Build, sign and decide the hand-over of ``case`` for ``measure`` about the premises
        behind ``pseudonym``, as signal ``signal_id`` of time ``at`` (decided with the
        covenants in force at ``now``, default ``at``); :class:`WithheldError` if no rule
        delivers it."""
        if measure not in MEASURES:
            raise RiecError(f"measure must be one of {', '.join(MEASURES)}.")
        domain = Domain(case.covenant_id, case.recipient, reversible=True)
        try:
            kind, value = self._pseudonymiser.reidentify(domain, pseudonym)
        except SchakelError:
            raise RiecError(
                "the pseudonym cannot be handed over: it is one-way or not the RIEC's own. "
                "Fix: pick an address or BAG pseudonym the RIEC received under this covenant."
            ) from None
        if kind not in ("address", "bag"):
            raise RiecError(
                f"the pseudonym names a {kind}; a hand-over names premises by address or BAG id. "
                "Fix: pick the case's address or BAG pseudonym."
            )
        moment = at.isoformat().replace("+00:00", "Z")
        envelope = {
            "specversion": "1.0",
            "id": signal_id,
            "source": case.recipient,
            "type": HANDOVER_TYPE,
            "time": moment,
            "datacontenttype": "application/json",
            "data": {
                "case": case.id,
                "measure": measure,
                "municipality": municipality,
                kind: value,
                "handed_over_at": moment,
            },
        }
        raw = orjson.dumps(self._sign(envelope))
        registry, policy = self._rules()
        decided = process(raw, registry, policy, now or at)
        if decided.rejection is not None:
            raise RiecError(f"the hand-over signal was refused: {decided.rejection.code}.")
        delivered = [d for d in decided.decisions if d.delivered and d.rule is not None]
        if not delivered:
            raise WithheldError(
                f"no covenant rule lets {case.recipient} hand a case over for {measure} in "
                f"{municipality}; nothing was sent (deny by default). Fix: a covenant manager "
                "adds a hand-over rule, or pick another measure.",
                signal_id,
            )
        handed = HandedOver(
            signal_id=signal_id,
            recipients=tuple(sorted({d.recipient for d in delivered})),
            rules=tuple(sorted({d.rule.rule_id for d in delivered if d.rule is not None})),
        )
        return Prepared(case.recipient, raw, handed)

    def publish(self, prepared: Prepared) -> None:
        """Put the prepared signal on the RIEC's signals topic (:class:`RiecError` if the
        broker does not acknowledge it)."""
        self._publish(prepared.source, prepared.raw)
