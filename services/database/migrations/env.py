"""The Alembic environment of the audit schema.

Programmatic runs (:func:`services.database.migrate.upgrade_schema`) hand over an open connection
in ``config.attributes["connection"]``, inside the store's write transaction; Alembic then
neither begins nor commits anything itself, so the whole upgrade commits or rolls back with
the caller. The ``alembic`` command (``alembic -c services/database/alembic.ini ...``) instead
connects to ``sqlalchemy.url`` from the ini file if set, else to ``$SCHAKEL_DATABASE_URL`` or
the default SQLite file, through :func:`services.database.engine.make_engine`.

``target_metadata`` is :data:`services.database.tables.TARGET_METADATA` — the audit, web and
re-identification tables — so ``alembic revision --autogenerate`` proposes the difference
between those modules and the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from services.database.engine import database_url, make_engine
from services.database.tables import TARGET_METADATA

metadata = list(TARGET_METADATA)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    """Write the SQL to standard output instead of running it (``alembic upgrade --sql``)."""
    url = context.config.get_main_option("sqlalchemy.url") or database_url()
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or None)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
