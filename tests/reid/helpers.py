"""Picking pseudonyms out of the audit records the fixture made."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, select

from services.core.identifiers import normalise


def delivered(
    records: list[dict[str, Any]], recipient: str, covenant: str, field: str, *, reidentify: bool
) -> dict[str, Any]:
    """The first delivered record to ``recipient`` under ``covenant`` with a pseudonymised
    ``field`` and the given ``reidentify``, whose pseudonym no record with the opposite
    ``reidentify`` carries."""
    others = {
        p
        for r in records
        if r["result"] == "delivered" and r["reidentify"] is not reidentify
        for p in r["pseudonyms"].values()
    }
    for record in records:
        if (
            record["result"] == "delivered"
            and record["recipient"] == recipient
            and record["covenant"]["id"] == covenant
            and record["reidentify"] is reidentify
            and record["pseudonyms"].get(field, "") not in others | {""}
        ):
            return record
    raise AssertionError(f"no such record for {recipient}/{covenant}/{field}")


def canonical(signal: dict[str, Any], field: str, kind: str) -> str:
    """The canonical value of ``field`` in a signal's data."""
    return normalise(kind, str(signal["data"][field]))


def everything_stored(engine: Engine) -> str:
    """Every value of every table in the database, as one text."""
    tables = MetaData()
    tables.reflect(engine)
    parts: list[str] = []
    with engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)).all():
                parts += [str(value) for value in row]
    return "\n".join(parts)
