"""Shared fixtures. Broker fixtures live in tests/kafka_fixtures.py, PostgreSQL fixtures in
tests/postgres_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.kafka_fixtures", "tests.postgres_fixtures"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
