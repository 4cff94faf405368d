"""The signal schemas: loaded and compiled once, then used to validate every signal's ``data``.

Each ``schemas/signals/<type>.json`` is a JSON Schema (draft-07) plus ``x-`` annotations that the
rest of the hub relies on: who may send the type, which barrier-model steps it informs, which
fields locate the thing, which field measures signal strength, and per property whether it is
an identifier (``x-identifier``, normalised by :mod:`services.core.identifiers`) or personal
data (``x-personal``). The loader checks those annotations strictly, so a schema mistake stops
the hub at start-up with the file named instead of mis-routing personal data later.

Validation messages are built here from the schema, never from fastjsonschema's own message,
because that message can quote the offending value, and values are personal data.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import isfinite as _isfinite
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, cast

import fastjsonschema

from services.core.errors import IdentifierError, SchakelError, SignalRejected
from services.core.identifiers import IDENTIFIER_KINDS, normaliser

__all__ = [
    "APPROVAL_FIELDS",
    "BARRIER_STEPS",
    "LOCATION_IDENTIFIER_KINDS",
    "OUTCOME_CLASSES",
    "PARTNER_KINDS",
    "FieldInfo",
    "SchemaDefinitionError",
    "SchemaRegistry",
    "SignalSchema",
    "default_schema_dir",
]

PARTNER_KINDS: tuple[str, ...] = (
    "energy", "water", "housing", "rural", "chemicals", "waste", "residents",
    "municipality", "police", "hub", "prosecution", "social", "environment", "riec",
)  # fmt: skip
"""Kinds of party that may send signals (``x-partner-kinds``)."""

OUTCOME_CLASSES: tuple[str, ...] = ("finding", "no_finding", "measure")
"""What an outcome type (``x-outcome``) reports: a positive finding at a location, a check
that found nothing, or a measure taken after a finding (docs/outcomes.md)."""
APPROVAL_FIELDS: tuple[str, ...] = ("outcome_source", "outcome_signal_id", "decision")
"""Properties an approval type (``x-approval: true``) must have: which outcome, and the
decision (``approved`` or ``refused``)."""

BARRIER_STEPS: tuple[str, ...] = (
    "cannabis.organise_finance",
    "cannabis.acquire_location",
    "cannabis.fit_out",
    "cannabis.cultivate",
    "cannabis.harvest",
    "cannabis.sell_transport",
    "cannabis.launder",
    "synthetic.acquire_raw_materials",
    "synthetic.acquire_location",
    "synthetic.fit_out",
    "synthetic.produce",
    "synthetic.store",
    "synthetic.dispose_waste",
    "synthetic.transport_distribute",
    "synthetic.launder",
)
"""Business-process steps of the barrier model, in process order (``x-barrier-steps``)."""

LOCATION_IDENTIFIER_KINDS: frozenset[str] = frozenset({"address", "bag", "ean", "postcode"})
"""Identifier kinds that locate a thing and so may appear in ``x-location-fields``."""

SCHEMA_URI_PREFIX = "urn:schakel:signal:"

_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array"})
_TYPE_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*")
_PROPERTY_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
# fastjsonschema names the failing node ``data``, ``data.period.start``, ``data.list[2]``.
_NODE_NAME_RE = re.compile(r"data((?:\.[a-z][a-z0-9_]*|\[[0-9]+\])*)")
_RULE_NAME_RE = re.compile(r"[A-Za-z]+")
_MUNICIPALITY_PATTERN = "^GM[0-9]{4}$"
_FORMAT_TEXT = {
    "date": "a date (YYYY-MM-DD)",
    "date-time": "an RFC 3339 date-time with time zone",
    "time": "a time",
}


class SchemaDefinitionError(SchakelError):
    """A schema file is unreadable or breaks the rules for signal schemas; names the file."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One property of a signal's ``data``, nested properties included (dotted ``path``)."""

    path: str
    json_type: str
    format: str | None
    identifier: str | None
    personal: bool
    enum: tuple[Any, ...] | None = None
    """The allowed values (``enum``) of a scalar field, or None."""
    pattern: str | None = None
    """The ``pattern`` a string field matches, or None."""
    item_type: str | None = None
    """For an array: the JSON type of its items (None for other fields)."""
    item_enum: tuple[Any, ...] | None = None
    """For an array: the allowed values of its items, or None."""

    @property
    def sensitive(self) -> bool:
        """An identifier or personal data: what a covenant condition may not test."""
        return self.identifier is not None or self.personal


