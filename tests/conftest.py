"""Shared fixtures. Broker fixtures live in tests/kafka_fixtures.py, PostgreSQL fixtures in
tests/postgres_fixtures.py; tests/state_guard.py gives every test its own state directory and
fails a test that touches the checkout's ``var/`` or the user's home; under pytest-xdist
tests/xdist_order.py hands out the slow files first."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "tests.state_guard",
    "tests.kafka_fixtures",
    "tests.postgres_fixtures",
    "tests.xdist_order",
    "pytester",
]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
