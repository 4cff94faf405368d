"""Checks of a stacking file against the covenants and schemas (part of ``covenant check``).

* every covenant with a rule marked ``stacking: true`` declares the stacking purpose — a
  signal may only be stacked under a covenant that names that purpose (AVG art. 5(1)(b));
* the alert type exists and names its location by an identifier field;
* the alert source is a supplier of some covenant, and some rule delivers its alerts
  (a warning otherwise: alerts would be withheld from everyone);
* the signal types given a strength exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.core.covenant.loader import LoadedCovenant
from services.core.covenant.problems import Problem
from services.core.schema_registry import SchemaRegistry
from services.core.stacking.config import LoadedStackingConfig

__all__ = ["check_stacking"]


def check_stacking(
    loaded: LoadedStackingConfig,
    covenants: Sequence[LoadedCovenant],
    registry: SchemaRegistry,
) -> list[Problem]:
    """Every problem of one stacking file with the covenants and schemas it works with."""
    config = loaded.config
    if config is None:
        return list(loaded.problems)
    file = loaded.file
    problems: list[Problem] = []
    known = set(registry.types())
    if config.alert.type not in known:
        problems.append(
            Problem(
                file,
                loaded.line("alert", "type"),
                f"alert type {config.alert.type} has no schema",
                f"add schemas/signals/{config.alert.type}.json or name an existing type",
            )
        )
    else:
        schema = registry.get(config.alert.type)
        if not {"address", "bag"} & set(schema.location_fields):
            problems.append(
                Problem(
                    file,
                    loaded.line("alert", "type"),
                    f"alert type {config.alert.type} has no address or bag location field",
                    "list address or bag under x-location-fields in its schema",
                )
            )
    for signal_type in config.strength:
        if signal_type not in known:
            problems.append(
                Problem(
                    file,
                    loaded.line("strength", signal_type),
                    f"strength given for unknown signal type {signal_type}",
                    "fix the type name (see schemas/signals/) or remove the line",
                )
            )
    stacking_rules, supplier, delivered = _covenant_problems(loaded, covenants, problems)
    if not supplier:
        problems.append(
            Problem(
                file,
                loaded.line("alert", "source"),
                f"alert source {config.alert.source!r} is no supplier party of any covenant",
                "add the hub as a party with roles [supplier] to the covenant that shares alerts",
            )
        )
    elif not delivered:
        problems.append(
            Problem(
                file,
                loaded.line("alert", "type"),
                f"no covenant rule delivers {config.alert.type} from {config.alert.source}, so "
                "every alert is withheld",
                "add a rule with `from: [" + config.alert.source + "]` and recipients",
                severity="warning",
            )
        )
    if not stacking_rules:
        problems.append(
            Problem(
                file,
                1,
                "no covenant rule allows stacking, so no signal will ever be stacked",
                "mark the rules whose signals may be stacked with `stacking: true`",
                severity="warning",
            )
        )
    return problems


def _covenant_problems(
    loaded: LoadedStackingConfig, covenants: Sequence[LoadedCovenant], problems: list[Problem]
) -> tuple[int, bool, bool]:
    """Check the stacking purpose of every covenant; return (stacking rules, hub is a
    supplier, some rule delivers alerts)."""
    config = loaded.config
    if config is None:  # pragma: no cover - checked by the caller
        return 0, False, False
    stacking_rules = 0
    supplier = delivered = False
    for item in covenants:
        cov = item.covenant
        party = cov.parties.get(config.alert.source)
        supplier = supplier or (party is not None and "supplier" in party.roles)
        for index, rule in enumerate(cov.rules):
            if config.alert.source in rule.from_ and config.alert.type in rule.types and rule.to:
                delivered = True
            if not rule.stacking:
                continue
            stacking_rules += 1
            if config.purpose not in cov.purposes:
                problems.append(
                    Problem(
                        item.file,
                        item.line("rules", index, "stacking"),
                        f"rule {rule.id!r} allows stacking, but covenant {cov.key} does not "
                        f"declare the stacking purpose {config.purpose!r} ({loaded.file})",
                        f"add `{config.purpose}: <description>` under purposes:, or remove "
                        "`stacking: true` from the rule",
                    )
                )
    return stacking_rules, supplier, delivered
