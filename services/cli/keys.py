"""``schakel keys``: create, rotate and inspect the hub's key store; make partner keys.

Output shows versions, dates, key ids and public-key fingerprints, never private key material.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from services.cli.key_verify import verify_command
from services.cli.partner_key import (
    PartnerKey,
    PublicPartnerKey,
    write_partner_key,
    write_public_key,
)
from services.config import state_hint
from services.core.envelope import PARTNER_ID_PATTERN
from services.core.errors import KeyStoreError
from services.keys import KEYS_ENV_VAR, SIGNING_KEY_ENV_VAR, default_keys_path
from services.keys import default_signing_key_path as signing_path_of
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile

app = typer.Typer(
    help=(
        "Manage the key store: pseudonym keys (versioned, rotated) and the checkpoint "
        f"signing key. The key file is --path, else ${KEYS_ENV_VAR}, else ./var/keys.json; "
        "it lists the public signing keys only. The private signing key is in its own file, "
        f"${SIGNING_KEY_ENV_VAR}, else beside the key file (keys.signing.json), for the audit "
        "writers only. `keys partner NAME` makes a partner's signal-signing key pair; "
        "`keys verify KEYFILE` confirms it is registered and valid today."
    ),
    no_args_is_help=True,
)
app.command("verify")(verify_command)

PathOption = Annotated[
    Path | None,
    typer.Option(
        "--path",
        help=f"Key file (default: ${KEYS_ENV_VAR}, else ./var/keys.json).",
        dir_okay=False,
        show_default=False,
    ),
]


def _fail(error: KeyStoreError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=1)


def _open(path: Path | None) -> FileKeyStore:
    target = path or default_keys_path()
    try:
        return FileKeyStore.open(target)
    except KeyStoreError as error:
        if path is None and not target.exists() and not os.environ.get(KEYS_ENV_VAR, "").strip():
            _fail(KeyStoreError(f"{error} ({state_hint()})"))
        _fail(error)


@app.command()
def init(path: PathOption = None) -> None:
    """Create a new key store with one pseudonym key, and the checkpoint signing key file."""
    target = path or default_keys_path()
    try:
        store = FileKeyStore.create(target, signing_path_of(target))
    except KeyStoreError as error:
        _fail(error)
    signing = store.current_signing_key()
    typer.echo(f"Created key store {store.path} (mode 0600; keep it secret, back it up).")
    typer.echo(
        f"Created signing key file {signing_path_of(target)} (mode 0600; only the router and "
        "stacking workers need it)."
    )
    typer.echo(f"Pseudonym key: version {store.active_pseudonym_key().version}")
    typer.echo(f"Checkpoint signing key: {signing.key_id}")
    typer.echo(f"Public key fingerprint: {signing.fingerprint()}")


@app.command()
def rotate(
    path: PathOption = None,
    signing: Annotated[
        bool,
        typer.Option(
            "--signing",
            help="Rotate the checkpoint signing key instead of the pseudonym key.",
        ),
    ] = False,
) -> None:
    """Add a new pseudonym key version (the old one keeps recognising its pseudonyms).

    With --signing, replace the checkpoint signing key; its public key stays listed so
    older checkpoints remain verifiable. A running hub picks up the new key when it reloads.
    """
    store = _open(path)
    try:
        if signing:
            key = SigningKeyFile.open(signing_path_of(store.path)).rotate(store)
            typer.echo(f"New checkpoint signing key: {key.key_id}")
            typer.echo(f"Public key fingerprint: {key.fingerprint()}")
        else:
            previous = store.active_pseudonym_key().version
            new = store.rotate_pseudonym_key()
            typer.echo(
                f"New pseudonym key: version {new.version} (version {previous} retired; it "
                "still recognises and re-identifies its pseudonyms)"
            )
    except KeyStoreError as error:
        _fail(error)


@app.command()
def migrate(path: PathOption = None) -> None:
    """Move the checkpoint signing key out of a key file of an older release into its own
    file (beside it, or $SCHAKEL_SIGNING_KEY): give that file to the router and stacking
    workers only. Any command that opens the key file does this too; this one says so."""
    target = path or default_keys_path()
    signing = signing_path_of(target)
    existed = signing.exists()
    store = _open(target)
    if not existed and signing.exists():
        typer.echo(
            f"Moved the checkpoint signing key of {store.path} to {signing} (mode 0600): give "
            "that file to the router and stacking workers only."
        )
    else:
        where = "is" if existed else "is not (the writers need it)"
        typer.echo(
            f"Key store {store.path} holds no private key already; the signing key file "
            f"{signing} {where} there."
        )


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_keys(path: PathOption = None) -> None:
    """Show the pseudonym key versions and the checkpoint signing keys (no secrets)."""
    store = _open(path)
    console = Console()
    pseudonyms = Table(title=f"Pseudonym keys in {store.path}")
    for column in ("Version", "Created (UTC)", "Retired (UTC)", "Active"):
        pseudonyms.add_column(column, no_wrap=True)
    active = store.active_pseudonym_key().version
    for key in store.pseudonym_keys():
        pseudonyms.add_row(
            str(key.version),
            _when(key.created),
            _when(key.retired),
            "yes" if key.version == active else "no",
        )
    console.print(pseudonyms)

    # The key id is the start of the public key's SHA-256 fingerprint (see `init`).
    signing = Table(title="Checkpoint signing keys")
    for column in ("Key id", "Created (UTC)", "Retired (UTC)", "Active"):
        signing.add_column(column, no_wrap=True)
    for public in store.public_signing_keys():
        current = "yes" if public.retired is None else "no"
        signing.add_row(public.key_id, _when(public.created), _when(public.retired), current)
    console.print(signing)


@app.command("public-key")
def public_key(path: PathOption = None) -> None:
    """Print the checkpoint signing public key as PEM, for audit verifiers."""
    typer.echo(_open(path).current_signing_key().public_key_pem(), nl=False)


@app.command("partner")
def partner_key(
    name: Annotated[str, typer.Argument(help="Partner id as in the covenant's party list.")],
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the private key file.", file_okay=False),
    ] = Path("."),
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Key id to register (default: NAME-YYYYMMDD)."),
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="First day the key is valid, YYYY-MM-DD (default: today).")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option(help="Last day the key is valid, YYYY-MM-DD (default: open).")
    ] = None,
) -> None:
    """Create a partner's Ed25519 signing key pair and print how to register its public half.

    The private key goes to a file with mode 0600 (OUT/NAME.KEY-ID.key) and is never
    printed; it belongs to the partner's publishing system (`schakel publish --sign-with`).
    The public half goes to OUT/NAME.KEY-ID.pub, for the covenant manager's
    `schakel covenant add-key`; `schakel keys verify` then confirms the registration.
    To rotate, create a new key and register it next to the old one with a valid_from before
    the old key's valid_until: signals signed with either are accepted during the overlap.
    """
    today = date.today()
    if not re.match(PARTNER_ID_PATTERN, name):
        raise typer.BadParameter("a partner id is a lower-case slug such as liander")
    chosen = key_id or f"{name}-{today:%Y%m%d}"
    if not re.match(PARTNER_ID_PATTERN, chosen):
        raise typer.BadParameter("a key id is a lower-case slug such as liander-20261122")
    start = _day(valid_from, "--valid-from") or today
    end = _day(valid_until, "--valid-until")
    if end is not None and end < start:
        raise typer.BadParameter("--valid-until lies before --valid-from")
    key = PartnerKey(name, chosen, Ed25519PrivateKey.generate())
    try:
        path = write_partner_key(out, key, today)
        public = write_public_key(
            out, PublicPartnerKey(name, chosen, key.public_base64, start, end)
        )
    except KeyStoreError as error:
        _fail(error)
    typer.echo(f"Private key written to {path} (mode 0600; keep it secret, never share it).")
    typer.echo(f"Public key written to {public}: send it to the covenant manager, who runs")
    typer.echo("")
    typer.echo(f"    schakel covenant add-key COVENANT_FILE {name} --key {public}")
    typer.echo(f"    schakel keys verify {public}")
    typer.echo("")
    typer.echo(f"Or add this under parties.{name} in the covenant file, next to any current key:")
    typer.echo("")
    typer.echo("    public_keys:")
    typer.echo(f"      - id: {chosen}")
    typer.echo(f'        ed25519: "{key.public_base64}"')
    typer.echo(f"        valid_from: {start.isoformat()}")
    if end is not None:
        typer.echo(f"        valid_until: {end.isoformat()}")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option} must be a date such as 2026-12-01") from None
