"""The covenant file format as data (see docs/covenants.md for the grammar).

These pydantic models check the *shape* of a covenant file. Whether it makes sense — known
partners and signal types, fields that exist in the schema, conditions that compile — is
checked by :mod:`services.core.covenant.checker`, which knows the schema registry.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
MUNICIPALITY_CODE = r"^GM[0-9]{4}$"

PartyRole = Literal["supplier", "recipient", "approver"]
PartyKind = Literal[
    "energy",
    "water",
    "housing",
    "rural",
    "chemicals",
    "waste",
    "residents",
    "municipality",
    "police",
    "prosecution",
    "social",
    "environment",
    "riec",
    "campaign",
    "hub",
]
Reidentify = Literal["never", "on-request"]

_DURATION = re.compile(r"^P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?$")


def retention_days(text: str) -> int:
    """Days in an ISO 8601 date duration (P180D, P6M, P1Y2M, P2W); a month counts 31 days.

    Retention is an upper bound on how long a recipient keeps data, so rounding months up is
    the conservative reading.
    """
    match = _DURATION.match(text)
    if not match or text == "P":
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P180D, P6M or P1Y")
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    return years * 366 + months * 31 + weeks * 7 + days


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Signatures = Literal["required", "optional"]


class PartyKey(_Strict):
    """A partner's Ed25519 public key for signing signals, with its validity window.

    ``valid_from`` and ``valid_until`` are Dutch calendar days, both inclusive; rotating a key
    means registering its successor with a ``valid_from`` before the old key's ``valid_until``
    (the overlap), so signals signed with either are accepted while partners switch.
    """

    id: Annotated[str, Field(pattern=SLUG)]
    ed25519: Annotated[str, Field(min_length=40, max_length=64)]
    """Standard base64 of the 32 raw bytes of the public key (``schakel keys partner``)."""
    valid_from: date | None = None
    valid_until: date | None = None

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


class AggregateOnly(_Strict):
    """The party receives only aggregates, never one record per signal (docs/covenants.md)."""

    min_cell: Annotated[int, Field(ge=1)]
    """The smallest count any aggregate to this party may show; smaller cells are suppressed."""


class Party(_Strict):
    """A signatory of the covenant; the mapping key is its partner id (topic names use it)."""

    name: Annotated[str, Field(min_length=1)]
    kind: PartyKind
    roles: Annotated[list[PartyRole], Field(min_length=1)]
    municipality: Annotated[str, Field(pattern=MUNICIPALITY_CODE)] | None = None
    public_keys: list[PartyKey] = []
    aggregate_only: AggregateOnly | None = None
    """Set: no rule may deliver this party per-signal records; only an ``aggregates`` entry."""


class Validity(_Strict):
    """The period a covenant version is in force: ``from`` inclusive, ``until`` inclusive."""

    from_: Annotated[date, Field(alias="from")]
    until: date | None = None

    def covers(self, day: date) -> bool:
        return self.from_ <= day and (self.until is None or day <= self.until)


class Revocation(_Strict):
    """A covenant ended early; nothing is delivered under it from ``date`` on.

    (Not ``on:`` — YAML 1.1 reads that key as the boolean true.)
    """

    day: Annotated[date, Field(alias="date")]
    reason: Annotated[str, Field(min_length=1)]


class Dpia(_Strict):
    """The data protection impact assessment (AVG art. 35) a covenant version rests on."""

    reference: Annotated[str, Field(min_length=1, max_length=400)]
    """Where to find it: document title, number or link."""
    day: Annotated[date | None, Field(alias="date")] = None
    """When it was adopted (or last reviewed)."""


class RegionSelector(_Strict):
    """A region taken from the reference data (covenants/reference/municipalities_nh.csv)."""

    riec: str | None = None
    safety_region: str | None = None
    police_unit: str | None = None
    province: Literal["Noord-Holland"] | None = None


class PlainIdentifiers(_Strict):
    """A rule's declaration that it discloses identifiers in the clear (share value ``plain``).

    Disclosing a raw EAN, address or licence plate is a separate legal act from sharing a
    pseudonym, so it is never implied (not by ``keep``, not by ``reidentify: on-request``):
    the rule names the legal basis that allows it, and the checker, the covenant report and
    the audit record show it as such.
    """

    legal_basis: Annotated[str, Field(min_length=1, pattern=r"\S")]
    """The provision that allows disclosing these identifiers in the clear (law and article,
    or the covenant article that rests on it)."""


EnvelopeTime = Literal[
    "keep",
    "omit",
    "generalise:hour",
    "generalise:day",
    "generalise:week",
    "generalise:month",
    "generalise:year",
]
EnvelopeSource = Literal["keep", "omit"]


class Envelope(_Strict):
    """What a recipient gets of the signal's envelope; unset keys take the defaults.

    ``time`` defaults to the Dutch calendar day, or to the coarsest time generalisation the
    rule's ``share`` applies when that is coarser (so the envelope never undoes it);
    ``source`` defaults to ``keep``. The type and a keyed exchange id are always given.
    """

    time: EnvelopeTime | None = None
    source: EnvelopeSource = "keep"


class ReturnMatch(_Strict):
    """Which of a recipient's own earlier signals an outcome answers (``match`` of a rule with
    ``return_to``): those about the same location, sent at most ``within`` before the outcome,
    of the listed ``types`` (all its types when left out)."""

    within: str
    """ISO 8601 duration, e.g. ``P365D``: how long before the outcome a signal may lie."""
    types: list[str] | None = None

    @field_validator("within")
    @classmethod
    def _within(cls, value: str) -> str:
        retention_days(value)
        return value

    @property
    def period(self) -> timedelta:
        return timedelta(days=retention_days(self.within))


class Rule(_Strict):
    """One covenant article turned into a rule: who may give what to whom, and how."""

    id: Annotated[str, Field(pattern=SLUG)]
    article: Annotated[str, Field(min_length=1)]
    purpose: Annotated[str, Field(pattern=SLUG)]
    from_: Annotated[list[Annotated[str, Field(pattern=SLUG)]], Field(alias="from", min_length=1)]
    types: Annotated[list[str], Field(min_length=1)]
    to: list[Annotated[str, Field(pattern=SLUG)]] = []
    when: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    share: dict[str, str] = {}
    envelope: Envelope = Envelope()
    """What the recipient gets of the envelope (time, source); see :class:`Envelope`."""
    retention: str
    reidentify: Reidentify = "never"
    stacking: bool = False
    """The signal may also be used by the hub's stacking (IIPSy) analysis."""
    plain_identifiers: PlainIdentifiers | None = None
    """Required when a ``share`` value is ``plain``: the legal basis of that disclosure."""
    return_to: list[Annotated[str, Field(pattern=SLUG)]] = []
    """Outcome rules only: partners told about an outcome at a location they signalled earlier,
    each only about its own signals (docs/outcomes.md)."""
    match: ReturnMatch | None = None
    """With ``return_to``: which of the recipient's earlier signals the outcome answers."""
    approval: Annotated[str, Field(pattern=SLUG)] | None = None
    """With ``return_to``: the approver party (the OM) whose per-case approval of the outcome
    must arrive before anything is returned; until then the returns are held."""

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        retention_days(value)
        return value

    @property
    def retention_period(self) -> timedelta:
        return timedelta(days=retention_days(self.retention))


