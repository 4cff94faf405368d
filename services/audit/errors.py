"""Errors of the audit store, and the translation of database errors into them.

Every failure the store reports is an :class:`AuditStoreError` whose message names what went
wrong and how to fix it. Messages never carry a record body or a database password: URLs are
shown with the password masked, and only the first line of a driver message is quoted (drivers
such as PostgreSQL append a ``DETAIL`` line that can repeat a whole failing row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from services.database.errors import DatabaseError

_QUOTE_LIMIT = 300


class AuditStoreError(DatabaseError):
    """The audit store could not do what was asked: bad input, or a database problem (a
    :class:`DatabaseError` of the audit tables; reaching or upgrading the database itself
    raises the plain :class:`DatabaseError`)."""


def driver_message(error: BaseException) -> str:
    """The first line of the driver's own message (never parameters, never ``DETAIL``)."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0][:_QUOTE_LIMIT] if lines else type(original).__name__


def _locked(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return "locked" in text or "database is busy" in text


def _no_tables(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _cannot_open(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return "unable to open database file" in text


def _pool_exhausted(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return isinstance(error, sa_exc.TimeoutError)


def _refused_data(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return isinstance(error, sa_exc.IntegrityError | sa_exc.DataError)


def _unreachable(error: sa_exc.SQLAlchemyError, text: str) -> bool:
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)


_EXPLANATIONS: tuple[tuple[Callable[[sa_exc.SQLAlchemyError, str], bool], str], ...] = (
    (
        _locked,
        "audit database {url} is locked: another writer held it longer than the busy timeout "
        "while {operation} ({quoted}). Fix: make sure only one hub writes to this file, or "
        "raise the busy timeout (make_engine(url, busy_timeout_ms=...)).",
    ),
    (
        _no_tables,
        "audit database {url} has no audit tables while {operation} ({quoted}). "
        "Fix: point --database or SCHAKEL_DATABASE_URL at the hub's audit database, or start "
        "the hub once (`schakel up`) to create it (in code: SqlAuditStore.create_schema()).",
    ),
    (
        _cannot_open,
        "cannot open the SQLite audit database {url} while {operation} ({quoted}). Fix: check "
        "that its directory exists and is writable, or point SCHAKEL_DATABASE_URL elsewhere.",
    ),
    (
        _pool_exhausted,
        "no free connection to audit database {url} while {operation}: the connection pool is "
        "exhausted. Fix: call the store from fewer threads at once.",
    ),
    (
        _refused_data,
        "audit database {url} refused the data while {operation} ({quoted}). Fix: build "
        "records with services.core.records and outbox entries with every field set.",
    ),
    (
        _unreachable,
        "cannot use audit database {url} while {operation} ({quoted}). Fix: check "
        "SCHAKEL_DATABASE_URL, that the database server runs and accepts connections, and that "
        "the disk is not full.",
    ),
)


def database_error(error: sa_exc.SQLAlchemyError, *, operation: str, url: str) -> AuditStoreError:
    """An :class:`AuditStoreError` for a database failure while doing ``operation``."""
    quoted = driver_message(error)
    text = quoted.lower()
    for applies, explanation in _EXPLANATIONS:
        if applies(error, text):
            return AuditStoreError(explanation.format(url=url, operation=operation, quoted=quoted))
    return AuditStoreError(f"audit database {url} failed while {operation}: {quoted}")


@contextmanager
def translated(operation: str, url: str) -> Iterator[None]:
    """Turn SQLAlchemy errors raised inside the block into :class:`AuditStoreError`.

    The SQLAlchemy error is not chained (``from None``): its text holds the SQL statement and,
    on engines not made by :func:`~services.database.engine.make_engine`, the bound parameters,
    that is record bodies. The new message quotes what is needed to act on the failure.
    """
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise database_error(error, operation=operation, url=url) from None
