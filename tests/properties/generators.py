"""Random covenants and signals for the leak properties.

A generated covenant set is valid by construction: each recipient is named by at most one rule
per covenant, so no two rules compete for one (source, type, recipient).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from services.core.identifiers import ean_check_digit, normalise
from tests.core.builders import anomaly, covenant_text

RECIPIENTS = ("riec-nh", "politie-nh", "gemeente-alkmaar")
SHAREABLE: dict[str, tuple[str, ...]] = {
    "ean": ("pseudonymise", "plain"),
    "address": ("pseudonymise", "generalise:postcode4", "plain"),
    "municipality": ("keep",),
    "score": ("keep", "generalise:band:0.1"),
    "period": ("keep", "generalise:week", "generalise:month"),
    "kwh_expected": ("keep", "generalise:band:100"),
    "kwh_observed": ("keep",),
}
IDENTIFIER_FIELDS = ("ean", "address")
ENVELOPE_TIMES = (
    "keep",
    "omit",
    "generalise:hour",
    "generalise:day",
    "generalise:week",
    "generalise:month",
    "generalise:year",
)
OFFSETS = (0, 60, 120, -300, 330)
"""Minutes east of UTC that partners write signal times in (Z, CET, CEST, New York, India)."""
CONDITIONS = (
    None,
    "data.score >= 0.5",
    "data.municipality in regions.riec_nh",
    "data.municipality == 'GM0361' || data.score > 0.9",
)
NEEDS: dict[str | None, dict[str, tuple[str, ...]]] = {
    None: {},
    "data.score >= 0.5": {"score": ("keep", "generalise:band:0.1")},  # 0.5 is a band boundary
    "data.municipality in regions.riec_nh": {"municipality": ("keep",)},
    "data.municipality == 'GM0361' || data.score > 0.9": {
        "municipality": ("keep",),
        "score": ("keep",),
    },
}
"""What each condition needs the rule to share: a condition reads nothing finer than its rule
shares (docs/covenants.md, "What a condition may read")."""


def conditions_for(share: dict[str, str]) -> list[str | None]:
    """The conditions a rule with ``share`` may have."""
    return [
        condition
        for condition in CONDITIONS
        if all(share.get(f) in allowed for f, allowed in NEEDS[condition].items())
    ]


@dataclass(frozen=True)
class GeneratedRule:
    rule_id: str
    recipients: tuple[str, ...]
    share: dict[str, str]
    condition: str | None
    envelope: dict[str, str] = dataclass_field(default_factory=dict)

    def yaml(self, signal_type: str = "energy.consumption_anomaly.v1") -> str:
        share = "{" + ", ".join(f'{k}: "{v}"' for k, v in self.share.items()) + "}"
        when = f'  when: "{self.condition}"\n' if self.condition else ""
        # a raw identifier is only disclosed under a declared legal basis
        plain = any(self.share.get(f) == "plain" for f in IDENTIFIER_FIELDS)
        declared = '  plain_identifiers: {legal_basis: "Wet X art. 1"}\n' if plain else ""
        envelope = (
            "  envelope: {" + ", ".join(f'{k}: "{v}"' for k, v in self.envelope.items()) + "}\n"
            if self.envelope
            else ""
        )
        return (
            f"- id: {self.rule_id}\n"
            f'  article: "art. 1"\n'
            f"  purpose: signalering\n"
            f"  from: [liander]\n"
            f"  types: [{signal_type}]\n"
            f"  to: [{', '.join(self.recipients)}]\n"
            f"{when}"
            f"  share: {share}\n"
            f"{envelope}"
            f"  retention: P30D\n"
            f"{declared}"
        )


@dataclass(frozen=True)
class GeneratedCovenant:
    covenant_id: str
    rules: tuple[GeneratedRule, ...]

    def text(self, **overrides: str) -> str:
        return covenant_text(
            "".join(r.yaml() for r in self.rules), covenant=self.covenant_id, **overrides
        )

    def rule_for(self, recipient: str) -> GeneratedRule | None:
        return next((r for r in self.rules if recipient in r.recipients), None)


@st.composite
def shares(draw: st.DrawFn) -> dict[str, str]:
    fields = draw(st.lists(st.sampled_from(sorted(SHAREABLE)), min_size=1, max_size=7, unique=True))
    return {f: draw(st.sampled_from(SHAREABLE[f])) for f in sorted(fields)}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, str]:
    """A rule's ``envelope`` block: often absent (the defaults), else any time and source."""
    block: dict[str, str] = {}
    if draw(st.booleans()):
        block["time"] = draw(st.sampled_from(ENVELOPE_TIMES))
    if draw(st.booleans()):
        block["source"] = draw(st.sampled_from(("keep", "omit")))
    return block


