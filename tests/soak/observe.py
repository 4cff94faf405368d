"""What the soak watches and reads back: supervision and memory of the workers, feeds, the
audit database, logs and metrics, and the canary scan over all of them."""

from __future__ import annotations

import asyncio
import base64
import re
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.hub.workers import WorkerPool


def rss_mb(pid: int) -> float | None:
    """Resident set size of a live process in MiB (Linux /proc), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


@dataclass
class Supervisor:
    """Restarts dead workers (as ``schakel up`` does) and samples their memory, in a thread."""

    pools: list[WorkerPool]
    events: list[str] = field(default_factory=list)
    rss: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Samples per pid, in MiB."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pool in self.pools:
                self.events.extend(pool.supervise())
                for pid in pool.pids():
                    sample = rss_mb(pid)
                    if sample is not None:
                        self.rss[pid].append(sample)

    def pids(self) -> list[int]:
        return [pid for pool in self.pools for pid in pool.pids()]

    def peak_rss(self) -> float:
        return max((max(s) for s in self.rss.values() if s), default=0.0)

    def growth_mb(self) -> float:
        """Largest rise of one worker's memory from its median first-quarter sample to its
        last sample (a leak shows as steady growth; restarts start new series)."""
        rises = [0.0]
        for samples in self.rss.values():
            if len(samples) >= 8:
                first = sorted(samples[: len(samples) // 4])
                rises.append(samples[-1] - first[len(first) // 2])
        return max(rises)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` every 0.25 s; seconds waited, or AssertionError naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def read_topics(settings: KafkaSettings, topics: Iterable[str]) -> dict[str, list[bytes]]:
    """Every message now in each topic, from the beginning of every partition to its end.

    End offsets come from :meth:`KafkaTopicAdmin.end_offsets`, which corrects Tansu's answer.
    """
    with KafkaTopicAdmin(settings) as admin:
        ends = {topic: admin.end_offsets(topic) for topic in topics}

    async def read() -> dict[str, list[bytes]]:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_kwargs_aiokafka())
        await consumer.start()
        out: dict[str, list[bytes]] = {}
        try:
            for topic, end in ends.items():
                out[topic] = []
                tps = {TopicPartition(topic, p): offset for p, offset in end.items() if offset}
                if not tps:
                    continue
                consumer.assign(list(tps))
                await consumer.seek_to_beginning(*tps)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    behind = [
                        tp for tp, offset in tps.items() if await consumer.position(tp) < offset
                    ]
                    if not behind:
                        break
                    batch = await consumer.getmany(*behind, timeout_ms=500, max_records=5000)
                    out[topic].extend(m.value for ms in batch.values() for m in ms if m.value)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())


def database_cells(db: Path) -> Iterable[tuple[str, str | None, str]]:
    """(table, recipient or None, text) for every cell of every table of the SQLite audit
    database; binary cells are decoded, so a value inside a stored message is seen too."""
    with sqlite3.connect(db, timeout=30) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the db itself
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                recipient = row[columns.index("recipient")] if "recipient" in columns else None
                for cell in row:
                    if isinstance(cell, bytes):
                        yield table, recipient, cell.decode("utf-8", "replace")
                    elif cell is not None:
                        yield table, recipient, str(cell)


def dead_letter_texts(values: Iterable[bytes]) -> Iterable[str]:
    """A dead letter as stored, and the original bytes it carries (base64) decoded."""
    for value in values:
        yield value.decode("utf-8", "replace")
        try:
            original = orjson.loads(value).get("original", "")
            yield base64.b64decode(original).decode("utf-8", "replace")
        except (orjson.JSONDecodeError, AttributeError, ValueError):
            continue


@dataclass
class Scan:
    """Where each canary was found; ``allowed`` = (canary, recipient) disclosures by `keep`.

    ``pattern`` finds every candidate token (each canary form matches it) and a dictionary
    names the canary, so a scan costs one regex pass per text, whatever the number of canaries.
    """

    forms: dict[str, set[str]]
    allowed: set[tuple[str, str]]
    pattern: re.Pattern[str]
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    allowed_hits: int = 0
    scanned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _by_form: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_form = {form: canary for canary, forms in self.forms.items() for form in forms}
        for form in self._by_form:
            if not self.pattern.fullmatch(form):
                raise AssertionError(f"canary form {form!r} escapes the scan pattern")

    def text(self, where: str, text: str, recipient: str | None = None) -> None:
        self.scanned[where] += 1
        for token in self.pattern.findall(text):
            canary = self._by_form.get(token)
            if canary is None:
                continue
            if recipient is not None and (canary, recipient) in self.allowed:
                self.allowed_hits += 1
            else:
                self.hits[f"{where}: {canary}"] += 1


def post_mortem(supervisor: Supervisor, log_dir: Path, missing: int, lines: int = 40) -> str:
    """What a failed soak run shows about its workers: how many expected records are missing,
    which workers are alive (one alive whose log ends in a failed loop is hung), the
    supervisor's events, and the end of every worker log (the logs hold no raw
    identifiers: the canary scan checks that on a run that gets that far)."""
    out = [
        f"expected audit records missing: {missing}",
        f"workers alive now (pids): {supervisor.pids()}",
        "supervisor events:",
    ]
    out += [f"  {event}" for event in supervisor.events[-30:]]
    for log in sorted(log_dir.rglob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out += [f"--- {log.relative_to(log_dir)} (last {len(tail)} lines)", *tail]
    return "\n".join(out)
