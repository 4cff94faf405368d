"""``schakel covenant check`` for partner signing keys and the ``signatures`` setting.

Per party: every key is a base64 Ed25519 public key, its window does not end before it
starts, ids and keys are not repeated, and successive windows leave no gap (rotation needs an
overlap). Per supplier: a covenant that requires signatures registers a key for it, and one
of its keys is valid today. Across files: a key id of a partner always names the same key, a
key id belongs to one partner only (so a signature is checked against one key at most), and a
key belongs to one partner only. Everywhere: a TEST key (derived from the public demo seed,
recognised from the key itself) is an error outside demo mode, and in demo mode a warning
when a covenant file registers it instead of the demo key file (covenants/demo/).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from services.core.covenant.keyring import decode_public_key
from services.core.covenant.loader import LoadedCovenant
from services.core.covenant.model import Party, PartyKey
from services.core.covenant.problems import Problem, Severity
from services.core.demo_keys import derivation_names, owner_of_test_key


def check_keys(
    covenants: Iterable[LoadedCovenant], today: date, *, demo: bool = False
) -> list[Problem]:
    """Every problem with the keys and signature settings of a covenant set."""
    covenants = list(covenants)
    problems: list[Problem] = []
    material: dict[tuple[str, str], str] = {}  # (partner, key id) -> key
    owners: dict[str, str] = {}  # key -> partner
    names = derivation_names(item.covenant for item in covenants)
    ids: dict[str, tuple[str, str]] = {}  # key id -> (partner, where it is first registered)
    for item in covenants:
        for party_id, party in item.covenant.parties.items():
            problems += _party(item, party_id, party, today)
            for k, key in enumerate(party.public_keys):
                where = (item, ("parties", party_id, "public_keys", k))
                problems += _test_key(item, party_id, key, k, names, demo)
                first = ids.setdefault(key.id, (party_id, f"{item.file}:{item.line(*where[1])}"))
                if first[0] != party_id:
                    problems.append(
                        _at(
                            *where,
                            f"key id {key.id!r} of {party_id!r} is already the id of a key of "
                            f"{first[0]!r} ({first[1]}): a signature names its key by id, so "
                            "an id must name one partner's key",
                            f"give the key an id of its own, e.g. {party_id}-<date> "
                            f"(schakel keys partner {party_id})",
                        )
                    )
                known = material.setdefault((party_id, key.id), key.ed25519)
                if known != key.ed25519:
                    problems.append(
                        _at(
                            *where,
                            f"key {key.id!r} of {party_id!r} differs from the key of that id in "
                            "another covenant file",
                            "a key id names one key for good: give a new key a new id",
                        )
                    )
                owner = owners.setdefault(key.ed25519, party_id)
                if owner != party_id:
                    problems.append(
                        _at(
                            *where,
                            f"key {key.id!r} of {party_id!r} is also registered for {owner!r}",
                            "each partner signs with its own key pair (schakel keys partner)",
                        )
                    )
    return problems


def _test_key(
    item: LoadedCovenant,
    party_id: str,
    key: PartyKey,
    index: int,
    names: list[str],
    demo: bool,
) -> list[Problem]:
    """A TEST key registration: an error outside demo mode, a warning in a covenant file."""
    owner = owner_of_test_key(key.ed25519, [party_id, *names])
    if owner is None or (demo and (party_id, key.id) in item.demo_keys):
        return []
    whose = "its TEST key" if owner == party_id else f"the TEST key derived for {owner!r}"
    message = (
        f"key {key.id!r} of {party_id!r} is {whose}, derived from the public demo "
        "seed: anyone can sign with it"
    )
    where = ("parties", party_id, "public_keys", index, "ed25519")
    if not demo:
        return [
            _at(
                item,
                where,
                message + "; a hub not in demo mode refuses it",
                f"register {party_id!r}'s own key (schakel keys partner {party_id}, then "
                "schakel covenant add-key); demo keys belong in covenants/demo/keys.yaml",
            )
        ]
    return [
        _at(
            item,
            where,
            message + "; registered in a covenant file, so a deployment would load it",
            "move it to covenants/demo/keys.yaml, which only demo mode reads",
            "warning",
        )
    ]


def _party(item: LoadedCovenant, party_id: str, party: Party, today: date) -> list[Problem]:
    cov = item.covenant
    path = ("parties", party_id, "public_keys")
    problems: list[Problem] = []
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for k, key in enumerate(party.public_keys):
        where = (item, (*path, k))
        if decode_public_key(key.ed25519) is None:
            problems.append(
                _at(
                    item,
                    (*path, k, "ed25519"),
                    f"public key {key.id!r} of {party_id!r} is not a base64 Ed25519 public key "
                    "(32 bytes)",
                    f"generate one with `schakel keys partner {party_id}`",
                )
            )
        if key.valid_from and key.valid_until and key.valid_until < key.valid_from:
            problems.append(
                _at(
                    item,
                    (*path, k, "valid_until"),
                    f"key {key.id!r} of {party_id!r}: valid_until lies before valid_from",
                    "make valid_until later than valid_from",
                )
            )
        if key.id in seen_ids:
            problems.append(
                _at(*where, f"key id {key.id!r} appears twice for {party_id!r}", "rename one")
            )
        if key.ed25519 in seen_keys:
            problems.append(
                _at(
                    *where,
                    f"key {key.id!r} of {party_id!r} repeats a key listed above",
                    "list each key once",
                )
            )
        seen_ids.add(key.id)
        seen_keys.add(key.ed25519)
    gap = _gap(party.public_keys)
    if gap is not None:
        problems.append(
            _at(
                item,
                path,
                f"no key of {party_id!r} is valid from {gap[0]} to {gap[1]}: its signals are "
                "rejected then",
                "let each new key's valid_from lie on or before the old key's valid_until",
                "warning",
            )
        )
    if "supplier" not in party.roles:
        return problems
    if not party.public_keys:
        if cov.signatures == "optional":
            return problems
        problems.append(
            _at(
                item,
                ("parties", party_id),
                f"supplier {party_id!r} has no public key, but this covenant requires "
                "signatures: its signals will be rejected as unsigned",
                f"run `schakel keys partner {party_id}` and register the key with the "
                "`schakel covenant add-key` command it prints, or set `signatures: optional` "
                "(the demo's TEST keys are in covenants/demo/, read only in demo mode)",
                "warning",
            )
        )
    elif cov.in_force(today) and not any(k.valid_on(today) for k in party.public_keys):
        problems.append(
            _at(
                item,
                path,
                f"no key of supplier {party_id!r} is valid today: its signals are rejected",
                f"register a current key (schakel keys partner {party_id})",
                "warning",
            )
        )
    return problems


def _gap(keys: list[PartyKey]) -> tuple[date, date] | None:
    """The first stretch of days between key windows that no key covers, if any."""
    if len(keys) < 2:
        return None
    ordered = sorted(keys, key=lambda k: k.valid_from or date.min)
    covered_until = ordered[0].valid_until
    for key in ordered[1:]:
        if covered_until is None:
            return None
        start = key.valid_from or date.min
        if start > covered_until + timedelta(days=1):
            return covered_until + timedelta(days=1), start - timedelta(days=1)
        if key.valid_until is None or key.valid_until > covered_until:
            covered_until = key.valid_until
    return None


def _at(
    item: LoadedCovenant,
    path: tuple[str | int, ...],
    message: str,
    hint: str,
    severity: Severity = "error",
) -> Problem:
    return Problem(item.file, item.line(*path), message, hint, severity=severity)