AggregateReport = Literal["coverage"]
"""Aggregates the hub can release: ``coverage`` (services/core/coverage)."""


class Aggregate(_Strict):
    """An article that lets recipients receive an aggregate report, never per-signal records.

    The report's cells below ``min_cell`` are suppressed, and so is every number that could
    reveal them (services/core/coverage/release.py).
    """

    id: Annotated[str, Field(pattern=SLUG)]
    article: Annotated[str, Field(min_length=1)]
    purpose: Annotated[str, Field(pattern=SLUG)]
    report: AggregateReport
    to: Annotated[list[Annotated[str, Field(pattern=SLUG)]], Field(min_length=1)]
    min_cell: Annotated[int, Field(ge=1)]
    retention: str

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        retention_days(value)
        return value

    @property
    def retention_period(self) -> timedelta:
        return timedelta(days=retention_days(self.retention))


class Covenant(_Strict):
    """One version of one covenant, as written in one YAML file."""

    covenant: Annotated[str, Field(pattern=SLUG)]
    version: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*$")]
    title: Annotated[str, Field(min_length=1)]
    illustration: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    """Set on an example: this file is an illustration, not the text of a signed covenant; the
    text says what it is modelled on. ``schakel covenant check``, replay, the hub's banner and
    the report and record pages show it."""
    legal_basis: Annotated[list[str], Field(min_length=1)]
    dpia: Dpia | None = None
    """The DPIA behind this version (``schakel covenant check`` warns when there is none)."""
    purposes: Annotated[dict[Annotated[str, Field(pattern=SLUG)], str], Field(min_length=1)]
    valid: Validity
    revoked: Revocation | None = None
    signatures: Signatures = "required"
    """``required``: every supplier signs every signal; ``optional``: a party without registered
    keys may send unsigned signals (a party with keys must always sign)."""
    parties: Annotated[dict[Annotated[str, Field(pattern=SLUG)], Party], Field(min_length=2)]
    regions: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")],
        list[Annotated[str, Field(pattern=MUNICIPALITY_CODE)]] | RegionSelector,
    ] = {}
    rules: list[Rule] = []
    aggregates: list[Aggregate] = []
    """Aggregate releases (e.g. suppressed coverage counts), for aggregate-only recipients."""

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # YAML reads 2025.1 as a float and 3 as an int; a version is a label, keep it as text
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    def in_force(self, day: date) -> bool:
        """True when this version allows anything on ``day``."""
        if self.revoked is not None and day >= self.revoked.day:
            return False
        return self.valid.covers(day)

    @property
    def key(self) -> str:
        return f"{self.covenant}@{self.version}"