class _IdentifierStep(NamedTuple):
    """How to canonicalise one identifier field: precomputed so validate() only looks up."""

    path: str
    kind: str
    normalise: Callable[[object], str]
    parents: tuple[str, ...]  # enclosing object properties, outermost first
    leaf: str


@dataclass(frozen=True, slots=True, eq=False)
class SignalSchema:
    """A compiled signal schema with its annotations (compared and hashed by identity).

    Build it through :meth:`SchemaRegistry.load`. Internal: ``_check`` (the compiled
    validator), ``_numbers`` (paths of number fields), ``_unique`` (paths of arrays of scalars
    whose ``uniqueItems`` is checked here), ``_one_of_sets`` (a top-level ``anyOf`` of
    ``required`` sets, checked here) and ``_steps`` (one per identifier field). The two rules
    are taken out of the compiled schema because fastjsonschema checks them slowly (a generic
    recursive hash; an exception carrying the whole schema per failed ``anyOf`` branch).
    """

    type: str
    uri: str
    title: str
    partner_kinds: tuple[str, ...]
    barrier_steps: tuple[str, ...]
    location_fields: tuple[str, ...]
    strength_field: str | None
    fields: Mapping[str, FieldInfo]
    identifier_fields: tuple[FieldInfo, ...]
    _check: Callable[[Any], Any] = field(repr=False)
    _numbers: tuple[tuple[str, ...], ...] = field(repr=False)
    _unique: tuple[tuple[str, ...], ...] = field(repr=False)
    _one_of_sets: tuple[tuple[str, ...], ...] = field(repr=False)
    _steps: tuple[_IdentifierStep, ...] = field(repr=False)
    identifier_kinds: Mapping[str, str] = field(repr=False)
    """Identifier kind by dotted path, for every identifier field."""
    outcome: str | None = None
    """``x-outcome``: one of :data:`OUTCOME_CLASSES` for an outcome type, else None."""
    approval: bool = False
    """``x-approval``: a per-case approval of an outcome's return (prosecution)."""
    handover: bool = False
    """``x-handover``: a RIEC hands a case over to a partner's own process (docs/riec.md) —
    neither a report, an indicator nor an outcome, so coverage and the indicators skip it."""

    def validate(self, data: object, *, signal_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Validate ``data`` and normalise its identifiers.

        Returns a copy of ``data`` with every identifier field replaced by its canonical form,
        and ``{path: canonical}`` for the identifier fields present. The input is not changed;
        the copy is new at the top level and along the path of each identifier, other nested
        values are shared with the input (treat both as read-only).

        Raises :class:`SignalRejected` with code ``schema_violation`` or ``invalid_identifier``;
        the message names the field path and the rule broken, never the value. Both are raised
        outside the ``except`` block, so they carry no chained exception that holds the value.
        """
        failure: str | None = None
        try:
            self._check(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            failure = _describe_violation(exc)
        else:
            failure = _extra_checks(cast(dict[str, Any], data), self)
        if failure is not None:
            raise SignalRejected("schema_violation", failure, signal_id=signal_id)

        result = dict(cast(dict[str, Any], data))  # the schema guarantees an object
        canonical: dict[str, str] = {}
        for path, kind, normalise, parents, leaf in self._steps:
            node = _copy_parents(result, parents) if parents else result
            if node is None or leaf not in node:
                continue
            try:
                node[leaf] = canonical[path] = normalise(node[leaf])
            except IdentifierError as exc:
                failure = f"{path}: invalid {kind}: {exc.reason}"
                break
        if failure is not None:
            raise SignalRejected("invalid_identifier", failure, signal_id=signal_id)
        return result, canonical


def _extra_checks(data: dict[str, Any], schema: SignalSchema) -> str | None:
    """Rules checked after the compiled schema, as a message for the first one broken, or None.

    Numbers must be finite: JSON has no NaN or infinity, but Python's parsers accept them and
    schema bounds do not catch NaN. Arrays of scalars marked ``uniqueItems`` must not repeat an
    item (the schema already guaranteed the items are hashable scalars). A top-level ``anyOf``
    of ``required`` sets needs one set fully present.
    """
    for parts in schema._numbers:
        value = _lookup(data, parts)
        if value.__class__ is float and not _isfinite(value):
            return f"{'.'.join(parts)} must be a finite number"
    for parts in schema._unique:
        items = _lookup(data, parts)
        if items is not None and len(set(items)) != len(items):
            return f"{'.'.join(parts)} must not contain duplicate items"
    sets = schema._one_of_sets
    if sets and not any(all(name in data for name in names) for names in sets):
        return "data must have at least one of: " + ", ".join("+".join(n) for n in sets)
    return None


def _lookup(data: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """The value at a property path of validated data, or None where a property is absent."""
    if len(parts) == 1:
        return data.get(parts[0])
    value: Any = data
    for part in parts:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _copy_parents(root: dict[str, Any], parents: tuple[str, ...]) -> dict[str, Any] | None:
    """Replace each object along ``parents`` by a copy (so the input stays untouched) and
    return the innermost copy, or None if an optional parent object is absent."""
    node = root
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            return None
        node[name] = node = dict(child)
    return node


def _describe_violation(exc: Any) -> str:
    """Turn a fastjsonschema error into ``<path> <rule broken>`` using only schema text.

    ``exc.value`` is only inspected (to find which required properties are missing; their
    names come from the schema), never printed.
    """
    match = _NODE_NAME_RE.fullmatch(str(exc.name))
    relative = match[1].lstrip(".") if match else ""
    rule = exc.rule if isinstance(exc.rule, str) else ""
    definition: dict[str, Any] = exc.definition if isinstance(exc.definition, dict) else {}
    if rule == "required" and isinstance(exc.value, dict):
        missing = [name for name in definition.get("required", ()) if name not in exc.value]
        names = ", ".join(f"{relative}.{m}" if relative else m for m in missing)
        return f"{names} {'is' if len(missing) == 1 else 'are'} required"
    return f"{relative or 'data'} {_rule_text(rule, definition)}"


def _rule_text(rule: str, definition: Mapping[str, Any]) -> str:
    """What the value at a node must do to satisfy ``rule`` of the node's ``definition``."""
    limit = definition.get(rule)
    options = definition.get("anyOf") or ()
    if options and all(isinstance(o, dict) and set(o) == {"required"} for o in options):
        alternatives = "must have at least one of: " + ", ".join(
            "+".join(o["required"]) for o in options
        )
    else:
        alternatives = "matches none of the allowed alternatives"
    fmt = str(definition.get("format"))
    texts = {
        "type": f"must be of type {definition.get('type')}",
        "required": "lacks a required property",
        "additionalProperties": "has properties the schema does not define (allowed: "
        + ", ".join(definition.get("properties", {}))
        + ")",
        "anyOf": alternatives,
        "enum": "must be one of: " + ", ".join(str(v) for v in definition.get("enum", ())),
        "format": "must be " + _FORMAT_TEXT.get(fmt, "a valid " + fmt),
        "pattern": f"must match the pattern {limit}",
        "minimum": f"must be at least {limit}",
        "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be greater than {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "minLength": f"must be at least {limit} characters long",
        "maxLength": f"must be at most {limit} characters long",
        "minItems": f"must have at least {limit} items",
        "maxItems": f"must have at most {limit} items",
        "uniqueItems": "must not contain duplicate items",
    }
    text = texts.get(rule)
    if text is None:
        text = f"breaks schema rule {rule if _RULE_NAME_RE.fullmatch(rule) else 'unknown'}"
    return text


def default_schema_dir() -> Path:
    """The repository's ``schemas/signals`` folder (relative to this package)."""
    return Path(__file__).resolve().parent.parent.parent / "schemas" / "signals"


class SchemaRegistry:
    """All signal schemas by type; loaded once, read-only afterwards."""

    __slots__ = ("_schemas",)

    def __init__(self, schemas: Mapping[str, SignalSchema]) -> None:
        self._schemas: Mapping[str, SignalSchema] = MappingProxyType(dict(schemas))

    @classmethod
    def load(cls, directory: Path) -> SchemaRegistry:
        """Read and compile every ``*.json`` in ``directory``.

        Raises :class:`SchemaDefinitionError` naming the file on the first broken schema, and
        if the directory is missing or holds no schema.
        """
        if not directory.is_dir():
            raise SchemaDefinitionError(directory, "schema directory does not exist")
        files = sorted(directory.glob("*.json"))
        if not files:
            raise SchemaDefinitionError(directory, "no *.json signal schemas found")
        return cls({schema.type: schema for schema in map(_load_file, files)})

    def get(self, signal_type: str, *, signal_id: str | None = None) -> SignalSchema:
        """The schema of ``signal_type``; ``SignalRejected("unknown_type")`` if there is none."""
        schema = self._schemas.get(signal_type) if isinstance(signal_type, str) else None
        if schema is not None:
            return schema
        if isinstance(signal_type, str) and _TYPE_NAME_RE.fullmatch(signal_type):
            message = f"no schema for signal type {signal_type}"
        else:
            message = "signal type is not a valid type name (<partner>.<name>.v<N>)"
        raise SignalRejected("unknown_type", message, signal_id=signal_id)

    def types(self) -> tuple[str, ...]:
        """All known signal types, sorted."""
        return tuple(sorted(self._schemas))

    def __contains__(self, signal_type: object) -> bool:
        return isinstance(signal_type, str) and signal_type in self._schemas

    def __len__(self) -> int:
        return len(self._schemas)


# --- loading -------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _load_file(file: Path) -> SignalSchema:
    try:
        document = json.loads(
            file.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaDefinitionError(file, f"cannot read schema: {exc}") from exc
    try:
        return _build(file.name.removesuffix(".json"), document)
    except _Problem as problem:
        raise SchemaDefinitionError(file, str(problem)) from None
    except (TypeError, KeyError, AttributeError) as exc:  # a value of an unexpected JSON type
        raise SchemaDefinitionError(file, f"malformed schema: {exc!r}") from exc


class _Problem(Exception):  # noqa: N818 - internal carrier, turned into SchemaDefinitionError
    """A rule broken by a schema document; the loader adds the file name."""


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise _Problem(problem)


def _string_list(document: Mapping[str, Any], key: str, allowed: Any) -> tuple[str, ...]:
    values = document.get(key)
    if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
        raise _Problem(f"{key} must be a list of strings")
    unknown = [v for v in values if v not in allowed]
    _require(not unknown, f"{key} has unknown entries {unknown}")
    _require(len(set(values)) == len(values), f"{key} lists an entry twice")
    return tuple(values)


def _no_refs(node: Any) -> None:
    """Schemas must be self-contained: a ``$ref`` could make the compiler fetch a URL."""
    if isinstance(node, dict):
        _require("$ref" not in node, "$ref is not supported; inline the definition")
        for child in node.values():
            _no_refs(child)
    elif isinstance(node, list):
        for child in node:
            _no_refs(child)


def _collect_fields(properties: Any, prefix: str, out: dict[str, FieldInfo]) -> None:
    """Record every property (recursing into objects) and check its annotations."""
    _require(isinstance(properties, dict), f"{prefix or 'top level'}: properties must be an object")
    for name, prop in properties.items():
        path = f"{prefix}{name}"
        _require(
            bool(_PROPERTY_NAME_RE.fullmatch(name)), f"{path}: property names must be snake_case"
        )
        _require(
            bool(prefix) or name != "envelope",
            "envelope: the name is reserved (audit records name envelope metadata "
            "envelope.<name>); rename the property",
        )
        _require(isinstance(prop, dict), f"{path}: property schema must be an object")
        json_type = prop.get("type")
        _require(
            isinstance(json_type, str) and json_type in _JSON_TYPES,
            f"{path}: type must be one of {sorted(_JSON_TYPES)}",
        )
        fmt = prop.get("format")
        _require(fmt is None or isinstance(fmt, str), f"{path}: format must be a string")
        identifier = prop.get("x-identifier")
        personal = prop.get("x-personal", False)
        _require(isinstance(personal, bool), f"{path}: x-personal must be true or false")
        if identifier is not None:
            _require(
                isinstance(identifier, str) and identifier in IDENTIFIER_KINDS,
                f"{path}: x-identifier must be one of {sorted(IDENTIFIER_KINDS)}",
            )
            _require(json_type == "string", f"{path}: an x-identifier field must be a string")
            _require(personal, f"{path}: an x-identifier field must be marked x-personal: true")
        items = prop.get("items") if json_type == "array" else None
        items = items if isinstance(items, dict) else {}
        out[path] = FieldInfo(
            path,
            json_type,
            fmt,
            identifier,
            personal,
            enum=_enum(prop),
            pattern=prop.get("pattern") if isinstance(prop.get("pattern"), str) else None,
            item_type=items.get("type") if isinstance(items.get("type"), str) else None,
            item_enum=_enum(items),
        )
        if json_type == "object":
            _check_object(prop, f"{path}.")
            _collect_fields(prop["properties"], f"{path}.", out)


def _enum(node: Mapping[str, Any]) -> tuple[Any, ...] | None:
    values = node.get("enum")
    return tuple(values) if isinstance(values, list) else None


def _check_object(node: Mapping[str, Any], prefix: str) -> None:
    where = prefix.rstrip(".") or "top level"
    _require(
        node.get("additionalProperties") is False, f"{where}: additionalProperties must be false"
    )
    _require("patternProperties" not in node, f"{where}: patternProperties is not supported")
    properties = node.get("properties")
    if not (isinstance(properties, dict) and properties):
        raise _Problem(f"{where}: properties missing")
    required = node.get("required", [])
    _require(
        isinstance(required, list) and all(r in properties for r in required),
        f"{where}: required must list defined properties",
    )


def _build(signal_type: str, document: Any) -> SignalSchema:
    _require(isinstance(document, dict), "schema must be a JSON object")
    _require(
        bool(_TYPE_NAME_RE.fullmatch(signal_type)),
        "file name must be <type>.json, e.g. energy.meter_tampering.v1.json",
    )
    uri = SCHEMA_URI_PREFIX + signal_type
    _require(document.get("$id") == uri, f"$id must be {uri}")
    _require(document.get("x-signal-type") == signal_type, f"x-signal-type must be {signal_type}")
    title = document.get("title")
    _require(isinstance(title, str) and bool(title.strip()), "title must be a non-empty string")
    description = document.get("description")
    _require(isinstance(description, str) and bool(description.strip()), "description missing")
    _require(document.get("type") == "object", 'type must be "object"')
    _check_object(document, "")
    _no_refs(document)

    fields: dict[str, FieldInfo] = {}
    _collect_fields(document["properties"], "", fields)
    municipality = document["properties"].get("municipality")
    _require(
        isinstance(municipality, dict) and municipality.get("pattern") == _MUNICIPALITY_PATTERN,
        f"a municipality property with pattern {_MUNICIPALITY_PATTERN} is required",
    )

    partner_kinds = _string_list(document, "x-partner-kinds", PARTNER_KINDS)
    _require(bool(partner_kinds), "x-partner-kinds must name at least one partner kind")
    barrier_steps = _string_list(document, "x-barrier-steps", BARRIER_STEPS)
    location_fields = _string_list(document, "x-location-fields", fields)
    for name in location_fields:
        _require(
            fields[name].identifier in LOCATION_IDENTIFIER_KINDS,
            f"x-location-fields: {name} must be an address, bag, ean or postcode identifier",
        )
    strength_field = document.get("x-strength-field")
    if strength_field is not None:
        prop = _property(document, strength_field)
        _require(
            prop is not None
            and prop.get("type") == "number"
            and prop.get("minimum") == 0
            and prop.get("maximum") == 1,
            "x-strength-field must name a number property with minimum 0 and maximum 1",
        )

    outcome, approval = _outcome_annotations(document, fields, location_fields)
    compiled, unique = _without_scalar_unique_items(document, fields)
    one_of_sets: tuple[tuple[str, ...], ...] = ()
    options = compiled.get("anyOf")
    if isinstance(options, list) and options and all(_is_required_only(o) for o in options):
        one_of_sets = tuple(tuple(o["required"]) for o in options)
        _require(
            all(name in fields for names in one_of_sets for name in names),
            "anyOf: required must list defined properties",
        )
        del compiled["anyOf"]
    try:
        check = fastjsonschema.compile(compiled, use_default=False)
    except (fastjsonschema.JsonSchemaDefinitionException, re.error, ValueError, TypeError) as exc:
        raise _Problem(f"schema does not compile: {exc}") from exc

    identifier_fields = tuple(f for f in fields.values() if f.identifier is not None)
    steps = []
    for info in identifier_fields:
        *parents, leaf = info.path.split(".")
        kind = cast(str, info.identifier)
        steps.append(_IdentifierStep(info.path, kind, normaliser(kind), tuple(parents), leaf))
    return SignalSchema(
        type=signal_type,
        uri=uri,
        title=title,
        partner_kinds=partner_kinds,
        barrier_steps=barrier_steps,
        location_fields=location_fields,
        strength_field=strength_field,
        fields=MappingProxyType(fields),
        identifier_fields=identifier_fields,
        _check=check,
        _numbers=tuple(
            tuple(f.path.split("."))
            for f in fields.values()
            if f.json_type == "number"  # integer rejects NaN and infinity already
        ),
        _unique=unique,
        _one_of_sets=one_of_sets,
        _steps=tuple(steps),
        identifier_kinds=MappingProxyType({step.path: step.kind for step in steps}),
        outcome=outcome,
        approval=approval,
        handover=_handover(document, outcome, approval),
    )


def _handover(document: Mapping[str, Any], outcome: str | None, approval: bool) -> bool:
    handover = document.get("x-handover", False)
    _require(isinstance(handover, bool), "x-handover must be true or false")
    _require(
        not (handover and (outcome or approval)),
        "a hand-over type is neither an outcome nor an approval",
    )
    return bool(handover)


def _outcome_annotations(
    document: Mapping[str, Any], fields: Mapping[str, FieldInfo], location_fields: tuple[str, ...]
) -> tuple[str | None, bool]:
    """``x-outcome`` and ``x-approval``, checked: an outcome names a premises it can be matched
    by; an approval names the outcome it decides and says approved or refused."""
    outcome = document.get("x-outcome")
    approval = document.get("x-approval", False)
    _require(
        outcome is None or outcome in OUTCOME_CLASSES,
        f"x-outcome must be one of {list(OUTCOME_CLASSES)}",
    )
    _require(isinstance(approval, bool), "x-approval must be true or false")
    _require(not (outcome and approval), "a type is either an outcome or an approval, not both")
    if outcome is not None:
        premises = [f for f in location_fields if fields[f].identifier in ("address", "bag", "ean")]
        _require(
            bool(premises),
            "x-outcome: an outcome must list an address, bag or ean field in x-location-fields "
            "(outcomes are matched to earlier signals by location)",
        )
    if approval:
        missing = [f for f in APPROVAL_FIELDS if f not in fields]
        _require(not missing, f"x-approval: the type needs the properties {missing}")
        decision = fields["decision"].enum or ()
        _require(
            set(decision) == {"approved", "refused"},
            "x-approval: decision must be an enum of approved and refused",
        )
    return (outcome if isinstance(outcome, str) else None), approval


def _is_required_only(option: object) -> bool:
    """Whether an ``anyOf`` branch only lists required top-level properties."""
    if not (isinstance(option, dict) and set(option) == {"required"}):
        return False
    names = option["required"]
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)


_SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})


