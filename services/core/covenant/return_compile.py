"""Compile the rules with ``return_to`` into :class:`~services.core.policy.ReturnPlan` objects.

A return shares only fields that are neither identifiers nor personal (the checker refuses the
rest), so each field step is ``keep`` or a generaliser; there is no pseudonym domain. The keys
only the outcomes worker decides (an outcome no ``to`` rule routes, an approver's approvals)
are collected too, so the router does not record a misleading "no rule allows" for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from services.core.covenant.checker import CheckedRule
from services.core.covenant.envelope_spec import resolve
from services.core.covenant.transforms import generaliser
from services.core.decision import RuleRef
from services.core.errors import CovenantError
from services.core.policy import FieldStep, Plan, ReturnPlan
from services.core.schema_registry import SchemaRegistry

__all__ = ["compile_returns", "hub_only_keys"]


def compile_returns(
    rules: Iterable[CheckedRule],
) -> dict[tuple[str, str], tuple[ReturnPlan, ...]]:
    """Return plans per (outcome source, outcome type), in the order given (decision order)."""
    found: dict[tuple[str, str], list[ReturnPlan]] = defaultdict(list)
    for checked in rules:
        rule = checked.rule
        if not rule.return_to:
            continue
        cov = checked.loaded.covenant
        if rule.match is None:  # the checker refuses this; compile nothing rather than guess
            raise CovenantError([f"{cov.key} rule {rule.id}: return_to without match"])
        ref = RuleRef(cov.covenant, cov.version, rule.id, rule.article, rule.purpose)
        steps = tuple(
            FieldStep(
                path=tuple(path.split(".")),
                dotted=path,
                spec=spec.text,
                apply=None if spec.action == "keep" else generaliser(spec),
                pseudonym=False,
                flat="." not in path,
            )
            for path, spec in checked.shares.items()
        )
        for recipient in rule.return_to:
            plan = ReturnPlan(
                ref=ref,
                covenant=cov,
                rule_key=(cov.key, rule.id),
                recipient=recipient,
                condition=checked.condition,
                steps=steps,
                shared=frozenset(checked.shares),
                retention_days=rule.retention_period.days,
                envelope=resolve(rule.envelope, checked.shares).plan(),
                within=rule.match.period,
                match_types=None if rule.match.types is None else frozenset(rule.match.types),
                approval=rule.approval,
            )
            for signal_type in rule.types:
                for source in rule.from_:
                    found[(source, signal_type)].append(plan)
    return {key: tuple(plans) for key, plans in found.items()}


def hub_only_keys(
    returns: Mapping[tuple[str, str], tuple[ReturnPlan, ...]],
    index: Mapping[tuple[str, str], tuple[Plan, ...]],
    registry: SchemaRegistry,
) -> frozenset[tuple[str, str]]:
    """(source, type) pairs the outcomes worker alone decides: outcomes returned but routed by
    no ``to`` rule, and every approval type an approver named by a return rule may send."""
    keys = {key for key in returns if key not in index}
    approvers: dict[str, str] = {}
    for plans in returns.values():
        for plan in plans:
            if plan.approval is not None:
                party = plan.covenant.parties.get(plan.approval)
                if party is not None:
                    approvers[plan.approval] = party.kind
    for signal_type in registry.types():
        schema = registry.get(signal_type)
        if not schema.approval:
            continue
        for approver, kind in approvers.items():
            if kind in schema.partner_kinds and (approver, signal_type) not in index:
                keys.add((approver, signal_type))
    return frozenset(keys)
