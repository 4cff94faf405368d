"""A batch's validation and signature checks run off the event loop, so a large batch does not
stall every other request the gateway is serving meanwhile (long-polls, probes)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.gateway.ingest import Ingest
from tests.gateway.helpers import make_gateway, memory_broker, signal, sqlite_engine

pytestmark = pytest.mark.timeout(60)


def test_checks_run_in_a_worker_thread_and_good_signals_still_go_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = make_gateway(sqlite_engine(), memory_broker())
    threads: set[int] = set()
    check_all = Ingest._check_all

    def recording(self: Ingest, *args: object) -> object:
        threads.add(threading.get_ident())
        return check_all(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Ingest, "_check_all", recording)

    async def submit() -> tuple[int, object]:
        outcome = await gateway.ingest.submit("liander", [signal(1), signal(2), {"id": 3}])
        return threading.get_ident(), outcome

    loop_thread, outcome = asyncio.run(submit())
    assert threads and loop_thread not in threads
    assert outcome.accepted == [signal(1)["id"], signal(2)["id"]]  # type: ignore[attr-defined]
    assert [p.code for p in outcome.rejected] == ["invalid_envelope"]  # type: ignore[attr-defined]
