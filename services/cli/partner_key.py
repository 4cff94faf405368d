"""A partner's signing key file: written by ``schakel keys partner``, read by ``--sign-with``.

The file is JSON, created with mode 0600 and never overwritten::

    {"format": "schakel-partner-key/1", "partner": "liander", "key_id": "liander-20261122",
     "algorithm": "ed25519", "private_key": "<base64 of the 32-byte seed>",
     "public_key": "<base64 of the 32-byte public key>", "created": "2026-11-22"}

The private key never leaves the file: the CLI prints only the public block for the covenant,
and writes it beside the key as ``<partner>.<key id>.pub`` for the partner to send to the
covenant manager (``schakel covenant add-key COVENANT_FILE PARTNER --key PUBFILE``)::

    {"format": "schakel-partner-public-key/1", "partner": "liander", "key_id": "liander-20261122",
     "algorithm": "ed25519", "public_key": "<base64>", "valid_from": "2026-11-22",
     "valid_until": null}
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.errors import KeyStoreError
from services.core.signing import public_key_base64

FORMAT = "schakel-partner-key/1"
PUBLIC_FORMAT = "schakel-partner-public-key/1"


@dataclass(frozen=True)
class PartnerKey:
    """A partner's private signing key with its registered id (the key is left out of repr)."""

    partner: str
    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_base64(self) -> str:
        return public_key_base64(self.private_key.public_key())


def write_partner_key(directory: Path, key: PartnerKey, created: date) -> Path:
    """Write ``key`` to ``directory/<partner>.<key id>.key`` with mode 0600; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key.partner}.{key.key_id}.key"
    seed = key.private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    body = orjson.dumps(
        {
            "format": FORMAT,
            "partner": key.partner,
            "key_id": key.key_id,
            "algorithm": "ed25519",
            "private_key": base64.b64encode(seed).decode(),
            "public_key": key.public_base64,
            "created": created.isoformat(),
        },
        option=orjson.OPT_INDENT_2,
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(
            f"{path} already exists; refusing to overwrite a key (choose another --key-id)"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(body + b"\n")
    return path


def read_partner_key(path: Path) -> PartnerKey:
    """Read a partner key file; refuse one that others can read or that is not a key file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read the key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyStoreError(
            f"key file {path} can be read by others (mode {mode:o}); fix: chmod 600 {path}"
        )
    try:
        data = orjson.loads(raw)
        if data.get("format") != FORMAT or data.get("algorithm") != "ed25519":
            raise ValueError
        seed = base64.b64decode(data["private_key"], validate=True)
        partner, key_id = str(data["partner"]), str(data["key_id"])
        private = Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeyStoreError(
            f"{path} is not a partner key file ({FORMAT}); make one with "
            "`schakel keys partner NAME`"
        ) from None
    return PartnerKey(partner, key_id, private)


@dataclass(frozen=True)
class PublicPartnerKey:
    """The public half of a partner key with the validity window to register it under."""

    partner: str
    key_id: str
    public_key: str
    """Standard base64 of the 32-byte Ed25519 public key, as covenants register it."""
    valid_from: date | None = None
    valid_until: date | None = None


def write_public_key(directory: Path, key: PublicPartnerKey) -> Path:
    """Write ``directory/<partner>.<key id>.pub`` (public, safe to send); never overwrite."""
    path = directory / f"{key.partner}.{key.key_id}.pub"
    body = orjson.dumps(
        {
            "format": PUBLIC_FORMAT,
            "partner": key.partner,
            "key_id": key.key_id,
            "algorithm": "ed25519",
            "public_key": key.public_key,
            "valid_from": key.valid_from.isoformat() if key.valid_from else None,
            "valid_until": key.valid_until.isoformat() if key.valid_until else None,
        },
        option=orjson.OPT_INDENT_2,
    )
    try:
        with path.open("xb") as handle:
            handle.write(body + b"\n")
    except FileExistsError:
        raise KeyStoreError(f"{path} already exists; refusing to overwrite it") from None
    return path


def read_public_key(path: Path) -> PublicPartnerKey:
    """Read a ``.pub`` file; a private key file is refused (it must not leave the partner)."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise KeyStoreError(f"cannot read the public key file {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        raise KeyStoreError(
            f"{path} is a PRIVATE key file: it stays with the partner. Give the .pub file "
            "beside it (written by `schakel keys partner`)"
        )
    try:
        if not isinstance(data, dict) or data.get("format") != PUBLIC_FORMAT:
            raise ValueError
        public = str(data["public_key"])
        if len(base64.b64decode(public, validate=True)) != 32:
            raise ValueError
        return PublicPartnerKey(
            str(data["partner"]),
            str(data["key_id"]),
            public,
            _day(data.get("valid_from")),
            _day(data.get("valid_until")),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise KeyStoreError(
            f"{path} is not a partner public key file ({PUBLIC_FORMAT}); make one with "
            "`schakel keys partner NAME`"
        ) from None


def _day(value: object) -> date | None:
    return None if value is None else date.fromisoformat(str(value))
