"""``schakel keys verify KEYFILE``: is this partner key registered, and valid today?

Reads a partner's key file (the private ``.key`` or the public ``.pub``), checks the covenant
set the hub runs (``SCHAKEL_COVENANTS``; TEST keys only in demo mode) and answers with the
keyring the router and gateway use: where the key is registered, and whether a signal signed
with it is accepted on the day. With the private key file it signs probe envelopes (singly, and
as a signed batch) and runs the router's own signature check on them, so "accepted" means
exactly that.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from services.cli.output import console, print_problems
from services.cli.partner_key import (
    PartnerKey,
    PublicPartnerKey,
    read_partner_key,
    read_public_key,
)
from services.config import Paths, check_covenants
from services.core.batch_signing import sign_batch
from services.core.covenant.keyring import Keyring
from services.core.demo_keys import owner_of_test_key
from services.core.errors import KeyStoreError, SignalRejected
from services.core.signing import public_key_base64, sign, verify_envelope


def verify_command(
    key_file: Annotated[
        Path,
        typer.Argument(
            help="The partner key file: PARTNER.KEY-ID.pub (or the private .key).",
            dir_okay=False,
        ),
    ],
    today: Annotated[
        str | None, typer.Option(help="As of this day (YYYY-MM-DD); default today.")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="As a hub in demo mode (default: SCHAKEL_DEMO).")
    ] = False,
) -> None:
    """Confirm a partner key is registered in a covenant version in force and valid today;
    exit code 1 (with the reason) when a signal signed with it would be refused."""
    private, public = _read(key_file)
    day = _day(today)
    paths = Paths.from_env()
    _, _, checked = check_covenants(
        list(paths.covenants), paths.schemas, paths.reference, today=day, demo=demo or paths.demo
    )
    out = console()
    if not checked.ok:
        print_problems(checked.errors, out)
        _refuse("the covenants have errors, so the hub refuses every key; fix them first")
    partner, key_id = public.partner, public.key_id
    for item in checked.covenants:
        party = item.covenant.parties.get(partner)
        for key in party.public_keys if party is not None else ():
            if key.id == key_id:
                state = "in force" if item.covenant.in_force(day) else "not in force"
                out.print(
                    f"{item.covenant.key} ({state} on {day}) registers {key_id!r} for "
                    f"{partner!r}, valid from {key.valid_from or 'open'} to "
                    f"{key.valid_until or 'open'} ({item.file})",
                    markup=False,
                )
    keyring = Keyring((item.covenant for item in checked.covenants), test_keys=checked.demo)
    registered = keyring.partner(partner, day).keys.get(key_id)
    if owner_of_test_key(public.public_key, [partner]) and not checked.demo:
        _refuse(f"{key_id!r} is {partner!r}'s TEST key: a hub not in demo mode refuses it")
    if registered is None:
        _refuse(
            f"no covenant version in force on {day} registers {key_id!r} for {partner!r}: its "
            f"signals are refused (unknown_key). Register it: schakel covenant add-key "
            f"COVENANT_FILE {partner} --key {partner}.{key_id}.pub"
        )
    if public_key_base64(registered.public_key) != public.public_key:
        _refuse(f"{registered.covenant} registers another key under the id {key_id!r}")
    if not registered.valid_on(day):
        _refuse(
            f"{key_id!r} of {partner!r} is registered ({registered.covenant}) but not valid on "
            f"{day}: valid from {registered.valid_from or 'open'} to "
            f"{registered.valid_until or 'open'}"
        )
    if private is not None:
        probe = {
            "specversion": "1.0",
            "id": "schakel-keys-verify",
            "source": partner,
            "type": "schakel.keys_verify",
            "time": f"{day.isoformat()}T12:00:00Z",
            "data": {},
        }
        probes = [  # a single signature, and a signed batch of two
            sign(probe, private.private_key, key_id),
            *sign_batch(
                [probe, {**probe, "id": "schakel-keys-verify-2"}], private.private_key, key_id
            ),
        ]
        try:
            for signed in probes:
                verify_envelope(signed, keyring, day)
        except SignalRejected as rejected:
            _refuse(
                f"a probe signed with this key is refused: {rejected.message} [{rejected.code}]"
            )
    out.print(
        f"OK: {key_id!r} of {partner!r} is registered and valid on {day}: signals signed with "
        "it are accepted",
        markup=False,
    )


def _read(path: Path) -> tuple[PartnerKey | None, PublicPartnerKey]:
    """The private key (when ``path`` is a private key file) and the public key it holds."""
    try:
        if path.suffix == ".pub":
            return None, read_public_key(path)
        private = read_partner_key(path)
    except KeyStoreError as error:
        raise typer.BadParameter(str(error), param_hint="KEY_FILE") from None
    return private, PublicPartnerKey(private.partner, private.key_id, private.public_base64)


def _day(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("--today must be a date such as 2026-12-01") from None


def _refuse(message: str) -> NoReturn:
    typer.echo(f"NOT ACCEPTED: {message}", err=True)
    raise typer.Exit(1)
