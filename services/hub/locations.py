"""Where each part of the hub's state is, and what its broker keeps across a stop and start.

``schakel up`` prints both when it starts and ``schakel status`` repeats the broker's line; the
words are defined once here so the banner, the status and the docs say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.config import DATABASE_URL_ENV, KEYS_ENV, Paths

# SQLAlchemy and the audit package are imported where the locations are worked out (by
# `schakel up` only): `schakel status` imports this module for durability() alone (≈ 0.2 s)

PERSISTENT = (
    "persistent: topics, feed messages and committed offsets are kept across a stop and start"
)
MEMORY_ONLY = (
    "MEMORY ONLY: every stop loses all topics, messages and committed offsets; at the next "
    "start the hub re-delivers unconsumed feed messages from the audit store, but signals not "
    "yet routed are lost (SCHAKEL_EMBEDDED_BROKER=noida keeps them)"
)
EXTERNAL = "external cluster: kept as the cluster's replication keeps it"


def durability(broker: str, persistent: bool | None) -> str:
    """What ``broker`` (an embedded broker's name, or ``external``) keeps across a restart."""
    if broker == "external" or persistent is None:
        return EXTERNAL
    return PERSISTENT if persistent else MEMORY_ONLY


@dataclass(frozen=True)
class Location:
    """One part of the hub's state: what it is, where, and what placed it outside the state
    directory (a variable), if anything did."""

    part: str
    where: str
    apart: str | None = None

    def line(self) -> str:
        return f"{self.where} (set apart by {self.apart})" if self.apart else self.where


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _database_inside(url: str, directory: Path) -> bool:
    """Whether ``url`` is a SQLite file in ``directory``."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the imports
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415 - see the imports

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name:
        return False
    return _inside(Path(name), directory)


def state_locations(
    paths: Paths, witness: Path, broker_data: Path | None, *, memory_only: bool = False
) -> list[Location]:
    """Where the state directory, key file, audit database, witness, broker data and logs
    are (absolute); ``broker_data`` None means an external cluster keeps the messages."""
    from services.audit.witness import WITNESS_ENV  # noqa: PLC0415 - see the imports
    from services.database.engine import masked  # noqa: PLC0415 - see the imports

    where = paths.absolute()
    state = where.state
    if broker_data is None:
        kafka = Location("kafka data", "kept by the external cluster")
    elif memory_only:
        kafka = Location("kafka data", f"in memory only (log in {broker_data.resolve()})")
    else:
        kafka = Location("kafka data", str(broker_data.resolve()))
    return [
        Location("state", str(state)),
        Location(
            "keys",
            str(where.key_file),
            KEYS_ENV if not _inside(where.key_file, state) else None,
        ),
        Location(
            "audit",
            masked(where.database_url),
            None if _database_inside(where.database_url, state) else DATABASE_URL_ENV,
        ),
        Location(
            "witness",
            str(witness.resolve()),
            WITNESS_ENV if not _inside(witness, state) else None,
        ),
        kafka,
        Location("logs", str(where.logs)),
    ]