@st.composite
def signal_times(draw: st.DrawFn) -> str:
    """An RFC 3339 time in the three weeks before the tests' NOW, in some partner's offset."""
    moment = draw(
        st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 22, 11))
    )
    offset = timedelta(minutes=draw(st.sampled_from(OFFSETS)))
    local = moment.replace(tzinfo=UTC).astimezone(timezone(offset))
    text = local.isoformat(timespec=draw(st.sampled_from(("seconds", "milliseconds"))))
    return text.replace("+00:00", "Z")


@st.composite
def covenants(draw: st.DrawFn, covenant_id: str = "test-covenant") -> GeneratedCovenant:
    named = draw(st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=3, unique=True))
    groups = draw(st.integers(1, len(named)))
    rules = []
    for i in range(groups):
        members = tuple(named[i::groups])
        share = draw(shares())
        rules.append(
            GeneratedRule(
                f"rule-{i}",
                members,
                share,
                draw(st.sampled_from(conditions_for(share))),
                draw(envelopes()),
            )
        )
    return GeneratedCovenant(covenant_id, tuple(rules))


@st.composite
def raw_eans(draw: st.DrawFn) -> str:
    first = "8716" + draw(st.text("0123456789", min_size=13, max_size=13))
    ean = first + ean_check_digit(first)
    if draw(st.booleans()):  # as partners write them: grouped by spaces
        return " ".join(ean[i : i + 3] for i in range(0, 18, 3))
    return ean


@st.composite
def raw_addresses(draw: st.DrawFn) -> str:
    digits = draw(st.integers(1000, 9999))
    letters = draw(st.text("ABCEGHJKLMNPRTVWXZ", min_size=2, max_size=2))
    number = draw(st.integers(1, 999))
    addition = draw(st.sampled_from(["", "A", " b", "-2"]))
    form = draw(st.sampled_from(["{d} {l} {n}{a}", "{d}{l} {n}{a}", "{d} {L} {n}{a}"]))
    return form.format(d=digits, l=letters, L=letters.lower(), n=number, a=addition)


@st.composite
def anomalies(draw: st.DrawFn, index: int = 1) -> dict[str, Any]:
    envelope = anomaly(
        signal_id=f"liander-{index:06d}",
        ean=draw(raw_eans()),
        address=draw(raw_addresses()),
        municipality=draw(st.sampled_from(["GM0361", "GM0363", "GM0398", "GM0014"])),
        score=draw(st.floats(0, 1)),
    )
    envelope["time"] = draw(signal_times())
    return envelope


def raw_forms(envelope: dict[str, Any]) -> dict[str, set[str]]:
    """Every text form of each identifier that must not leak: as sent, canonical, and for an
    address also its full postcode (a generalised address shows only the 4 digits)."""
    data = envelope["data"]
    forms: dict[str, set[str]] = {}
    for field in IDENTIFIER_FIELDS:
        canonical = normalise(field, data[field])
        forms[field] = {data[field], canonical, canonical.replace(" ", "")}
        if field == "address":
            forms[field].add(canonical[:6])
    return forms