def _without_scalar_unique_items(
    document: dict[str, Any], fields: Mapping[str, FieldInfo]
) -> tuple[dict[str, Any], tuple[tuple[str, ...], ...]]:
    """A copy of ``document`` without ``uniqueItems`` on arrays of scalars, and their paths.

    fastjsonschema checks ``uniqueItems`` with a generic recursive hash that costs microseconds
    per array; for scalar items a ``set`` does the same job (see :func:`_extra_checks`).
    """
    compiled = copy.deepcopy(document)
    unique: list[tuple[str, ...]] = []
    for info in fields.values():
        if info.json_type != "array":
            continue
        parts = tuple(info.path.split("."))
        node: dict[str, Any] = compiled
        for part in parts:
            node = node["properties"][part]
        items = node.get("items")
        if (
            node.get("uniqueItems") is True
            and isinstance(items, dict)
            and items.get("type") in _SCALAR_TYPES
        ):
            del node["uniqueItems"]
            unique.append(parts)
    return compiled, tuple(unique)


def _property(document: Mapping[str, Any], path: object) -> Mapping[str, Any] | None:
    """The property schema at dotted ``path``, or None."""
    if not isinstance(path, str):
        return None
    node: Mapping[str, Any] = document
    for part in path.split("."):
        child = node.get("properties", {}).get(part)
        if not isinstance(child, dict):
            return None
        node = child
    return node
