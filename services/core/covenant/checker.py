"""``schakel covenant check``: every problem in a covenant set, with file, line and a fix.

The checker is also the first half of compilation: it compiles conditions and parses share
specs once, and hands those artefacts to the compiler, so a policy can only be built from a
covenant set that checks clean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Protocol

from services.core.covenant.aggregate_checks import check_aggregates
from services.core.covenant.cel_ast import parse
from services.core.covenant.condition import CompiledCondition, compile_condition
from services.core.covenant.condition_fields import check_fields
from services.core.covenant.condition_granularity import Disclosure, check_granularity
from services.core.covenant.envelope_spec import resolve
from services.core.covenant.key_checks import check_keys
from services.core.covenant.legal_checks import check_legal
from services.core.covenant.loader import LoadedCovenant, LoadResult
from services.core.covenant.model import Rule
from services.core.covenant.problems import Problem
from services.core.covenant.return_checks import (
    check_return_overlaps,
    check_return_rule,
    is_return_rule,
)
from services.core.covenant.transforms import ShareSpec, TransformSpecError, parse_share
from services.core.errors import ConditionError
from services.core.pseudonyms import RESERVED_COVENANT_IDS
from services.core.regions import ReferenceData
from services.core.schema_registry import FieldInfo, SchemaRegistry, SignalSchema

CONDITION_VARIABLES = frozenset({"data", "source", "type", "time"})
"""What a rule's ``when`` may read besides ``regions``: the signal's data and attributes."""

TIME_FORMATS = frozenset({"date", "date-time"})


class _Reporter(Protocol):
    """Records one problem at a path of the covenant file being checked."""

    def __call__(
        self, path: tuple[str | int, ...], message: str, hint: str, severity: str = "error"
    ) -> None: ...


@dataclass(frozen=True)
class CheckedRule:
    """A rule that passed the checks, with its compiled artefacts."""

    loaded: LoadedCovenant
    index: int
    rule: Rule
    condition: CompiledCondition | None
    shares: dict[str, ShareSpec]
    regions: dict[str, frozenset[str]]

    @property
    def plain_fields(self) -> tuple[str, ...]:
        """The fields this rule discloses in the clear (share value ``plain``)."""
        return tuple(path for path, spec in self.shares.items() if spec.action == "plain")


@dataclass
class CheckResult:
    covenants: list[LoadedCovenant] = field(default_factory=list)
    rules: list[CheckedRule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    demo: bool = False
    """Checked in demo mode: the compiled keyring accepts TEST keys."""
    demo_key_files: list[str] = field(default_factory=list)
    """The demo key registration files read (demo mode only)."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def plain_rules(self) -> list[CheckedRule]:
        """The valid rules that disclose identifiers in the clear, for the checker's listing."""
        return [checked for checked in self.rules if checked.plain_fields]


def check(
    loaded: LoadResult, registry: SchemaRegistry, reference: ReferenceData, *, today: date
) -> CheckResult:
    """Check a loaded covenant set; problems are sorted by file and line."""
    result = CheckResult(
        covenants=list(loaded.covenants),
        problems=list(loaded.problems),
        demo=loaded.demo,
        demo_key_files=list(loaded.demo_key_files),
    )
    for item in loaded.covenants:
        _check_covenant(item, registry, reference, result)
    _check_versions(loaded.covenants, today, result)
    result.problems.extend(check_keys(loaded.covenants, today, demo=loaded.demo))
    result.problems.extend(check_aggregates(loaded.covenants))
    result.problems.extend(check_legal(loaded.covenants))
    _check_overlaps(result)
    _check_condition_granularity(result, registry)
    result.problems.extend(check_return_overlaps(result.rules))
    result.problems.sort(key=lambda p: (p.file, p.line, p.column, p.message))
    return result


