"""Checks of the return grammar: rules that tell partners about outcomes at their own locations.

A rule with ``return_to`` (docs/outcomes.md) routes an *outcome* (a police finding, a check
that found nothing, a measure) back to the partners that signalled the same location earlier,
each told only which of its **own** signal ids the outcome answers. The checker holds such a
rule to what makes that safe:

* it names outcome types only (schemas with ``x-outcome``), a ``match`` (how far back a signal
  may lie, which of the recipient's types count), and no fixed ``to`` (write two rules);
* each ``return_to`` party both supplies (it has signals to be answered) and receives, and
  does not receive aggregates only;
* it shares no identifier and no personal field of the outcome: the recipient recognises the
  location by its own signal id, so nothing of the outcome's source (the police's address,
  BAG id or EAN, its signal id) needs to reach it; and so no pseudonyms, ``plain`` or
  re-identification either;
* an ``approval`` party is an approver of the covenant that also publishes (its approvals are
  signals on ``signals.<party>``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from typing import TYPE_CHECKING

from services.core.covenant.model import Covenant, Rule
from services.core.covenant.problems import Problem
from services.core.schema_registry import SchemaRegistry, SignalSchema

if TYPE_CHECKING:
    from services.core.covenant.checker import CheckedRule

Report = Callable[..., None]
"""``problem(path, message, hint, severity="error")`` of the checker."""

__all__ = ["check_return_overlaps", "check_return_rule", "is_return_rule"]


def is_return_rule(rule: Rule) -> bool:
    """Whether the rule uses the return grammar (``return_to``, ``match`` or ``approval``)."""
    return bool(rule.return_to) or rule.match is not None or rule.approval is not None


def check_return_rule(
    cov: Covenant,
    rule: Rule,
    schemas: Sequence[SignalSchema],
    registry: SchemaRegistry,
    where: tuple[str | int, ...],
    problem: Report,
) -> bool:
    """Report every problem of one rule that uses the return grammar; True when none."""
    found: list[bool] = []

    def error(path: tuple[str | int, ...], message: str, hint: str) -> None:
        found.append(True)
        problem((*where, *path), f"rule {rule.id!r}: {message}", hint)

    if not rule.return_to:
        error(
            ("match",) if rule.match is not None else ("approval",),
            "`match` and `approval` belong to a rule with `return_to`",
            "add `return_to: [<partner>, ...]`, or remove them",
        )
        return False
    if rule.to:
        error(
            ("to",),
            "a rule either sends to fixed recipients (`to`) or returns to the partners that "
            "signalled the location (`return_to`), not both",
            "split it into two rules",
        )
    if rule.match is None:
        error(
            ("return_to",),
            "`return_to` needs `match`: how long before the outcome a partner's signal may lie",
            "add `match: {within: P365D}` (and `types: [...]` to answer only some types)",
        )
    for k, schema in enumerate(schemas):
        if schema.outcome is None:
            error(
                ("types", k),
                f"{schema.type} is not an outcome type (no x-outcome in its schema), so there "
                "is nothing to return",
                "return outcome types only (police.location_finding.v1, ...); route other "
                "types with `to`",
            )
    _check_parties(cov, rule, error)
    _check_share(rule, schemas, error)
    _check_match(rule, registry, error)
    _check_approval(cov, rule, error)
    return not found


Error = Callable[[tuple[str | int, ...], str, str], None]


def _check_parties(cov: Covenant, rule: Rule, error: Error) -> None:
    for k, name in enumerate(rule.return_to):
        party = cov.parties.get(name)
        if party is None:
            error(
                ("return_to", k),
                f"unknown partner {name!r} in `return_to`",
                f"add it to `parties` or use one of: {', '.join(sorted(cov.parties))}",
            )
            continue
        missing = [r for r in ("supplier", "recipient") if r not in party.roles]
        if missing:
            error(
                ("return_to", k),
                f"{name!r} is told about its own signals, so it must be a supplier and a "
                f"recipient; it is not a {' or '.join(missing)}",
                f"add {', '.join(missing)} to the roles of {name!r}",
            )
        if party.aggregate_only is not None:
            error(
                ("return_to", k),
                f"{name!r} receives aggregates only; a return is a record per signal",
                f"remove {name!r} from `return_to`",
            )


def _check_share(rule: Rule, schemas: Sequence[SignalSchema], error: Error) -> None:
    for name in rule.share:
        for schema in schemas:
            info = schema.fields.get(name)
            if info is not None and info.sensitive:
                error(
                    ("share", name),
                    f"field {name!r} of {schema.type} is "
                    + ("an identifier" if info.identifier else "personal data")
                    + "; a return never carries the outcome's identifiers or personal data",
                    "remove it: the recipient recognises the location by its own signal id "
                    "(`answers` in the message)",
                )
    if rule.reidentify != "never":
        error(
            ("reidentify",),
            "a return shares no pseudonym, so there is nothing to re-identify",
            "remove `reidentify`",
        )
    if rule.stacking:
        error(("stacking",), "outcomes are not indicators to stack", "remove `stacking: true`")


def _check_match(rule: Rule, registry: SchemaRegistry, error: Error) -> None:
    if rule.match is None or rule.match.types is None:
        return
    for k, signal_type in enumerate(rule.match.types):
        if signal_type not in registry:
            error(
                ("match", "types", k),
                f"unknown signal type {signal_type!r} in `match.types`",
                f"use one of: {', '.join(registry.types())}",
            )
        elif registry.get(signal_type).outcome or registry.get(signal_type).approval:
            error(
                ("match", "types", k),
                f"{signal_type} is an outcome or approval, not a signal an outcome answers",
                "list the partner's indicator types (energy.*, housing.*, ...)",
            )


def _check_approval(cov: Covenant, rule: Rule, error: Error) -> None:
    if rule.approval is None:
        return
    approver = cov.parties.get(rule.approval)
    if approver is None:
        error(
            ("approval",),
            f"unknown approver {rule.approval!r}",
            f"add it to `parties` or use one of: {', '.join(sorted(cov.parties))}",
        )
    elif "approver" not in approver.roles or "supplier" not in approver.roles:
        error(
            ("approval",),
            f"{rule.approval!r} must be an approver that also supplies (its approvals are "
            "signals it publishes)",
            f"give {rule.approval!r} the roles [supplier, approver]",
        )


def check_return_overlaps(rules: Iterable[CheckedRule]) -> list[Problem]:
    """Return rules that can both decide one (source, type, recipient) must agree, or have
    different conditions (then the first wins, a warning)."""
    slots: dict[tuple[str, str, str], list[CheckedRule]] = defaultdict(list)
    for checked in rules:
        for source in checked.rule.from_:
            for signal_type in checked.rule.types:
                for recipient in checked.rule.return_to:
                    slots[(source, signal_type, recipient)].append(checked)
    problems: list[Problem] = []
    reported: set[tuple[int, int]] = set()
    for (source, signal_type, recipient), found in slots.items():
        for a, b in combinations(found, 2):
            va, vb = a.loaded.covenant.valid, b.loaded.covenant.valid
            if not (
                (va.until is None or vb.from_ <= va.until)
                and (vb.until is None or va.from_ <= vb.until)
            ):
                continue
            if (id(a), id(b)) in reported or _same(a.rule, b.rule):
                continue
            reported.add((id(a), id(b)))
            message = (
                f"return rules {a.loaded.covenant.key}/{a.rule.id} and "
                f"{b.loaded.covenant.key}/{b.rule.id} both return {signal_type} from "
                f"{source} to {recipient} but differ"
            )
            same_condition = a.rule.when == b.rule.when
            problems.append(
                Problem(
                    b.loaded.file,
                    b.loaded.line("rules", b.index),
                    message if same_condition else message + " where both conditions hold",
                    "merge the rules, or give them disjoint `when` conditions",
                    severity="error" if same_condition else "warning",
                )
            )
    return problems


def _same(a: Rule, b: Rule) -> bool:
    return (a.share, a.envelope, a.retention, a.match, a.approval) == (
        b.share,
        b.envelope,
        b.retention,
        b.match,
        b.approval,
    )
