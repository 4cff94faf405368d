"""Bringing an audit database to the newest schema with the Alembic migrations in
:mod:`services.audit.migrations`.

:func:`upgrade_schema` runs ``alembic upgrade head`` programmatically on a connection the
caller has in a write transaction, so an upgrade commits whole or not at all. Two hubs that
start together do not race: on SQLite the write transaction (``BEGIN IMMEDIATE``) already
excludes the other, on PostgreSQL a transaction-scoped advisory lock does (DDL alone would not
keep the second from failing on a table the first just created).

Databases created before migrations (by ``metadata.create_all``, so without an
``alembic_version`` table) are *adopted*: brought to revision ``0001``, which is what that code
created (a database from before the hash chain gets the chain columns and its records chained,
:mod:`services.audit.upgrade`; missing tables are created), then stamped ``0001``,
then upgraded like any other. Their data is never rewritten beyond that.

The web and re-identification tables (revision ``0003``) were made by ``create_all`` before
they had a migration; ``0003`` creates only those still missing, and their modules' own
``create_all`` stays harmless (it skips existing tables) for databases used without the store.
"""

from __future__ import annotations

import zlib
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, inspect, text

from services.audit import schema
from services.audit.errors import AuditStoreError
from services.audit.schema import audit_checkpoints, audit_subjects, feed_outbox
from services.audit.upgrade import chain_unchained
from services.coverage import store as coverage_store
from services.gateway import schema as gateway_schema
from services.outcomes import schema as outcomes_schema
from services.reid import store as reid_store
from services.riec import schema as riec_schema
from services.stacking import schema as stacking_schema
from services.web import schema as web_schema

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped inside the package."""

ADOPTED_REVISION = "0001"
"""The revision a database created before migrations is at (once adopted)."""

_LOCK_KEY = zlib.crc32(b"schakel-audit-schema")
"""PostgreSQL advisory lock held while the schema is upgraded."""

_ADOPTED_TABLES = (audit_checkpoints, audit_subjects, feed_outbox)
"""Tables of revision ``0001`` that an adopted database may lack (unchanged since then; a
revision that changes one of them must freeze its ``0001`` form here)."""


TARGET_METADATA: tuple[MetaData, ...] = (
    schema.metadata,
    web_schema.metadata,
    reid_store.metadata,
    stacking_schema.metadata,
    gateway_schema.metadata,
    coverage_store.metadata,
    outcomes_schema.metadata,
    riec_schema.metadata,
)
"""Every table the migrations create: the audit tables, the web workplace's (revision
``0003``), the re-identification requests' (``0003``), the stacking tables (``0005``), the
gateway's (``0006``), the coverage facts (``0007``), the sign-in throttle (``0009``), the
outcome index (``0010``, ``0011``) and the RIEC workplace's (``0012``); what ``alembic
revision --autogenerate`` and the schema tests compare the database with."""


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
        raise AuditStoreError(
            f"no audit schema migrations found in {SCRIPT_LOCATION}. Fix: reinstall schakel."
        )
    return head, frozenset(revision.revision for revision in script.walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(connection: Connection, url: str) -> None:
    """Create or upgrade the audit tables on ``connection`` (in the caller's write
    transaction) to the newest revision; ``url`` (password masked) is for messages."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    head, known = _revisions()
    current = current_revision(connection)
    if current == head:
        return  # the common case: one cheap query
    if current is not None and current not in known:
        raise AuditStoreError(
            f"audit database {url} is at schema revision {current}, which this version of "
            "Schakel does not know: a newer version migrated it. Fix: run that newer version, "
            "or point SCHAKEL_DATABASE_URL at another database."
        )
    config = alembic_config(connection)
    try:
        if current is None and _adopt_unversioned(connection):
            command.stamp(config, ADOPTED_REVISION)
        command.upgrade(config, "head")
    except CommandError as error:
        raise AuditStoreError(
            f"upgrading the schema of audit database {url} failed: {error}. Fix: check the "
            f"migrations in {SCRIPT_LOCATION} (alembic -c services/audit/alembic.ini history)."
        ) from None


def _adopt_unversioned(connection: Connection) -> bool:
    """Bring a database made before migrations to revision ``0001``; False if it has no audit
    tables at all (a new database, for the migrations to create)."""
    tables = set(inspect(connection).get_table_names())
    if "audit_records" not in tables:
        return False
    chain_unchained(connection)
    for table in _ADOPTED_TABLES:
        if table.name not in tables:
            table.create(connection)
    return True
