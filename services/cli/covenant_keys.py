"""``schakel covenant add-key``: register a partner's public key in a covenant file, then check.

The partner makes its key pair with ``schakel keys partner NAME`` and sends the ``.pub`` file
(never the private ``.key`` file) to the covenant manager, who runs::

    schakel covenant add-key covenants/drugslocaties-nh/2025.1.yaml liander \\
        --key liander.liander-20261122.pub --valid-from 2026-11-22

The entry is added to the party's ``public_keys`` with every comment and line of the file
kept (:mod:`services.core.covenant.key_edit`); then the covenant set is checked as
``schakel covenant check`` does, and the edit is undone if the file no longer checks clean.
``schakel keys verify KEYFILE`` then confirms the key is registered and valid today.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from services.cli.output import console, print_problems
from services.cli.partner_key import read_public_key
from services.config import Paths, check_covenants
from services.core.covenant.key_edit import KeyEditError, add_key_text
from services.core.covenant.loader import covenant_files
from services.core.errors import KeyStoreError


def add_key_command(
    covenant_file: Annotated[
        Path, typer.Argument(help="The covenant version file.", dir_okay=False, exists=True)
    ],
    partner: Annotated[str, typer.Argument(help="Partner id (a party of the covenant).")],
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            help="The partner's public key file (PARTNER.KEY-ID.pub, from schakel keys partner).",
            dir_okay=False,
        ),
    ],
    valid_from: Annotated[
        str | None,
        typer.Option(help="First day the key is valid, YYYY-MM-DD (default: from the .pub)."),
    ] = None,
    valid_until: Annotated[
        str | None,
        typer.Option(help="Last day the key is valid, YYYY-MM-DD (default: from the .pub)."),
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="Check as of this date (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Register PARTNER's public key (with its validity window) in COVENANT_FILE and check."""
    try:
        public = read_public_key(key)
    except KeyStoreError as error:
        raise typer.BadParameter(str(error), param_hint="--key") from None
    if public.partner != partner:
        raise typer.BadParameter(
            f"{key} is a key of {public.partner!r}, not of {partner!r}", param_hint="--key"
        )
    start = _day(valid_from, "--valid-from") or public.valid_from
    end = _day(valid_until, "--valid-until") or public.valid_until
    if start is not None and end is not None and end < start:
        raise typer.BadParameter("--valid-until lies before --valid-from")
    original = covenant_file.read_text(encoding="utf-8")
    try:
        edited = add_key_text(
            original, partner, public.key_id, public.public_key, valid_from=start, valid_until=end
        )
    except KeyEditError as error:
        typer.echo(f"error: {covenant_file}: {error}", err=True)
        raise typer.Exit(1) from None
    _write(covenant_file, edited)
    defaults = Paths.from_env()
    mine = covenant_file.resolve()
    in_set = any(f.resolve() == mine for f in covenant_files(defaults.covenants))
    _, _, result = check_covenants(
        list(defaults.covenants) if in_set else [covenant_file],
        defaults.schemas,
        defaults.reference,
        today=_day(today, "--today") or date.today(),
        demo=defaults.demo,
    )
    out = console()
    errors = [p for p in result.errors if Path(p.file).resolve() == mine]
    if errors:
        _write(covenant_file, original)
        print_problems(errors, out)
        typer.echo(
            f"error: {covenant_file} would not check clean with this key, so it was left "
            "unchanged; fix the problems above and run the command again",
            err=True,
        )
        raise typer.Exit(1)
    in_file = [p for p in result.problems if Path(p.file).resolve() == mine]
    about_key = [p for p in in_file if _concerns(p.message, partner, public.key_id)]
    print_problems(about_key, out)
    others = len(in_file) - len(about_key)
    if others:
        out.print(
            f"{others} other warning(s) in {covenant_file}, not about this key "
            f"(see them: schakel covenant check)",
            markup=False,
        )
    window = f"from {start or 'open'} to {end or 'open'}"
    out.print(
        f"registered key {public.key_id!r} of {partner!r} in {covenant_file} ({window}); "
        "the file checks clean",
        markup=False,
    )
    out.print(
        f"confirm it is in force: schakel keys verify {key}"
        + (f" --today {today}" if today else ""),
        markup=False,
    )


def _concerns(message: str, partner: str, key_id: str) -> bool:
    """Whether a covenant problem is about ``partner`` or its key (checker messages quote the
    party id, as ``'liander'``, and name key ids as they are)."""
    return repr(partner) in message or key_id in message


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader sees the old file or the new one, never half)."""
    temporary = path.with_name(f".{path.name}.add-key.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option} must be a date such as 2026-12-01") from None
