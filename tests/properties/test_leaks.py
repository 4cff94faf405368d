"""Leak properties over random covenants and signals.

* A recipient's payload holds only fields its rule shares (deny by default).
* An identifier a rule does not keep never reaches the recipient in any raw form (as sent,
  canonical, or an address's full postcode) — anywhere in the feed message.
* No raw identifier ever enters an audit record, delivered or withheld.
* Pseudonyms of one identifier differ between recipient domains (recipient x covenant) and are
  stable within one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.core.policy import Policy
from services.core.pseudonyms import Domain, Pseudonymiser
from services.core.records import audit_record, feed_message
from tests.core.builders import NOW, covenant_text, keys, policy, signal
from tests.fuzz.strategies import fuzz_settings
from tests.properties.generators import (
    IDENTIFIER_FIELDS,
    RECIPIENTS,
    anomalies,
    covenants,
    raw_eans,
    raw_forms,
)

KEYS = keys()


def leaves(value: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            out.extend(leaves(item, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


def shared_by(path: str, share: dict[str, str]) -> bool:
    return path in share or path.split(".", 1)[0] in share


@fuzz_settings(150)
@given(covenants(), st.lists(anomalies(), min_size=1, max_size=4))
def test_recipients_get_only_what_their_rule_shares_and_no_raw_identifier(covenant, envelopes):
    compiled = policy(covenant.text(), store=KEYS)
    for envelope in envelopes:
        accepted = signal(envelope)
        forms = raw_forms(envelope)
        every_form = set().union(*forms.values())
        decisions = compiled.decide(accepted, NOW)
        assert {d.recipient for d in decisions} <= set(RECIPIENTS)
        for decision in decisions:
            audit_text = orjson.dumps(audit_record(decision, actor="test")).decode()
            leaked = sorted(f for f in every_form if f in audit_text)
            assert not leaked, f"raw identifier in the audit record of {decision.recipient}"
            rule = covenant.rule_for(decision.recipient)
            assert rule is not None, "a recipient no rule names got a decision"
            if not decision.delivered:
                assert decision.payload is None or decision.payload == {}
                continue
            assert decision.payload is not None
            for path in leaves(decision.payload):
                assert shared_by(path, rule.share), f"{path} reached {decision.recipient}"
            feed_text = orjson.dumps(feed_message(decision)).decode()
            for field in IDENTIFIER_FIELDS:
                if rule.share.get(field) == "plain":
                    continue
                leaked = sorted(f for f in forms[field] if f in feed_text)
                assert not leaked, (
                    f"{field} leaked to {decision.recipient} ({rule.share.get(field)})"
                )


EVERY = {"ean": "pseudonymise", "address": "pseudonymise", "score": "keep"}
ALL_RECIPIENTS_RULE = (
    f'- {{id: r1, article: "1", purpose: signalering, from: [liander], '
    f"types: [energy.consumption_anomaly.v1], to: [{', '.join(RECIPIENTS)}], "
    f"share: {orjson.dumps(EVERY).decode()}, retention: P30D}}\n"
)


@cache
def two_covenants() -> tuple[Policy, Policy]:
    """One rule pseudonymising ean and address for every recipient, under two covenants."""
    return (
        policy(covenant_text(ALL_RECIPIENTS_RULE, covenant="covenant-a"), store=KEYS),
        policy(covenant_text(ALL_RECIPIENTS_RULE, covenant="covenant-b"), store=KEYS),
    )


@fuzz_settings(200)
@given(st.lists(anomalies(), min_size=1, max_size=3))
def test_pseudonyms_differ_across_recipients_and_covenants_and_are_stable_within(envelopes):
    first, second = two_covenants()
    for envelope in envelopes:
        accepted = signal(envelope)
        issued: dict[tuple[str, str, str], str] = {}
        for name, compiled in (("a", first), ("b", second)):
            for decision in compiled.decide(accepted, NOW):
                assert decision.delivered
                for field, pseudonym in decision.pseudonyms.items():
                    issued[(name, decision.recipient, field)] = pseudonym
        assert len(issued) == 2 * len(RECIPIENTS) * 2
        for field in ("ean", "address"):
            values = [v for (_, _, f), v in issued.items() if f == field]
            assert len(set(values)) == len(values), f"two domains share a pseudonym of {field}"
        again = {d.recipient: d.pseudonyms for d in first.decide(accepted, NOW)}
        for recipient, pseudonyms in again.items():
            for field, pseudonym in pseudonyms.items():
                assert issued[("a", recipient, field)] == pseudonym


@fuzz_settings(200)
@given(
    raw_eans(),
    st.lists(
        st.tuples(st.sampled_from(["cov-a", "cov-b", "cov-c"]), st.sampled_from(RECIPIENTS)),
        min_size=2,
        max_size=6,
        unique=True,
    ),
    st.booleans(),
)
def test_pseudonymiser_domains_never_coincide(ean, domains, reversible):
    from services.core.identifiers import normalise

    pseudonymiser = Pseudonymiser(KEYS)
    canonical = normalise("ean", ean)
    made = [pseudonymiser.pseudonym(Domain(c, r, reversible), "ean", canonical) for c, r in domains]
    assert len(set(made)) == len(made)
    assert all(canonical not in p for p in made)
