"""``schakel audit purge``: delete audit records past their retention period, verifiably.

The purge leaves a signed commitment (the new anchor of the hash chain) in the database and a
checkpoint of it in the witness, and logs itself as an audit record
(:mod:`services.audit.retention`); ``schakel audit verify`` afterwards starts from that anchor.
``--dry-run`` only says what would go. Exit 0 on success (also when nothing was old enough),
2 when the purge could not be done. Output names counts, sequence numbers and times only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from services.cli.audit import DatabaseOption, WitnessOption, _fail, _witness_path
from services.core.errors import SchakelError

SigningKeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="Key store whose current signing key signs the purge commitment (default: "
        "$SCHAKEL_KEYS, else ./var/keys.json); not needed with --dry-run.",
        dir_okay=False,
        show_default=False,
    ),
]


def purge(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Purge records decided longer ago than this ISO 8601 duration, e.g. P365D "
            "(default: $SCHAKEL_AUDIT_RETENTION, else P730D).",
            show_default=False,
        ),
    ] = None,
    database: DatabaseOption = None,
    witness: WitnessOption = None,
    keys: SigningKeysOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be purged.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
) -> None:
    """Delete the audit records older than the retention period, leaving a signed anchor."""
    from services.audit.checkpoint import KeyStoreSigner, format_time
    from services.audit.checkpointer import Checkpointer
    from services.audit.retention import retention_period
    from services.audit.store import SqlAuditStore
    from services.audit.witness import FileWitness
    from services.cli.progress import progress

    try:
        cutoff = datetime.now(UTC) - retention_period(older_than)
        checkpointer = Checkpointer()
        if not dry_run:
            from services.keys import default_keys_path
            from services.keys.file_store import FileKeyStore

            where = _witness_path(witness) or _default_witness()
            checkpointer = Checkpointer(
                KeyStoreSigner(FileKeyStore.open(keys or default_keys_path())),
                FileWitness(where),
            )
        store = SqlAuditStore.open(database, checkpointer)
        try:
            if dry_run:
                plan = store.plan_purge(cutoff)
                result = {"dry_run": True, "cutoff": format_time(cutoff)}
                result.update(plan.to_json() if plan else {"records": 0})
            else:
                with progress("purging audit records") as told:
                    done = store.purge(cutoff, progress=told)
                result = {"dry_run": False, "cutoff": format_time(cutoff)}
                if done is None:
                    result["records"] = 0
                else:
                    result.update(
                        up_to_seq=done.seq,
                        records=done.records,
                        first_timestamp=format_time(done.first_timestamp),
                        last_timestamp=format_time(done.last_timestamp),
                        anchor_hash=done.chain_hash.hex(),
                        key_id=done.key_id,
                    )
        finally:
            store.close()
    except SchakelError as error:
        _fail(error)
    if json_output:
        typer.echo(orjson.dumps(result, option=orjson.OPT_SORT_KEYS).decode())
        return
    typer.echo(_sentence(result))


def _default_witness() -> Path:
    """Where ``schakel up`` keeps its witness, created by the purge if it is not there yet."""
    from services.audit.hub_store import witness_path
    from services.config import Paths

    return witness_path(Paths.from_env().state)


def _sentence(result: dict[str, object]) -> str:
    """The purge result in one line."""
    cutoff = result["cutoff"]
    if not result["records"]:
        return f"No audit records decided before {cutoff}; nothing to purge."
    span = f"decided {result['first_timestamp']} to {result['last_timestamp']}"
    if result["dry_run"]:
        return (
            f"Would purge {result['records']} audit records up to seq {result['up_to_seq']} "
            f"({span}, before {cutoff}). Nothing was deleted (--dry-run)."
        )
    return (
        f"Purged {result['records']} audit records up to seq {result['up_to_seq']} ({span}); "
        f"the chain now starts from the signed anchor {str(result['anchor_hash'])[:16]}… "
        f"(key {result['key_id']}), also written to the witness."
    )


def register(app: typer.Typer) -> None:
    """Attach ``purge`` to ``app`` (the ``schakel audit`` group)."""
    app.command("purge")(purge)


__all__ = ["purge", "register"]
