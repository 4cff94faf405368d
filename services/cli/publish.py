"""``schakel publish``: sign and check signals locally, then send them to the partner's topic.

Each line is checked as the router will check it — envelope, schema, identifiers and the
signature against the partners' keys of the covenants the hub loads (``SCHAKEL_COVENANTS``),
with the same code (:func:`services.core.signing.verify_envelope`) — so a signal the router
would dead-letter is refused here, with its line number and reason, and never sent. Signals
of other partners in a mixed file (such as ``examples/signals.jsonl``) are skipped with one
summary line: a partner publishes only its own.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from aiokafka import AIOKafkaProducer
from rich.console import Console

from services.cli.output import console
from services.cli.partner_key import PartnerKey, read_partner_key
from services.config import Paths, check_covenants
from services.core.covenant.keyring import Keyring
from services.core.demo_keys import demo_key_id, demo_private_key, owner_of_test_key
from services.core.envelope import decode, peek
from services.core.errors import KeyStoreError, SignalRejected
from services.core.pipeline import verify_raw
from services.core.policy import LOCAL_TIME
from services.core.schema_registry import SchemaRegistry
from services.core.signal import Signal, accept_bytes
from services.core.signing import sign
from services.core.time_window import check_not_ahead
from services.hub.state import client_settings, hub_in_demo_mode
from services.router.topics import signals_topic


def publish_command(
    source: Annotated[Path, typer.Argument(help="JSON-lines file of signals, or - for stdin.")],
    partner: Annotated[str, typer.Option("--as", help="The partner publishing (its topic).")],
    validate: Annotated[
        bool, typer.Option(help="Check each signal before sending (--no-validate sends as is).")
    ] = True,
    sign_with: Annotated[
        Path | None,
        typer.Option(
            "--sign-with",
            help="Partner key file (schakel keys partner): sign each signal before sending.",
            dir_okay=False,
        ),
    ] = None,
    demo_key: Annotated[
        bool,
        typer.Option(
            "--demo-key",
            help="Sign each signal with the partner's TEST key (demo mode only: a hub started "
            "with `schakel up --demo`, or SCHAKEL_DEMO=1).",
        ),
    ] = False,
) -> None:
    """Send each valid signal to signals.<partner>; report each invalid line with its reason.

    Signals of other partners are skipped (one summary line); exit 1 if a line was refused."""
    paths = Paths.from_env()
    registry = SchemaRegistry.load(paths.schemas)
    err = console(stderr=True)
    key = _demo_key(partner, sign_with) if demo_key else _key(sign_with, partner)
    keyring = _keyring(paths) if validate else None
    today = datetime.now(LOCAL_TIME).date()
    good: list[bytes] = []
    bad = unsigned = 0
    others: Counter[str] = Counter()
    for number, raw in _lines(source):
        if not raw.strip():
            continue
        line = raw.rstrip(b"\n")
        if validate:
            _, source_of_line = peek(line)
            if source_of_line is not None and source_of_line != partner:
                others[source_of_line] += 1
                continue
        if key is not None:
            try:  # read strictly: a member given twice must not be signed as its last value
                line = orjson.dumps(sign(decode(line), key.private_key, key.key_id))
            except SignalRejected as exc:
                bad += 1
                err.print(f"line {number}: not sent: {exc}", markup=False)
                continue
            except (TypeError, AttributeError):
                bad += 1
                err.print(f"line {number}: not sent: not a JSON object, cannot sign it")
                continue
        if keyring is not None:
            try:
                signal = _checked(line, registry, partner, keyring, today)
            except SignalRejected as exc:
                bad += 1
                err.print(f"line {number}: not sent: {exc}", markup=False)
                continue
            unsigned += signal.envelope.signature is None
        good.append(line)
    if good:  # a file with nothing to send needs no hub to say so
        asyncio.run(_send(partner, good))
    _summary(err, partner, len(good), bad, others, unsigned)
    if bad:
        raise typer.Exit(1)


def _summary(
    err: Console, partner: str, sent: int, bad: int, others: Counter[str], unsigned: int
) -> None:
    """What was sent, refused and skipped, on stderr."""
    err.print(f"sent {sent} signal(s) to {signals_topic(partner)}; {bad} refused")
    if others:
        err.print(
            f"skipped {others.total()} signal(s) of {len(others)} other partner(s) "
            f"({', '.join(sorted(others))}): {partner} publishes only its own; publish theirs "
            "with --as <partner>",
            markup=False,
        )
    if unsigned:
        err.print(
            f"{unsigned} signal(s) were sent unsigned: the hub rejects them when a covenant "
            "makes this partner sign (use --sign-with KEYFILE; in the demo: --demo-key)",
            style="yellow",
            markup=False,
        )


def _checked(
    line: bytes, registry: SchemaRegistry, partner: str, keyring: Keyring, today: date
) -> Signal:
    """The signal of ``line`` if the router would accept it: schema, identifiers, time ahead of
    the clock, signature (raises SignalRejected with the router's reason)."""
    signal = accept_bytes(line, registry, expected_source=partner)
    # the hub's router also refuses times older than every rule's retention
    check_not_ahead(signal.time, datetime.now(UTC), signal_id=signal.id)
    verify_raw(line, keyring, today, signal_id=signal.id)
    return signal


def _keyring(paths: Paths) -> Keyring:
    """The partners' keys of the covenants the hub loads, as the router compiles them (in
    demo mode with the demo partners' TEST keys, as the hub in demo mode accepts them)."""
    demo = paths.demo or hub_in_demo_mode()
    _, _, checked = check_covenants(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        today=datetime.now(LOCAL_TIME).date(),
        demo=demo,
    )
    if not checked.ok:
        raise typer.BadParameter(
            "the covenants have errors, so signatures cannot be checked; run "
            "`schakel covenant check` and fix them (or send unchecked with --no-validate)"
        )
    return Keyring((item.covenant for item in checked.covenants), test_keys=demo)


def _key(path: Path | None, partner: str) -> PartnerKey | None:
    if path is None:
        return None
    try:
        key = read_partner_key(path)
    except KeyStoreError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sign-with") from None
    if key.partner != partner:
        raise typer.BadParameter(
            f"the key file belongs to partner {key.partner!r}, not {partner!r}; a partner "
            "signs only its own signals",
            param_hint="--sign-with",
        )
    if owner_of_test_key(key.public_base64, [partner]) and not hub_in_demo_mode():
        raise typer.BadParameter(
            f"the key file holds {partner!r}'s TEST key, derived from the public demo seed; "
            "a hub not in demo mode refuses it. Make a real key with "
            f"`schakel keys partner {partner}`",
            param_hint="--sign-with",
        )
    return key


def _demo_key(partner: str, sign_with: Path | None) -> PartnerKey:
    """The partner's TEST key, when the hub publish talks to is in demo mode."""
    if sign_with is not None:
        raise typer.BadParameter("sign with --sign-with KEYFILE or --demo-key, not both")
    if not hub_in_demo_mode():
        raise typer.BadParameter(
            "TEST keys count only in demo mode, and the hub is not in it: start it with "
            "`schakel up --demo` (or set SCHAKEL_DEMO=1 for a demo cluster), or sign with "
            f"a real key: --sign-with KEYFILE (schakel keys partner {partner})",
            param_hint="--demo-key",
        )
    return PartnerKey(partner, demo_key_id(partner), demo_private_key(partner))


async def _send(partner: str, values: list[bytes]) -> None:
    settings = client_settings()
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        futures = [await producer.send(signals_topic(partner), value) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _lines(source: Path) -> Iterator[tuple[int, bytes]]:
    if str(source) == "-":
        yield from enumerate(sys.stdin.buffer, start=1)
        return
    try:
        with source.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}") from None
