"""``schakel audit``: verify the tamper-evident audit log, and export it for auditors.

``verify`` checks the hash chain and the signed checkpoints, of the database or of an export
bundle, and exits 0 when the log is intact, 1 when something was found (the first bad
position is printed), 2 when it could not verify at all (no database, unreadable bundle).
Output names sequence numbers, record ids and key ids, never record contents or key material.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import orjson
import typer

from services.audit.errors import AuditStoreError
from services.core.errors import SchakelError

if TYPE_CHECKING:
    from services.audit.checkpoint import Checkpoint
    from services.audit.store import SqlAuditStore

app = typer.Typer(
    help=("Verify and export the tamper-evident audit log (hash chain with signed checkpoints)."),
    no_args_is_help=True,
)

EXIT_FINDING = 1
"""Exit code: the log is not intact."""

EXIT_ERROR = 2
"""Exit code: the log could not be verified or exported."""

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Audit database URL (default: $SCHAKEL_DATABASE_URL, else sqlite:///var/audit.db).",
        show_default=False,
    ),
]
WitnessOption = Annotated[
    Path | None,
    typer.Option(
        "--witness",
        help="Checkpoint witness file kept outside the database (default: "
        "$SCHAKEL_AUDIT_WITNESS, if set).",
        dir_okay=False,
        show_default=False,
    ),
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="The hub's key store (default: $SCHAKEL_KEYS, else ./var/keys.json); verify and "
        "export use only the public signing keys it lists.",
        dir_okay=False,
        show_default=False,
    ),
]


def _fail(error: SchakelError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=EXIT_ERROR)


def _witness_path(path: Path | None) -> Path | None:
    from services.audit.witness import WITNESS_ENV

    configured = os.environ.get(WITNESS_ENV, "").strip()
    if path or configured:
        return path or Path(configured)
    from services.audit.hub_store import witness_path
    from services.config import Paths

    default = witness_path(Paths.from_env().state)  # where `schakel up` writes it
    return default if default.exists() else None


def _witnessed(path: Path | None) -> list[Checkpoint]:
    from services.audit.witness import FileWitness

    witness = _witness_path(path)
    if witness is None:
        return []
    if not witness.exists():
        raise AuditStoreError(
            f"the witness file {witness} does not exist. Fix: pass the file the hub writes its "
            "checkpoints to, or leave --witness out."
        )
    return list(FileWitness(witness).checkpoints())


def _store_keys(path: Path | None) -> dict[str, bytes]:
    """Public halves of the key store's current and retired signing keys."""
    from services.audit.verification import public_keys
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore

    return public_keys(FileKeyStore.open(path or default_keys_path()))


def _pinned(paths: Iterable[Path]) -> dict[bytes, str]:
    """Raw public key -> key id derived from it, for PEM files given with --public-key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from services.core.keys import signing_key_id

    pinned: dict[bytes, str] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditStoreError(
                f"{path} is not a readable Ed25519 public key in PEM. Fix: save the output of "
                "`schakel keys public-key` to a file and pass that."
            )
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pinned[raw] = signing_key_id(raw)
    return pinned


def _trusted(offered: Mapping[str, bytes], pinned: Mapping[bytes, str]) -> dict[str, bytes]:
    """Without pins, the offered keys; with pins, the offered keys equal to a pinned key plus
    each pinned key under its derived id."""
    if not pinned:
        return dict(offered)
    trusted = {key_id: raw for key_id, raw in offered.items() if raw in pinned}
    trusted.update({key_id: raw for raw, key_id in pinned.items()})
    return trusted


@contextmanager
def _database(url: str | None) -> Iterator[SqlAuditStore]:
    from services.audit.store import SqlAuditStore
    from services.database.engine import make_engine

    store = SqlAuditStore(make_engine(url, existing=True))  # reading never creates it
    try:
        yield store
    finally:
        store.close()


@app.command()
def verify(
    database: DatabaseOption = None,
    witness: WitnessOption = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Verify an export bundle instead of the database (needs nothing else).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    keys: KeysOption = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Trust only this PEM public key (repeatable), e.g. the output of "
            "`schakel keys public-key` received through another channel.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
) -> None:
    """Recompute the hash chain, check the signed checkpoints (database and witness) and that
    the searchable columns and subject index match the records; exit 1 at the first finding."""
    from services.audit.export import bundle_records, open_bundle
    from services.audit.verification import verify_store
    from services.audit.verify import verify as run
    from services.cli.progress import progress

    try:
        pinned = _pinned(public_key or [])
        extra = _witnessed(witness)
        if bundle is not None:
            opened = open_bundle(bundle)
            trusted = _trusted(opened.public_keys, pinned)
            with progress("verifying audit records", bundle_records(bundle)) as told:
                result = run(
                    opened.records(),
                    [*opened.checkpoints, *extra],
                    trusted,
                    opened.purges,
                    progress=told,
                )
        else:
            with _database(database) as store:
                signed = extra or store.checkpoints() or store.purges()
                offered = _store_keys(keys) if signed and not pinned else {}
                with progress("verifying audit records", store.count()) as told:
                    result = verify_store(
                        store, _trusted(offered, pinned), checkpoints=extra, progress=told
                    )
    except SchakelError as error:
        _fail(error)
    if json_output:
        typer.echo(orjson.dumps(result.to_json(), option=orjson.OPT_SORT_KEYS).decode())
    else:
        typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(code=EXIT_FINDING)


@app.command()
def export(
    out: Annotated[
        Path,
        typer.Option("--out", help="The bundle file to write (JSON lines).", dir_okay=False),
    ],
    database: DatabaseOption = None,
    witness: WitnessOption = None,
    keys: KeysOption = None,
) -> None:
    """Write records, checkpoints (database and witness) and the public signing keys to one
    file, for `schakel audit verify --bundle`."""
    from services.audit.export import write_bundle
    from services.audit.reading import chain_records
    from services.cli.progress import progress
    from services.core.keys import public_key_fingerprint

    try:
        extra = _witnessed(witness)
        with _database(database) as store:
            checkpoints = {(c.seq, c.signature): c for c in [*store.checkpoints(), *extra]}
            purges = store.purges()
            public = _store_keys(keys) if checkpoints or purges else {}
            with progress("exporting audit records", store.count()) as told:
                count = write_bundle(
                    out,
                    chain_records(store),
                    sorted(checkpoints.values(), key=lambda c: c.seq),
                    public,
                    datetime.now(UTC),
                    purges,
                    progress=told,
                )
    except SchakelError as error:
        _fail(error)
    typer.echo(f"Wrote {count} records and {len(checkpoints)} checkpoints to {out}.")
    for key_id, raw in sorted(public.items()):
        typer.echo(f"Signing key {key_id}: {public_key_fingerprint(raw)}")
    typer.echo("Auditors verify it with: schakel audit verify --bundle " + str(out))