def _check_covenant(
    item: LoadedCovenant, registry: SchemaRegistry, reference: ReferenceData, out: CheckResult
) -> None:
    cov = item.covenant

    def problem(
        path: tuple[str | int, ...], message: str, hint: str, severity: str = "error"
    ) -> None:
        out.problems.append(
            Problem(
                item.file,
                item.line(*path),
                message,
                hint,
                severity="warning" if severity == "warning" else "error",
            )
        )

    if cov.covenant in RESERVED_COVENANT_IDS:
        problem(
            ("covenant",),
            f"covenant id {cov.covenant!r} is reserved for the hub's own pseudonym domains "
            "(its recipients could receive the hub's cross-covenant pseudonyms)",
            "give the covenant another id",
        )
    if cov.valid.until is not None and cov.valid.until < cov.valid.from_:
        problem(
            ("valid", "until"), "validity ends before it starts", "make `until` later than `from`"
        )
    for party_id, party in cov.parties.items():
        if party.kind == "municipality" and party.municipality is None:
            problem(
                ("parties", party_id),
                f"municipality party {party_id!r} has no CBS code",
                "add `municipality: GM....`",
                "warning",
            )

    regions: dict[str, frozenset[str]] = {}
    for name, spec in cov.regions.items():
        if isinstance(spec, list):
            unknown = [c for c in spec if c not in reference.municipalities]
            if unknown:
                problem(
                    ("regions", name),
                    f"region {name!r} lists {len(unknown)} code(s) not in the reference data: {', '.join(unknown[:5])}",
                    "check the CBS codes (covenants/reference/municipalities_nh.csv)",
                    "warning",
                )
            regions[name] = frozenset(spec)
        else:
            codes = reference.select(spec)
            if not codes:
                problem(
                    ("regions", name),
                    f"region {name!r} selects no municipality",
                    _selector_hint(reference),
                )
            regions[name] = codes

    seen_rules: dict[str, int] = {}
    for index, rule in enumerate(cov.rules):
        where: tuple[str | int, ...] = ("rules", index)
        if rule.id in seen_rules:
            problem(
                (*where, "id"), f"rule id {rule.id!r} is used twice", "give each rule its own id"
            )
        seen_rules[rule.id] = index
        checked = _check_rule(item, index, rule, regions, registry, problem)
        if checked is not None:
            out.rules.append(checked)


