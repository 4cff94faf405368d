"""The soak's hub, set up as ``schakel up`` runs it, and the faults it is put through."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from services.audit.store import SqlAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.config import ROOT, Loaded, Paths, load_policy
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.pseudonyms import Pseudonymiser
from services.core.records import audit_record
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance
from services.hub.workers import WorkerPool
from services.keys.file_store import FileKeyStore
from services.router.topics import TopicLayout, partner_of
from tests.postgres_fixtures import free_port
from tests.soak.observe import Supervisor, wait_for
from tests.soak.traffic import Canaries, Published


@dataclass
class SoakHub:
    broker: EmbeddedBroker
    settings: KafkaSettings
    db: Path
    store: SqlAuditStore
    loaded: Loaded
    spec: dict[str, int]
    env: dict[str, str]
    ports: list[int] = field(default_factory=list)
    pools: list[WorkerPool] = field(default_factory=list)

    @property
    def policy(self) -> Policy:
        assert self.loaded.policy is not None
        return self.loaded.policy

    @property
    def recipients(self) -> list[str]:
        return sorted(self.policy.recipients)

    def maintenance(self) -> Maintenance:
        return Maintenance(self.settings, self.store, self.spec, self.recipients)

    def start_workers(self, count: int, log_dir: Path) -> Supervisor:
        """``count`` supervised worker processes, each serving its own /metrics port."""
        for index in range(count):
            port = free_port()
            pool = WorkerPool(
                1,
                self.env | {"SCHAKEL_METRICS_PORT": str(port)},
                log_dir / str(index),
                extra_args=("--instance", f"soak-{index}", "--batch", "200"),
            )
            pool.start()
            self.ports.append(port)
            self.pools.append(pool)
        supervisor = Supervisor(self.pools)
        supervisor.start()
        return supervisor

    def stop(self) -> None:
        for pool in self.pools:
            pool.stop(timeout=15)

    def restarts(self) -> int:
        """Worker restarts by the supervisor so far."""
        return sum(w.restarts for pool in self.pools for w in pool.workers)

    def exited(self) -> int:
        """Workers that have exited and wait for their restart."""
        return sum(
            1
            for pool in self.pools
            for w in pool.workers
            if w.process is not None and w.process.poll() is not None
        )

    def audit_rows(self) -> list[tuple[str, str, str | None]]:
        """(record id, result, recipient) of every audit record."""
        try:
            with sqlite3.connect(self.db, timeout=30) as conn:
                return list(conn.execute("SELECT record_id, result, recipient FROM audit_records"))
        except sqlite3.OperationalError:  # locked by the outage
            return []

    def feed_ids(self) -> dict[str, str]:
        """The exchange id each recipient was given -> the record id of its delivery."""
        with sqlite3.connect(self.db, timeout=30) as conn:
            return dict(
                conn.execute(
                    "SELECT json_extract(body, '$.feed_exchange_id'), record_id "
                    "FROM audit_records WHERE result = 'delivered'"
                )
            )

    def audited(self, expected: set[str]) -> Callable[[], bool]:
        return lambda: expected <= {row[0] for row in self.audit_rows()}

    def produced(self) -> bool:
        """Every delivered decision's feed message has been produced (offset recorded)."""
        return all(e.partition is not None for e in self.store.undelivered(limit=10_000_000))


def start_hub(broker: EmbeddedBroker, tmp: Path) -> SoakHub:
    broker.start()
    settings = KafkaSettings.local(broker.bootstrap)
    keys = tmp / "keys.json"
    FileKeyStore.create(keys)
    db = tmp / "audit.db"
    url = f"sqlite:///{db}"
    store = SqlAuditStore(make_engine(url))
    store.create_schema()
    paths = Paths.from_env({})
    loaded = load_policy(
        [ROOT / "covenants"],
        paths.schemas,
        paths.reference,
        Pseudonymiser(FileKeyStore.open(keys)),
        today=datetime.now(UTC).date(),
        demo=True,
    )
    assert loaded.policy is not None
    spec = TopicLayout(signal_partitions=4, feed_partitions=2).spec(
        loaded.policy.suppliers, loaded.policy.recipients
    )
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(spec)
    env = {
        "SCHAKEL_KAFKA_BOOTSTRAP": settings.bootstrap,
        "SCHAKEL_DATABASE_URL": url,
        "SCHAKEL_KEYS": str(keys),
        "SCHAKEL_STATE_DIR": str(tmp / "state"),
        "SCHAKEL_DEMO": "1",  # the soak traffic is signed with TEST keys
        # the workers write the audit store themselves (the soak starts no audit indexer; the
        # log-first paths have their crash tests in tests/router and tests/indexer)
        "SCHAKEL_AUDIT_PATH": "sql",
    }
    return SoakHub(broker, settings, db, store, loaded, spec, env)


def expectations(
    hub: SoakHub, records: list[Published], canaries: Canaries
) -> tuple[set[str], set[tuple[str, str]]]:
    """Every audit record id the input must produce, and the (canary, recipient) pairs a rule
    discloses with `keep` (computed with the same pure step the workers run)."""
    now = datetime.now(UTC)
    ids: set[str] = set()
    kept: set[tuple[str, str]] = set()
    fields = {where: canary for canary, where in canaries.where.items()}
    for record in records:
        outcome = process(
            record.value,
            hub.loaded.registry,
            hub.policy,
            now,
            expected_source=partner_of(record.topic),
        )
        if outcome.rejection is not None:
            ids.add(outcome.rejection.rejection_id)
        for decision in outcome.decisions:
            ids.add(audit_record(decision, actor="soak")["record_id"])
            for path, spec in decision.disclosed.items():
                canary = fields.get((decision.signal_id, path))
                if canary is not None and spec in ("keep", "plain"):
                    kept.add((canary, decision.recipient))
    return ids, kept


def publish(settings: KafkaSettings, records: list[Published]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(
            linger_ms=5, acks="all", max_request_size=2**20, **settings.client_kwargs_aiokafka()
        )
        await producer.start()
        try:
            for start in range(0, len(records), 2000):
                chunk = records[start : start + 2000]
                futures = [await producer.send(r.topic, r.value) for r in chunk]
                await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def kill_a_worker(supervisor: Supervisor, rng: random.Random) -> None:
    pids = supervisor.pids()
    assert pids, "no worker alive to kill"
    victim = rng.choice(pids)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in supervisor.pids(), 30, f"worker {victim} to die")


def db_outage(db: Path, seconds: float, until: Callable[[], bool], longest: float) -> float:
    """Hold the SQLite write lock for at least ``seconds`` (longer than the workers' busy
    timeout), and on until ``until()`` (a worker's write failed) or ``longest``: writes fail,
    the workers stop uncommitted and are restarted — as after a lost PostgreSQL connection.
    Returns how long the lock was held."""
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        began = time.monotonic()
        time.sleep(seconds)
        while not until() and time.monotonic() - began < longest:
            time.sleep(0.5)
        held = time.monotonic() - began
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return held


def restart_broker(hub: SoakHub, maintenance: Maintenance) -> tuple[int, int]:
    """Restart the broker; a maintenance tick recreates lost topics and re-delivers the
    outbox (as ``schakel up`` does every 2 s). Returns (topics recreated, re-delivered)."""
    hub.broker.restart()
    reports = []

    def ticked() -> bool:
        try:
            reports.append(maintenance.tick())
        except Exception:  # noqa: BLE001 - the broker may still be starting: try again
            return False
        return True

    wait_for(ticked, 60, "a maintenance tick after the broker restart")
    return len(reports[0].recreated), reports[0].redelivered
