"""The PostgreSQL test server (tests/postgres_fixtures.py): loopback only, not root, and a
fresh database per test that is dropped afterwards."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from tests.postgres_fixtures import Databases, PostgresServer

pytestmark = pytest.mark.postgres


def test_the_server_listens_on_loopback_only_and_not_as_root(postgres_server: PostgresServer):
    with postgres_server.connect_admin() as admin:
        settings = dict(
            admin.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'unix_socket_directories', 'server_version_num')"
            ).fetchall()
        )
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["unix_socket_directories"] == ""
    assert int(settings["server_version_num"]) >= 160000
    assert postgres_server.pid is not None
    status = Path(f"/proc/{postgres_server.pid}/status").read_text()
    real_uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert real_uid != "0"


def test_each_test_gets_a_fresh_empty_database(postgres_url: str):
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
            name = connection.execute(text("SELECT current_database()")).scalar_one()
        assert name.startswith("test_")
        assert postgres_url.endswith(f"127.0.0.1:{engine.url.port}/{name}")
    finally:
        engine.dispose()


def test_databases_are_dropped_even_with_connections_left_open(
    postgres_server: PostgresServer, postgres_databases: Databases
):
    name = postgres_databases.take()
    left_open = psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", dbname=name
    )
    try:
        postgres_databases.drop(name)
        with postgres_server.connect_admin() as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            assert found.fetchone() is None
    finally:
        left_open.close()
