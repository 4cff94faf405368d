"""Reading the fields of a key file's JSON, with errors that name the field, never its value."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.core.keys import ED25519_KEY_BYTES, PublicSigningKey


class Malformed(Exception):  # noqa: N818 - internal signal, turned into KeyStoreError
    """A field of a key file is wrong; the message names the field, never its value."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def time_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def field(obj: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise Malformed(f"{where}.{name} is missing")
    return obj[name]


def an_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where} must be an object")
    return value


def a_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{where} must be a list")
    return value


def raw_bytes(obj: Mapping[str, Any], name: str, where: str, length: int) -> bytes:
    value = field(obj, name, where)
    if not isinstance(value, str):
        raise Malformed(f"{where}.{name} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Malformed(f"{where}.{name} is not valid base64") from None
    if len(raw) != length:
        raise Malformed(f"{where}.{name} must decode to {length} bytes")
    return raw


def moment(obj: Mapping[str, Any], name: str, where: str) -> datetime:
    value = field(obj, name, where)
    if not isinstance(value, str):
        raise Malformed(f"{where}.{name} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{where}.{name} is not an ISO 8601 time") from None
    if parsed.utcoffset() is None:
        raise Malformed(f"{where}.{name} must carry a UTC offset")
    return parsed


def optional_moment(obj: Mapping[str, Any], name: str, where: str) -> datetime | None:
    if obj.get(name) is None:
        return None
    return moment(obj, name, where)


def key_id(obj: Mapping[str, Any], where: str) -> str:
    value = field(obj, "key_id", where)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{where}.key_id must be a non-empty string")
    return value


def public_signing_key(item: Any, where: str, *, retired_required: bool) -> PublicSigningKey:
    """A public signing key entry ``{key_id, public_key, created, retired}``."""
    entry = an_object(item, where)
    return PublicSigningKey(
        key_id=key_id(entry, where),
        public_bytes=raw_bytes(entry, "public_key", where, ED25519_KEY_BYTES),
        created=moment(entry, "created", where),
        retired=(
            moment(entry, "retired", where)
            if retired_required
            else optional_moment(entry, "retired", where)
        ),
    )


def public_signing_entry(key: PublicSigningKey) -> dict[str, Any]:
    """The JSON entry of a public signing key."""
    return {
        "key_id": key.key_id,
        "public_key": b64(key.public_bytes),
        "created": time_text(key.created),
        "retired": time_text(key.retired),
    }
