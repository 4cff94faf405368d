"""Verifications of the audit log run from the web, in the background, with stored results.

Verifying re-reads the whole chain, so a page view must never do it. :class:`IntegrityRuns`
starts one verification at a time in a background thread on an explicit request, writes a
``running`` row to ``integrity_runs`` at once and the outcome when it ends; the integrity page
shows the newest finished row (who asked, when, the result, the records checked), which
survives a restart. A row still ``running`` when the app starts belongs to a process that
ended mid-way and is marked ``interrupted``.

A verification that fails with an error (not a finding: the database went away, say) is
stored as ``failed`` with the error's type only — error texts may quote stored values.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy import Engine, select, update

from services.audit.verify import Verification
from services.database.tables.web import integrity_runs
from services.web.sessions import Clock, utc, utc_now

log = logging.getLogger(__name__)

RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"


@dataclass(frozen=True, slots=True)
class Run:
    """One verification: who asked, when, its state and (once done) its outcome."""

    id: int
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    state: str
    ok: bool | None
    records: int | None
    outcome: dict[str, Any]
    """:meth:`Verification.to_json` when done; ``{"error": type}`` when failed."""

    @property
    def message(self) -> str:
        if self.state == DONE:
            return str(self.outcome.get("message", ""))
        if self.state == FAILED:
            kind = self.outcome.get("error", "an error")
            return (
                f"the verification could not finish ({kind}); see the hub's log and run it again."
            )
        if self.state == INTERRUPTED:
            return "the verification was interrupted by a restart; run it again."
        return "the verification is running."

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requested_by": self.requested_by,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "state": self.state,
            "ok": self.ok,
            "records": self.records,
            "message": self.message,
            "outcome": self.outcome,
        }


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class IntegrityRuns:
    """Runs ``check`` in a background thread on request and keeps the results in ``engine``."""

    def __init__(
        self, engine: Engine, check: Callable[[], Verification], clock: Clock = utc_now
    ) -> None:
        self._engine = engine
        self._check = check
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def recover(self) -> int:
        """Mark runs left ``running`` by an ended process as ``interrupted``; how many."""
        with self._lock, self._engine.begin() as connection:
            if self._thread is not None and self._thread.is_alive():
                return 0
            changed = connection.execute(
                update(integrity_runs)
                .where(integrity_runs.c.state == RUNNING)
                .values(state=INTERRUPTED, finished_at=self._clock())
            ).rowcount
        return int(changed)

    def start(self, user: str) -> tuple[Run, bool]:
        """Start a verification for ``user``; the run and True, or the one already running
        and False."""
        with self._lock:
            running = self.running()
            if running is not None and self._thread is not None and self._thread.is_alive():
                return running, False
            started = self._clock()
            with self._engine.begin() as connection:
                run_id = connection.execute(
                    integrity_runs.insert().values(
                        requested_by=user, started_at=started, state=RUNNING
                    )
                ).inserted_primary_key
            assert run_id is not None  # noqa: S101 (an insert always returns its key)
            number = int(run_id[0])
            self._thread = threading.Thread(
                target=self._run, args=(number,), name=f"integrity-run-{number}", daemon=True
            )
            self._thread.start()
        return Run(number, user, started, None, RUNNING, None, None, {}), True

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the running verification; True once none runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self, number: int) -> None:
        values: dict[str, Any]
        try:
            result = self._check()
        except Exception as error:  # noqa: BLE001 (any failure is stored, never lost)
            log.error("integrity run %d failed: %s", number, type(error).__name__)
            values = {"state": FAILED, "outcome": _json({"error": type(error).__name__})}
        else:
            values = {
                "state": DONE,
                "ok": result.ok,
                "records": result.records,
                "outcome": _json(result.to_json()),
            }
        with self._engine.begin() as connection:
            connection.execute(
                update(integrity_runs)
                .where(integrity_runs.c.id == number)
                .values(finished_at=self._clock(), **values)
            )

    def get(self, number: int) -> Run | None:
        return self._one(select(integrity_runs).where(integrity_runs.c.id == number))

    def running(self) -> Run | None:
        """The newest run still ``running``, if any."""
        statement = select(integrity_runs).where(integrity_runs.c.state == RUNNING)
        return self._one(statement.order_by(integrity_runs.c.id.desc()).limit(1))

    def last_finished(self) -> Run | None:
        """The newest run that ended (done, failed or interrupted), if any."""
        statement = select(integrity_runs).where(integrity_runs.c.state != RUNNING)
        return self._one(statement.order_by(integrity_runs.c.id.desc()).limit(1))

    def _one(self, statement: Any) -> Run | None:
        with self._engine.connect() as connection:
            row = connection.execute(statement).mappings().one_or_none()
        if row is None:
            return None
        return Run(
            id=int(row["id"]),
            requested_by=row["requested_by"],
            started_at=utc(row["started_at"]),
            finished_at=utc(row["finished_at"]) if row["finished_at"] else None,
            state=row["state"],
            ok=None if row["ok"] is None else bool(row["ok"]),
            records=None if row["records"] is None else int(row["records"]),
            outcome=orjson.loads(row["outcome"]) if row["outcome"] else {},
        )
