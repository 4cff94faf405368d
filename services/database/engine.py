"""Making the SQLAlchemy engine of the audit store from a database URL.

The URL comes from the argument, else ``$SCHAKEL_DATABASE_URL``, else the SQLite file
``audit.db`` in the hub's state directory (``$SCHAKEL_STATE_DIR``, default ``var/``, which is
git-ignored; see :class:`services.config.Paths`). SQLite is tuned for one hub process with
several threads (the router calls the store through ``asyncio.to_thread``):

* WAL journal, so readers never block the writer; ``synchronous=NORMAL``: a commit is written
  to the WAL file but not flushed to the disk (the flush happens at WAL checkpoints). That is
  durable across process crashes, SIGKILL included — the operating system still writes the file
  — which is what the product promises (docs/reliability.md). A power cut or kernel crash can
  undo the last transactions since the last WAL checkpoint: the database stays consistent (a
  whole transaction or none; the chain unbroken), but those records are gone, and if the
  witness (flushed on every append) got a checkpoint of them, verification against the witness
  then reports the log cut off — detected, not silent. ``FULL`` (a flush per commit) would close
  that window for ≈ 4 ms of I/O wait per transaction on this machine's disk (≈ 13 % of the
  append rate in bench/audit.py at 500 records a transaction; no CPU). Not taken: the embedded
  brokers of the SQLite set-up lose more than that on a power cut themselves, and deployments
  that need power-loss durability run PostgreSQL (docs/performance.md, audit store);
* foreign keys on, and a busy timeout, so a second writer waits instead of failing;
* write transactions start with ``BEGIN IMMEDIATE`` (requested by the store through the
  :data:`WRITE_TRANSACTION` execution option): a deferred transaction that upgrades from
  reading to writing can fail with "database is locked" at once, busy timeout or not.

PostgreSQL gets a pre-pinged, recycled connection pool. Bound parameters never appear in
logs or error messages (``hide_parameters``), because they are record bodies.
"""

from __future__ import annotations

import os
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from services.config import (
    AUDIT_DB_FILE,
    DATABASE_URL_ENV,
    DEFAULT_STATE_DIR,
    Paths,
    sqlite_url,
    state_hint,
)
from services.database.errors import DatabaseError

DEFAULT_DATABASE_URL = sqlite_url(DEFAULT_STATE_DIR / AUDIT_DB_FILE)
"""The audit database when neither :data:`DATABASE_URL_ENV` nor ``SCHAKEL_STATE_DIR`` is set,
relative to the working directory."""

DEFAULT_BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite writer waits for another writer before giving up."""

WRITE_TRANSACTION = "schakel_write_transaction"
"""Connection execution option: the next transaction writes (``BEGIN IMMEDIATE`` on SQLite)."""

POOL_SIZE = 8
"""Pooled connections kept open; matches a small thread pool of store callers."""

POOL_OVERFLOW = 8
"""Extra connections opened under load before callers wait for a free one."""

_EXAMPLE_URLS = "sqlite:///var/audit.db or postgresql+psycopg://user:password@host/schakel"


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$SCHAKEL_DATABASE_URL`` if set and non-empty, else
    ``audit.db`` in the state directory."""
    if url:
        return url
    return Paths.from_env().database_url


def masked(url: URL | str) -> str:
    """``url`` for messages: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(
    url: str | None = None,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    existing: bool = False,
) -> Engine:
    """An engine for the audit database at ``url`` (see :func:`database_url`).

    With ``existing`` (commands that read an audit database), a SQLite file that is not there
    is an :class:`DatabaseError` naming where it was looked for, and nothing is created.

    Only SQLite (``sqlite://``, ``sqlite:///path``) and PostgreSQL with a synchronous driver
    are supported. The engine connects lazily: an unreachable server shows up as an
    :class:`DatabaseError` from the first store call.
    """
    try:
        parsed = make_url(database_url(url))
    except ArgumentError:
        raise DatabaseError(
            f"the audit database URL is not a valid SQLAlchemy URL. Fix: set "
            f"{DATABASE_URL_ENV} to e.g. {_EXAMPLE_URLS}."
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if existing:
            _require_file(parsed, url)
        engine = _sqlite_engine(parsed, busy_timeout_ms)
    elif backend == "postgresql":
        engine = _postgresql_engine(parsed)
    else:
        raise DatabaseError(
            f"audit database {masked(parsed)}: {backend} is not supported. "
            f"Fix: use {_EXAMPLE_URLS}."
        )
    if engine.dialect.is_async:
        engine.dispose()
        raise DatabaseError(
            f"audit database {masked(parsed)} names an asyncio driver. Fix: use a synchronous "
            "one (sqlite:// or postgresql+psycopg://); the router calls the store from a thread."
        )
    return engine


def is_memory_sqlite(url: URL) -> bool:
    """Whether ``url`` is a private in-memory SQLite database."""
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    options: dict[str, Any] = {
        "hide_parameters": True,
        "connect_args": {"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    }
    if is_memory_sqlite(url):
        # One shared connection, or every thread would see its own empty database.
        options["poolclass"] = StaticPool
    else:
        options.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=30)
        database = url.database or ""
        if not database.startswith("file:"):
            _create_parent(Path(database), url)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", partial(_configure_sqlite, busy_timeout_ms=busy_timeout_ms))
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def _require_file(url: URL, configured: str | None) -> None:
    database = url.database or ""
    if is_memory_sqlite(url) or database.startswith("file:") or Path(database).is_file():
        return
    where = "" if configured or os.environ.get(DATABASE_URL_ENV, "").strip() else state_hint()
    raise DatabaseError(
        f"no audit database at {Path(database).absolute()}"
        + (f" ({where})" if where else f"; fix: point --database or {DATABASE_URL_ENV} at it")
    )


def _create_parent(path: Path, url: URL) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(
            f"cannot create the directory of audit database {masked(url)}: {error.strerror}. "
            f"Fix: create it, or set {DATABASE_URL_ENV} to a writable location."
        ) from None


def _configure_sqlite(
    dbapi_connection: Any, _record: ConnectionPoolEntry, *, busy_timeout_ms: int
) -> None:
    """Per new SQLite connection: transactions are begun by :func:`_begin_sqlite`, not by the
    driver (the recipe in SQLAlchemy's SQLite dialect documentation), then the pragmas."""
    connection: sqlite3.Connection = dbapi_connection
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_TRANSACTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgresql_engine(url: URL) -> Engine:
    try:
        return create_engine(
            url,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_recycle=1800,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_timeout=30,
        )
    except (ImportError, NoSuchModuleError) as error:
        raise DatabaseError(
            f"audit database {masked(url)}: the PostgreSQL driver is not installed "
            f"({error}). Fix: install psycopg (pip install 'psycopg[binary]') and use a "
            "postgresql+psycopg:// URL."
        ) from None