def _check_rule(
    item: LoadedCovenant,
    index: int,
    rule: Rule,
    regions: dict[str, frozenset[str]],
    registry: SchemaRegistry,
    problem: _Reporter,
) -> CheckedRule | None:
    cov = item.covenant
    where: tuple[str | int, ...] = ("rules", index)
    ok = True

    if rule.purpose not in cov.purposes:
        problem(
            (*where, "purpose"),
            f"rule {rule.id!r}: purpose {rule.purpose!r} is not one of the covenant's purposes",
            f"use one of: {', '.join(sorted(cov.purposes))}",
        )
        ok = False
    if not rule.to and not rule.return_to and not rule.stacking:
        problem(
            (*where, "to"),
            f"rule {rule.id!r} names no recipient and does not allow stacking, so it allows nothing",
            "add recipients under `to:` (or `return_to:` for outcomes) or set `stacking: true`",
        )
        ok = False
    if (rule.to or rule.return_to) and not rule.share:
        problem(
            (*where, "share"),
            f"rule {rule.id!r} shares no field",
            "list the fields the recipient gets under `share:`",
        )
        ok = False

    for key, names, role, what in (
        ("from", rule.from_, "supplier", "partner"),
        ("to", rule.to, "recipient", "recipient"),
    ):
        for k, name in enumerate(names):
            party = cov.parties.get(name)
            if party is None:
                problem(
                    (*where, key, k),
                    f"rule {rule.id!r}: unknown {what} {name!r} in `{key}`",
                    f"add it to `parties` or use one of: {', '.join(sorted(cov.parties))}",
                )
                ok = False
            elif role not in party.roles:
                problem(
                    (*where, key, k),
                    f"rule {rule.id!r}: {name!r} is not a {role} in this covenant",
                    f"add `{role}` to the roles of {name!r}",
                )
                ok = False

    schemas = []
    for k, signal_type in enumerate(rule.types):
        if signal_type not in registry:
            problem(
                (*where, "types", k),
                f"rule {rule.id!r}: unknown signal type {signal_type!r}",
                f"use one of the types in schemas/signals: {', '.join(registry.types())}",
            )
            ok = False
            continue
        schema = registry.get(signal_type)
        schemas.append(schema)
        for p, partner in enumerate(rule.from_):
            party = cov.parties.get(partner)
            if party is not None and party.kind not in schema.partner_kinds:
                problem(
                    (*where, "from", p),
                    f"rule {rule.id!r}: {partner!r} is a {party.kind} partner, but {signal_type} is sent by {', '.join(schema.partner_kinds)} partners",
                    "remove the partner or the type from this rule",
                )
                ok = False

    if is_return_rule(rule) and not check_return_rule(cov, rule, schemas, registry, where, problem):
        ok = False

    plain_declared = rule.plain_identifiers is not None
    shares: dict[str, ShareSpec] = {}
    for path, text in rule.share.items():
        try:
            spec = parse_share(text)
        except TransformSpecError as exc:
            problem(
                (*where, "share", path),
                f"rule {rule.id!r}, field {path!r}: {exc}",
                "see docs/covenants.md#share",
            )
            ok = False
            continue
        shares[path] = spec
        for schema in schemas:
            info = schema.fields.get(path)
            if info is None:
                problem(
                    (*where, "share", path),
                    f"rule {rule.id!r}: field {path!r} is not in the schema of {schema.type}",
                    f"use one of: {', '.join(sorted(schema.fields))}",
                )
                ok = False
                continue
            message = _share_mismatch(spec, info, plain_declared) or _nested_identifier(
                spec, info, schema
            )
            if message:
                problem(
                    (*where, "share", path),
                    f"rule {rule.id!r}, field {path!r} of {schema.type}: {message[0]}",
                    message[1],
                )
                ok = False
    if plain_declared and not any(spec.action == "plain" for spec in shares.values()):
        problem(
            (*where, "plain_identifiers"),
            f"rule {rule.id!r} declares plain identifiers but shares no field as `plain`",
            "remove `plain_identifiers`, or share the identifier field as `plain`",
        )
        ok = False
    for path in shares:
        parent = path.rsplit(".", 1)[0]
        if "." in path and parent in shares:
            problem(
                (*where, "share", path),
                f"rule {rule.id!r}: {path!r} is already covered by {parent!r}",
                f"name either {parent!r} or its members, not both",
            )
            ok = False
    envelope = resolve(rule.envelope, shares)
    if (
        (rule.to or rule.return_to)
        and envelope.undoes_share
        and envelope.coarsest_share is not None
    ):
        path, coarse = envelope.coarsest_share
        problem(
            (*where, "envelope", "time"),
            f"rule {rule.id!r}: envelope time {envelope.time} is finer than {path!r} "
            f"({coarse}), so the signal's time can undo that generalisation",
            f"leave `time` out (the default follows the share) or use {coarse} or coarser",
            "warning",
        )

    condition = None
    if rule.when is not None:
        try:
            condition = compile_condition(
                rule.when,
                variables=CONDITION_VARIABLES,
                constants={"regions": {k: sorted(v) for k, v in regions.items()}},
            )
        except ConditionError as exc:
            problem(
                (*where, "when"),
                f"rule {rule.id!r}: condition does not compile: {exc.message}"
                + (f" (at column {exc.column})" if exc.column else ""),
                "see docs/covenants.md#conditions for the CEL subset",
            )
            ok = False
        else:
            for ref in sorted(condition.references):
                if not ref.startswith("data."):
                    continue
                field_path = ref.removeprefix("data.")
                for schema in schemas:
                    if field_path not in schema.fields and not any(
                        f.startswith(field_path + ".") for f in schema.fields
                    ):
                        problem(
                            (*where, "when"),
                            f"rule {rule.id!r}: condition reads {ref!r}, which is not in the schema of {schema.type}",
                            f"use one of: {', '.join(sorted(schema.fields))}",
                        )
                        ok = False
            if not _condition_fields_ok(rule, schemas, (*where, "when"), problem):
                ok = False
    if not ok:
        return None
    return CheckedRule(item, index, rule, condition, shares, regions)


def _condition_fields_ok(
    rule: Rule,
    schemas: list[SignalSchema],
    where: tuple[str | int, ...],
    problem: _Reporter,
) -> bool:
    """Report conditions that test identifiers or compare what can never match (per schema)."""
    assert rule.when is not None  # noqa: S101 - only called for a rule with a condition
    syntax = parse(rule.when)  # it compiled, so it parses
    found: dict[tuple[str, str, int], list[str]] = {}
    for schema in schemas:
        for finding in check_fields(syntax, rule.when, schema.fields):
            found.setdefault((finding.message, finding.hint, finding.column), []).append(
                schema.type
            )
    for (message, hint, column), types in found.items():
        problem(
            where,
            f"rule {rule.id!r}: {message} (at column {column}; {', '.join(types)})",
            hint,
        )
    return not found


