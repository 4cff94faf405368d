"""``schakel audit prove``: prove one signal to a third party from its audit record.

The record (from an export bundle, or the database) keeps the partner's signature as the hub
verified it (``partner_signature``: :mod:`services.core.signature_proof`). With the partner's
public key — its ``.pub`` file, or the base64 the covenant registers — a signed batch's record
proves on its own that the partner signed a batch holding this signal's leaf; ``--envelope``
(the signal as sent, from the partner or a recipient) proves it is that signal. A single
signature is proven with the envelope. Exit 0 when proven, 1 when not, 2 when the record or a
file could not be read. Output names the record, the key id and the position in the batch,
never anything from the signal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from services.cli.audit import EXIT_FINDING, DatabaseOption, _database, _fail
from services.core.errors import KeyStoreError, SchakelError, SignalRejected

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def prove(
    record_id: Annotated[str, typer.Argument(help="The audit record's record_id.")],
    partner_key: Annotated[
        str,
        typer.Option(
            "--partner-key",
            help="The partner's public key: its .pub file (schakel keys partner), or the "
            "base64 `ed25519` value registered in the covenant's public_keys.",
        ),
    ],
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Read the record from this export bundle (schakel audit export) instead of "
            "the database; verify the bundle itself with `schakel audit verify --bundle`.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    database: DatabaseOption = None,
    envelope: Annotated[
        Path | None,
        typer.Option(
            "--envelope",
            help="The signal as the partner sent it (one JSON object): proves the record is "
            "about exactly this signal.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
) -> None:
    """Prove the signal of one audit record with the partner's public key."""
    from services.core.signature_proof import check

    try:
        public_key, file_key_id = _public_key(partner_key)
        sent = _envelope(envelope) if envelope is not None else None
        record = _record(record_id, bundle, database)
    except SchakelError as error:
        _fail(error)
    proof = record.get("partner_signature")
    proven = check(proof, public_key, envelope=sent)
    named = proof.get("key_id") if isinstance(proof, dict) else None
    message = proven.message
    if proven.ok and file_key_id is not None and named != file_key_id:
        message += f" (the key file is registered as {file_key_id!r}: check it is the same key)"
    if json_output:
        out = {"record_id": record_id, "proven": proven.ok, "content": proven.content}
        typer.echo(orjson.dumps({**out, "message": message}, option=orjson.OPT_SORT_KEYS))
    else:
        typer.echo(f"{'PROVEN' if proven.ok else 'NOT PROVEN'}: record {record_id}: {message}")
    if not proven.ok:
        raise typer.Exit(code=EXIT_FINDING)


def _public_key(text: str) -> tuple[Ed25519PublicKey, str | None]:
    """The Ed25519 public key in a ``.pub`` file or in base64 text, and the file's key id."""
    from services.cli.partner_key import read_public_key
    from services.core.covenant.keyring import decode_public_key

    path = Path(text)
    if path.is_file():
        held = read_public_key(path)
        key = decode_public_key(held.public_key)
        if key is not None:
            return key, held.key_id
    key = decode_public_key(text)
    if key is None:
        raise KeyStoreError(
            f"--partner-key {text!r} is neither a partner public key file nor the base64 of an "
            "Ed25519 public key. Fix: give the partner's .pub file or the `ed25519` value the "
            "covenant registers"
        )
    return key, None


def _envelope(path: Path) -> dict[str, Any]:
    from services.core.envelope import decode

    try:
        value = decode(path.read_bytes())
    except OSError as exc:
        raise KeyStoreError(f"cannot read {path}: {exc.strerror}") from None
    except SignalRejected as exc:
        raise KeyStoreError(f"{path}: not a signal as sent ({exc.code})") from None
    if not isinstance(value, dict):
        raise KeyStoreError(f"{path}: not a signal as sent (one JSON object)")
    return value


def _record(record_id: str, bundle: Path | None, database: str | None) -> dict[str, Any]:
    from services.audit.errors import AuditStoreError

    found: dict[str, Any] | None = None
    if bundle is not None:
        from services.audit.export import open_bundle

        for record in open_bundle(bundle).records():
            if record.record_id == record_id:
                found = orjson.loads(record.body)
                break
    else:
        with _database(database) as store:
            found = store.get(record_id)
    if not isinstance(found, dict):
        where = f"bundle {bundle}" if bundle is not None else "the audit database"
        raise AuditStoreError(f"no audit record {record_id!r} in {where}")
    return found


def register(app: typer.Typer) -> None:
    app.command("prove")(prove)
