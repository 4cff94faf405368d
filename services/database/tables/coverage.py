"""The coverage facts table (:mod:`services.coverage`): one row per counted signal.

``coverage_facts`` holds source partner and signal id (the key, so ingesting the same signal
twice counts it once), month, municipality code, signal type and category. No identifier, no
payload. Alembic revision ``0007`` creates it.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

coverage_facts = Table(
    "coverage_facts",
    metadata,
    Column("origin", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("month", String(7), nullable=False),
    Column("municipality", String(6), nullable=False),
    Column("signal_type", String, nullable=False),
    Column("category", String, nullable=False),
    Index("ix_coverage_facts_month", "month", "municipality", "category"),
)
