"""``schakel covenant check`` for aggregate-only recipients and ``aggregates`` entries.

A party with ``aggregate_only: {min_cell: N}`` may receive aggregates only: a rule that
delivers it one record per signal is an error in every covenant that names it (the party id
is one feed, whichever covenant delivers to it). An ``aggregates`` entry must name a known
purpose and recipients of its covenant, have an id no rule of that covenant uses, and suppress
cells below at least the hub's floor and the floor of every aggregate-only party it names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from services.core.covenant.loader import LoadedCovenant
from services.core.covenant.problems import Problem
from services.core.coverage.release import DEFAULT_THRESHOLD

MIN_CELL_FLOOR: Final = DEFAULT_THRESHOLD
"""No aggregate leaves the hub with a count below this (services/coverage/publish.py)."""


def aggregate_only_parties(covenants: Iterable[LoadedCovenant]) -> dict[str, tuple[int, str]]:
    """Party id -> (largest ``min_cell`` any covenant declares, that covenant's key)."""
    only: dict[str, tuple[int, str]] = {}
    for item in covenants:
        for party_id, party in item.covenant.parties.items():
            if party.aggregate_only is None:
                continue
            current = only.get(party_id)
            if current is None or party.aggregate_only.min_cell > current[0]:
                only[party_id] = (party.aggregate_only.min_cell, item.covenant.key)
    return only


def check_aggregates(covenants: Iterable[LoadedCovenant]) -> list[Problem]:
    """Every per-signal rule to an aggregate-only party, and every bad ``aggregates`` entry."""
    items = list(covenants)
    only = aggregate_only_parties(items)
    problems: list[Problem] = []
    for item in items:
        cov = item.covenant
        for index, rule in enumerate(cov.rules):
            for k, name in enumerate(rule.to):
                if name in only:
                    min_cell, declared = only[name]
                    problems.append(
                        _at(
                            item,
                            ("rules", index, "to", k),
                            f"rule {rule.id!r} delivers one record per signal to {name!r}, which "
                            f"receives aggregates only (cells of at least {min_cell}, declared "
                            f"in {declared})",
                            f"remove {name!r} from `to`; give it an `aggregates` entry instead "
                            "(docs/covenants.md#aggregates)",
                        )
                    )
        rule_ids = {rule.id for rule in cov.rules}
        seen: set[str] = set()
        for index, aggregate in enumerate(cov.aggregates):
            where = ("aggregates", index)
            if aggregate.id in rule_ids or aggregate.id in seen:
                problems.append(
                    _at(
                        item,
                        (*where, "id"),
                        f"aggregate id {aggregate.id!r} is used twice in {cov.key}",
                        "give each rule and aggregate its own id",
                    )
                )
            seen.add(aggregate.id)
            if aggregate.purpose not in cov.purposes:
                problems.append(
                    _at(
                        item,
                        (*where, "purpose"),
                        f"aggregate {aggregate.id!r}: purpose {aggregate.purpose!r} is not one "
                        "of the covenant's purposes",
                        f"use one of: {', '.join(sorted(cov.purposes))}",
                    )
                )
            if aggregate.min_cell < MIN_CELL_FLOOR:
                problems.append(
                    _at(
                        item,
                        (*where, "min_cell"),
                        f"aggregate {aggregate.id!r}: min_cell {aggregate.min_cell} is below "
                        f"{MIN_CELL_FLOOR}; the hub releases no smaller count",
                        f"use {MIN_CELL_FLOOR} or more",
                    )
                )
            for k, name in enumerate(aggregate.to):
                party = cov.parties.get(name)
                if party is None or "recipient" not in party.roles:
                    problems.append(
                        _at(
                            item,
                            (*where, "to", k),
                            f"aggregate {aggregate.id!r}: {name!r} is not a recipient party of "
                            f"{cov.key}",
                            f"add it to `parties` with the role `recipient`, or use one of: "
                            f"{', '.join(sorted(p for p, v in cov.parties.items() if 'recipient' in v.roles))}",
                        )
                    )
                elif name in only and aggregate.min_cell < only[name][0]:
                    problems.append(
                        _at(
                            item,
                            (*where, "min_cell"),
                            f"aggregate {aggregate.id!r}: min_cell {aggregate.min_cell} is below "
                            f"the {only[name][0]} that {name!r} is declared to receive at least "
                            f"(in {only[name][1]})",
                            f"use min_cell {only[name][0]} or more",
                        )
                    )
    return problems


def _at(item: LoadedCovenant, path: tuple[str | int, ...], message: str, hint: str) -> Problem:
    return Problem(item.file, item.line(*path), message, hint)