def _share_mismatch(
    spec: ShareSpec, info: FieldInfo, plain_declared: bool
) -> tuple[str, str] | None:
    applies = spec.applies_to
    if applies == "any":
        if info.identifier is not None:
            return (
                f"`keep` would disclose a raw {info.identifier}; an identifier in the clear "
                "is its own declaration",
                "use pseudonymise or a generaliser; or, where the law allows disclosing it, "
                "write `plain` and declare `plain_identifiers: {legal_basis: ...}` on the rule",
            )
        return None
    if applies == "plain":
        if info.identifier is None:
            return (
                "`plain` is for identifier fields (it discloses them in the clear)",
                "use keep for a field that is not an identifier",
            )
        if not plain_declared:
            return (
                f"`plain` discloses a raw {info.identifier}, but the rule declares no legal "
                "basis for that",
                'add `plain_identifiers: {legal_basis: "<law and article>"}` to the rule, '
                "or use pseudonymise",
            )
        return None
    if applies == "identifier":
        if info.identifier is None:
            return (
                "only identifier fields can be pseudonymised",
                "use keep, drop the field, or a generaliser",
            )
        return None
    if applies == "location":
        if info.identifier not in ("address", "postcode"):
            return (
                "postcode4 applies to address or postcode fields",
                "use it on an address/postcode field",
            )
        return None
    if applies == "number":
        if info.json_type not in ("number", "integer"):
            return (f"{spec.text} applies to numbers", "use it on a numeric field")
        return None
    if info.format in TIME_FORMATS or (info.json_type == "object" and info.format is None):
        return None
    return (f"{spec.text} applies to date or date-time fields", "use it on a date/date-time field")


def _nested_identifier(
    spec: ShareSpec, info: FieldInfo, schema: SignalSchema
) -> tuple[str, str] | None:
    """An object shared whole would disclose the identifiers inside it as they are."""
    if info.json_type != "object" or spec.action == "pseudonymise":
        return None
    inside = [f.path for f in schema.identifier_fields if f.path.startswith(info.path + ".")]
    if not inside:
        return None
    return (
        f"{spec.text} on the object {info.path!r} would disclose the identifier(s) "
        f"{', '.join(inside)} inside it",
        "name the object's members one by one, each with its own share value",
    )


def _selector_hint(reference: ReferenceData) -> str:
    return (
        "known RIECs: "
        + ", ".join(sorted(reference.values_of("riec")))
        + "; safety regions: "
        + ", ".join(sorted(reference.values_of("safety_region")))
    )


def _check_versions(covenants: Iterable[LoadedCovenant], today: date, out: CheckResult) -> None:
    by_id: dict[str, list[LoadedCovenant]] = defaultdict(list)
    for item in covenants:
        by_id[item.covenant.covenant].append(item)
    for versions in by_id.values():
        seen: dict[str, LoadedCovenant] = {}
        for item in versions:
            if item.covenant.version in seen:
                out.problems.append(
                    Problem(
                        item.file,
                        item.line("version"),
                        f"{item.covenant.key} is defined twice (also in {seen[item.covenant.version].file})",
                        "give the new text a new version",
                    )
                )
            seen[item.covenant.version] = item
        for a, b in combinations(versions, 2):
            va, vb = a.covenant.valid, b.covenant.valid
            if (va.until is None or vb.from_ <= va.until) and (
                vb.until is None or va.from_ <= vb.until
            ):
                out.problems.append(
                    Problem(
                        b.file,
                        b.line("valid"),
                        f"{b.covenant.key} and {a.covenant.key} are both in force on some days",
                        "end the older version the day before the newer one starts",
                    )
                )
        newest = max(versions, key=lambda v: v.covenant.valid.from_)
        for item in versions:
            cov = item.covenant
            superseded = item is not newest
            if cov.valid.until is not None and cov.valid.until < today and not superseded:
                out.problems.append(
                    Problem(
                        item.file,
                        item.line("valid", "until"),
                        f"{cov.key} expired on {cov.valid.until}; it allows nothing",
                        "renew it with a new version, or remove it",
                        # a warning, like a revocation: ending a covenant only narrows what
                        # flows, so a running router must be able to load it (deny by default)
                        "warning",
                    )
                )
            if cov.revoked is not None and cov.revoked.day <= today and not superseded:
                out.problems.append(
                    Problem(
                        item.file,
                        item.line("revoked"),
                        f"{cov.key} was revoked on {cov.revoked.day}; it allows nothing",
                        "remove it, or keep it only as history next to a newer version",
                        "warning",
                    )
                )


