"""Bringing the hub's database to the newest schema with the Alembic migrations in
:mod:`services.database.migrations`.

:func:`upgrade_schema` runs ``alembic upgrade head`` programmatically on a connection the
caller has in a write transaction, so an upgrade commits whole or not at all. Two hubs that
start together do not race: on SQLite the write transaction (``BEGIN IMMEDIATE``) already
excludes the other, on PostgreSQL a transaction-scoped advisory lock does (DDL alone would not
keep the second from failing on a table the first just created).

Databases created before migrations (by ``metadata.create_all``, so without an
``alembic_version`` table) are *adopted*: brought to revision ``0001``, which is what that code
created (a database from before the hash chain gets the chain columns and its records chained,
:func:`services.audit.upgrade.adopt_unversioned`; missing tables are created), then stamped ``0001``,
then upgraded like any other. Their data is never rewritten beyond that.

The web and re-identification tables (revision ``0003``) were made by ``create_all`` before
they had a migration; ``0003`` creates only those still missing, and their modules' own
``create_all`` stays harmless (it skips existing tables) for databases used without the store.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

from services.database.errors import DatabaseError

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped inside the package."""

ADOPTED_REVISION = "0001"
"""The revision a database created before migrations is at (once adopted)."""

_LOCK_KEY = zlib.crc32(b"schakel-audit-schema")
"""PostgreSQL advisory lock held while the schema is upgraded."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the audit migrations, without an ini file; with
    ``connection``, the migrations run on it (see ``migrations/env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the migrations know."""
    return _revisions()[0]


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head and every known revision, read from the script directory once per process
    (stores are opened often, e.g. once per worker and per CLI command)."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:  # only if the shipped migrations were removed
        raise DatabaseError(
            f"no audit schema migrations found in {SCRIPT_LOCATION}. Fix: reinstall schakel."
        )
    return head, frozenset(revision.revision for revision in script.walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(
    connection: Connection, url: str, adopt: Callable[[Connection], bool] = lambda _: False
) -> None:
    """Create or upgrade the hub's tables on ``connection`` (in the caller's write
    transaction) to the newest revision; ``url`` (password masked) is for messages. ``adopt``
    brings a database made before migrations to :data:`ADOPTED_REVISION` and says whether it
    did (False: a new database, for the migrations to create); the audit store passes
    :func:`services.audit.upgrade.adopt_unversioned`."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    head, known = _revisions()
    current = current_revision(connection)
    if current == head:
        return  # the common case: one cheap query
    if current is not None and current not in known:
        raise DatabaseError(
            f"audit database {url} is at schema revision {current}, which this version of "
            "Schakel does not know: a newer version migrated it. Fix: run that newer version, "
            "or point SCHAKEL_DATABASE_URL at another database."
        )
    config = alembic_config(connection)
    try:
        if current is None and adopt(connection):
            command.stamp(config, ADOPTED_REVISION)
        command.upgrade(config, "head")
    except CommandError as error:
        raise DatabaseError(
            f"upgrading the schema of audit database {url} failed: {error}. Fix: check the "
            f"migrations in {SCRIPT_LOCATION} (alembic -c services/database/alembic.ini history)."
        ) from None
