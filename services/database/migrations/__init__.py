"""Alembic migrations of the audit schema (:mod:`services.database.tables.audit`); run by
:func:`services.database.migrate.upgrade_schema`, or with the ``alembic`` command and
``services/database/alembic.ini``."""