def _check_overlaps(out: CheckResult) -> None:
    """Rules that can both decide one (source, type, recipient) must agree or be disjoint."""
    slots: dict[tuple[str, str, str], list[CheckedRule]] = defaultdict(list)
    for checked in out.rules:
        for source in checked.rule.from_:
            for signal_type in checked.rule.types:
                for recipient in checked.rule.to:
                    slots[(source, signal_type, recipient)].append(checked)
    reported: set[tuple[int, int]] = set()
    for (source, signal_type, recipient), rules in slots.items():
        for a, b in combinations(rules, 2):
            if not _overlapping_in_time(a, b):
                continue
            pair = (id(a), id(b))
            if pair in reported:
                continue
            agree = (a.shares, a.rule.envelope, a.rule.retention, a.rule.reidentify) == (
                b.shares,
                b.rule.envelope,
                b.rule.retention,
                b.rule.reidentify,
            )
            if agree:
                continue
            reported.add(pair)
            same_condition = a.rule.when == b.rule.when
            message = (
                f"rules {a.loaded.covenant.key}/{a.rule.id} and {b.loaded.covenant.key}/{b.rule.id} both decide "
                f"{signal_type} from {source} to {recipient} but share differently"
            )
            if same_condition:
                out.problems.append(
                    Problem(
                        b.loaded.file,
                        b.loaded.line("rules", b.index),
                        message,
                        "merge the rules, or give them disjoint `when` conditions",
                    )
                )
            else:
                out.problems.append(
                    Problem(
                        b.loaded.file,
                        b.loaded.line("rules", b.index),
                        message + " where both conditions hold (the first rule wins)",
                        "make the conditions disjoint",
                        severity="warning",
                    )
                )


def _check_condition_granularity(out: CheckResult, registry: SchemaRegistry) -> None:
    """A condition reads nothing finer than its rule, and every rule deciding the same source,
    type and recipient, gives that recipient (:mod:`.condition_granularity`)."""
    slots: dict[tuple[str, str, str], list[CheckedRule]] = defaultdict(list)
    for checked in out.rules:
        for source in checked.rule.from_:
            for signal_type in checked.rule.types:
                for recipient in checked.rule.to:
                    slots[(source, signal_type, recipient)].append(checked)
    for checked in out.rules:
        rule = checked.rule
        if rule.when is None or not (rule.to or rule.return_to):
            continue
        # (the rule whose disclosure bounds the condition, the signal type) pairs to check
        against: dict[tuple[int, str], CheckedRule] = {
            (id(checked), t): checked for t in rule.types if t in registry
        }
        for source in rule.from_:
            for signal_type in rule.types:
                for recipient in rule.to:
                    for mate in slots[(source, signal_type, recipient)]:
                        if mate is not checked and _overlapping_in_time(checked, mate):
                            against[(id(mate), signal_type)] = mate
        syntax = parse(rule.when)
        found: dict[tuple[str, str, int], list[str]] = {}
        for (_, signal_type), mate in against.items():
            given = Disclosure(mate.shares, resolve(mate.rule.envelope, mate.shares), mate.rule.id)
            fields = registry.get(signal_type).fields
            for finding in check_granularity(syntax, rule.when, fields, given):
                message = finding.message
                if mate is not checked:
                    message += (
                        f" (rule {mate.loaded.covenant.key}/{mate.rule.id} decides the same "
                        "source, type and recipient, so its messages tell whether this "
                        "condition held)"
                    )
                found.setdefault((message, finding.hint, finding.column), []).append(signal_type)
        for (message, hint, column), types in found.items():
            out.problems.append(
                Problem(
                    checked.loaded.file,
                    checked.loaded.line("rules", checked.index, "when"),
                    f"rule {rule.id!r}: {message} (at column {column}; {', '.join(sorted(set(types)))})",
                    hint,
                )
            )


def _overlapping_in_time(a: CheckedRule, b: CheckedRule) -> bool:
    va, vb = a.loaded.covenant.valid, b.loaded.covenant.valid
    return (va.until is None or vb.from_ <= va.until) and (vb.until is None or va.from_ <= vb.until)
