"""Every service's tables, each module one service's (SQLAlchemy Core, SQLite and
PostgreSQL alike), and :data:`TARGET_METADATA`, what the migrations create."""

from __future__ import annotations

from sqlalchemy import MetaData

from services.database.tables import (
    audit,
    coverage,
    gateway,
    outcomes,
    reid,
    riec,
    stacking,
    web,
)

TARGET_METADATA: tuple[MetaData, ...] = (
    audit.metadata,
    web.metadata,
    reid.metadata,
    stacking.metadata,
    gateway.metadata,
    coverage.metadata,
    outcomes.metadata,
    riec.metadata,
)
"""Every table the migrations create: the audit tables, the web workplace's (revision
``0003``), the re-identification requests' (``0003``), the stacking tables (``0005``), the
gateway's (``0006``), the coverage facts (``0007``), the sign-in throttle (``0009``), the
outcome index (``0010``, ``0011``) and the RIEC workplace's (``0012``); what ``alembic
revision --autogenerate`` and the schema tests compare the database with."""
