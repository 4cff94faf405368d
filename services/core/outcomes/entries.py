"""What the outcome store keeps: indexed signals, outcomes and approvals — pseudonyms only.

A signal is named by its source and signal id, a location by the hub-internal pseudonym of an
address, BAG id or EAN (:data:`services.core.pseudonyms.INTERNAL`); no raw identifier and no
identifier-bearing payload is kept. An outcome keeps only the fields of its data that are
neither identifiers nor personal — the only fields a return rule may share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from services.core.decision import RuleRef

__all__ = [
    "PREMISES_KINDS",
    "ApprovalEntry",
    "Entries",
    "OutcomeEntry",
    "SignalEntry",
    "arrival",
    "rule_key",
]

PREMISES_KINDS: Final = ("address", "bag", "ean")
"""Identifier kinds that name one premises: what signals and outcomes are matched by (a
postcode is an area, not a premises)."""

Decision = Literal["approved", "refused"]


def arrival(entry: SignalEntry | OutcomeEntry | ApprovalEntry) -> datetime:
    """When the hub received ``entry``; its own time only where no receipt time is known
    (entries built by hand for the indicators and the benchmark)."""
    return entry.received if entry.received is not None else entry.time


def rule_key(ref: RuleRef) -> str:
    """``covenant@version/rule``: how the store names a rule."""
    return f"{ref.covenant_id}@{ref.covenant_version}/{ref.rule_id}"


@dataclass(frozen=True, slots=True)
class SignalEntry:
    """One signal a covenant rule decided, as the outcome index keeps it."""

    source: str
    signal_id: str
    signal_type: str
    time: datetime
    partner_kind: str
    municipality: str | None
    strength: float | None
    """The schema's strength field (``x-strength-field``), when it has one."""
    stackable: bool
    """A rule with ``stacking: true`` let the hub use it (the stacking replay uses these)."""
    thread: str | None
    """The alert id of a stacked-location alert (its revisions are one alert), else None."""
    rules: tuple[str, ...]
    """The rules that delivered it (:func:`rule_key`), for indicators per rule."""
    keep_until: datetime
    received: datetime | None = None
    """When the hub received it (:func:`arrival`): the broker's LogAppendTime of its Kafka
    record, or where the broker did not stamp it the moment the worker read it
    (:meth:`services.outcomes.batch.Record.received`) — never the partner-written envelope
    ``time``. Only a signal received *before* an outcome can be answered by it."""
    locations: tuple[str, ...] = field(default=(), compare=False)
    """Hub-internal pseudonyms of its premises identifiers (written to the index; not read
    back with the entry)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.signal_id)


@dataclass(frozen=True, slots=True)
class OutcomeEntry:
    """One outcome (``x-outcome``) the hub may process under a covenant rule."""

    source: str
    signal_id: str
    signal_type: str
    outcome_class: str
    """``finding``, ``no_finding`` or ``measure``."""
    time: datetime
    municipality: str | None
    data: Mapping[str, Any] = field(repr=False)
    """The fields that are neither identifiers nor personal (what a return may share)."""
    leaves: tuple[str, ...] = field(repr=False)
    """Every data field path of the outcome as sent (withheld fields of a withholding)."""
    subjects: Mapping[str, str] = field(repr=False)
    """Hub-internal pseudonym of every identifier, by path (audit subjects)."""
    rules: tuple[str, ...]
    """The return rules (:func:`rule_key`) in force whose condition held for it."""
    basis: RuleRef | None
    """The rule it is processed under: the first return rule that applied, else the first
    rule that decided it (named by the audit record of its matching)."""
    keep_until: datetime
    received: datetime | None = None
    """When the hub received it (see :attr:`SignalEntry.received`)."""
    locations: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.signal_id)


@dataclass(frozen=True, slots=True)
class ApprovalEntry:
    """An approver's per-case decision about one outcome's returns."""

    approver: str
    outcome_source: str
    outcome_signal_id: str
    decision: Decision
    signal_id: str
    """The approval signal's own id (named in the audit record of the return)."""
    time: datetime
    received: datetime | None = None
    """When the hub received it: it covers only the returns about signals received before
    it — the pairs the approver can have been asked about, never later ones."""

    @property
    def key(self) -> tuple[str, str, str]:
        """The outcome and approver it decides about (several approvals may share it)."""
        return (self.outcome_source, self.outcome_signal_id, self.approver)

    @property
    def stored_key(self) -> tuple[str, str, str, str]:
        return (*self.key, self.signal_id)


@dataclass
class Entries:
    """What one batch adds to the outcome store (written in one transaction)."""

    signals: list[SignalEntry] = field(default_factory=list)
    outcomes: list[OutcomeEntry] = field(default_factory=list)
    approvals: list[ApprovalEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.signals or self.outcomes or self.approvals)
