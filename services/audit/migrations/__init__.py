"""Alembic migrations of the audit schema (:mod:`services.audit.schema`); run by
:func:`services.audit.migrate.upgrade_schema`, or with the ``alembic`` command and
``services/audit/alembic.ini``."""
