"""Entry point of the ``schakel`` command; each verb group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="schakel",
    help="Schakel: covenant-governed information exchange for public-private partnerships.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold identifiers or key material
)


def _register() -> None:
    from services.cli import keys

    app.add_typer(keys.app, name="keys")


def main() -> None:
    _register()
    app()
