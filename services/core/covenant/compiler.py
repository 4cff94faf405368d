"""Turn a checked covenant set into a :class:`~services.core.policy.Policy`.

Everything that can be decided once is decided here: conditions are already compiled by the
checker; share specs become per-field functions; pseudonymisation is bound to each
recipient's domain; rules are indexed by (source partner, signal type).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from services.core.covenant.aggregate_checks import aggregate_only_parties
from services.core.covenant.checker import CheckedRule, CheckResult
from services.core.covenant.envelope_spec import resolve
from services.core.covenant.keyring import Keyring
from services.core.covenant.return_compile import compile_returns, hub_only_keys
from services.core.covenant.transforms import ShareSpec, generaliser
from services.core.decision import RuleRef
from services.core.errors import CovenantError
from services.core.policy import FieldStep, Plan, Policy, StackingPlan
from services.core.pseudonyms import Domain, Pseudonymiser
from services.core.schema_registry import SchemaRegistry


def compile_policy(
    checked: CheckResult, registry: SchemaRegistry, pseudonymiser: Pseudonymiser
) -> Policy:
    """Compile a covenant set that checked clean; raise :class:`CovenantError` otherwise."""
    if not checked.ok:
        raise CovenantError(list(checked.errors))
    reversible = _reversible_domains(checked.rules)
    # defence in depth: the checker refuses per-signal rules to these parties; should one get
    # through anyway, its plans withhold every signal, saying why
    aggregate_only = aggregate_only_parties(checked.covenants)
    index: dict[tuple[str, str], list[Plan]] = defaultdict(list)
    stacking: dict[tuple[str, str], list[StackingPlan]] = defaultdict(list)
    ordered = sorted(
        checked.rules,
        key=lambda c: (c.loaded.covenant.covenant, c.loaded.covenant.valid.from_, c.index),
    )
    for checked_rule in ordered:
        cov = checked_rule.loaded.covenant
        rule = checked_rule.rule
        ref = RuleRef(cov.covenant, cov.version, rule.id, rule.article, rule.purpose)
        envelope = resolve(rule.envelope, checked_rule.shares).plan()
        if rule.stacking:
            use = StackingPlan(ref, cov, (cov.key, rule.id), checked_rule.condition)
            for signal_type in rule.types:
                for source in rule.from_:
                    stacking[(source, signal_type)].append(use)
        for signal_type in rule.types:
            schema = registry.get(signal_type)
            for recipient in rule.to:
                domain = Domain(cov.covenant, recipient, (cov.covenant, recipient) in reversible)
                steps = tuple(
                    _step(path, spec, schema.fields[path].identifier, pseudonymiser, domain)
                    for path, spec in checked_rule.shares.items()
                )
                plan = Plan(
                    ref=ref,
                    covenant=cov,
                    rule_key=(cov.key, rule.id),
                    recipient=recipient,
                    condition=checked_rule.condition,
                    steps=steps,
                    shared=frozenset(checked_rule.shares),
                    retention_days=rule.retention_period.days,
                    reidentify=rule.reidentify == "on-request",
                    envelope=envelope,
                    refusal=_aggregate_only_refusal(recipient, aggregate_only),
                )
                for source in rule.from_:
                    index[(source, signal_type)].append(plan)
    suppliers = {
        party_id
        for item in checked.covenants
        for party_id, party in item.covenant.parties.items()
        if "supplier" in party.roles
    }
    recipients = {
        party_id
        for item in checked.covenants
        for party_id, party in item.covenant.parties.items()
        if "recipient" in party.roles
    }
    compiled = {k: tuple(v) for k, v in index.items()}
    returns = compile_returns(ordered)
    return Policy(
        index=compiled,
        pseudonymiser=pseudonymiser,
        covenants=tuple(item.covenant for item in checked.covenants),
        suppliers=frozenset(suppliers),
        recipients=frozenset(recipients),
        keyring=Keyring((item.covenant for item in checked.covenants), test_keys=checked.demo),
        stacking=frozenset(stacking),
        stacking_plans={k: tuple(v) for k, v in stacking.items()},
        return_plans=returns,
        hub_only=hub_only_keys(returns, compiled, registry),
    )


def _aggregate_only_refusal(recipient: str, only: dict[str, tuple[int, str]]) -> str | None:
    if recipient not in only:
        return None
    min_cell, declared = only[recipient]
    return (
        f"{recipient} receives aggregates only (cells of at least {min_cell}, {declared}): "
        "no record per signal is delivered to it"
    )


def _reversible_domains(rules: list[CheckedRule]) -> set[tuple[str, str]]:
    """A domain is reversible when any rule of that covenant allows re-identification for it.

    One domain must have one pseudonym form, or a recipient could not link its own records.
    """
    return {
        (c.loaded.covenant.covenant, recipient)
        for c in rules
        if c.rule.reidentify == "on-request"
        for recipient in c.rule.to
    }


def _step(
    path: str,
    spec: ShareSpec,
    kind: str | None,
    pseudonymiser: Pseudonymiser,
    domain: Domain,
) -> FieldStep:
    apply: Callable[[Any], Any] | None
    if spec.action in ("keep", "plain"):  # plain: an identifier, declared by the rule
        apply = None
    elif spec.action == "pseudonymise":
        if kind is None:  # the checker only lets identifier fields be pseudonymised
            raise CovenantError([f"{path}: pseudonymise needs an identifier field"])
        apply = partial(pseudonymiser.pseudonym, domain, kind)
    else:
        apply = generaliser(spec)
    return FieldStep(
        path=tuple(path.split(".")),
        dotted=path,
        spec=spec.text,
        apply=apply,
        pseudonym=spec.action == "pseudonymise",
        flat="." not in path,
    )
