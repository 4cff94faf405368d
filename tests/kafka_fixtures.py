"""Fixtures that start real Kafka-protocol brokers on 127.0.0.1 (see services/broker).

* ``broker`` — a running embedded broker, parametrised over ``SCHAKEL_TEST_BROKERS``
  (default ``tansu,noida``). Session-scoped: each broker starts once for the whole run (kept
  in ``broker_pool``), so tests sharing it must use their own topic names (``unique_topic``)
  and must not stop it. Tests that parametrise over brokers themselves (e.g. alongside an
  in-memory double) call ``broker_pool.get(kind)`` to share the same instances.
* ``kafka_settings`` — client settings for ``broker`` (restarts it first if an earlier test
  left it unhealthy).
* ``topic_admin`` — a :class:`KafkaTopicAdmin` on ``kafka_settings``, closed afterwards.
* ``broker_factory`` — builds private brokers in the test's tmp dir for tests that stop,
  restart or kill them; every broker it built is killed at teardown, whatever the test did.
* ``unique_topic`` — a function returning a fresh legal topic name per call.

Every test that uses one of the broker fixtures is marked ``kafka`` automatically (and
should say ``pytestmark = pytest.mark.kafka`` itself), so ``-m "not kafka"`` runs without
brokers.

Faust in-process: :func:`faust_test_app` builds an app configured for tests (web server
off, no topic declaration, no leader topic, short session timeout, data in a tmp dir) and
:func:`running_faust_app` runs it inside the test's event loop with a
:class:`InProcessWorker` — a ``faust.Worker`` that neither blocks in ``start()`` nor installs
signal handlers, changes directory, redirects stdout or reconfigures logging — and waits
until the consumer has its partitions. Router tests reuse both.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

# kafka-python 3.0 loads its protocol schemas with deprecated importlib.resources calls when
# first imported (by services.broker below); that noise is not ours to fix.
_KAFKA_PYTHON_NOISE = r"(read|open)_text is deprecated"
warnings.filterwarnings("ignore", message=_KAFKA_PYTHON_NOISE, category=DeprecationWarning)

import faust  # noqa: E402

from services.broker import (  # noqa: E402
    BrokerKind,
    EmbeddedBroker,
    KafkaSettings,
    KafkaTopicAdmin,
    make_broker,
)

ENV_TEST_BROKERS = "SCHAKEL_TEST_BROKERS"
ALL_BROKERS: tuple[BrokerKind, ...] = ("tansu", "noida")
_BROKER_FIXTURES = {"broker", "broker_pool", "kafka_settings", "topic_admin", "broker_factory"}


def selected_brokers() -> list[BrokerKind]:
    """The brokers named by ``SCHAKEL_TEST_BROKERS`` (comma-separated), default all."""
    raw = os.environ.get(ENV_TEST_BROKERS, "").strip()
    if not raw:
        return list(ALL_BROKERS)
    chosen: list[BrokerKind] = []
    for name in (part.strip().lower() for part in raw.split(",")):
        kind = next((k for k in ALL_BROKERS if k == name), None)
        if kind is None:
            raise pytest.UsageError(
                f"{ENV_TEST_BROKERS}={raw!r}: {name!r} is not one of {', '.join(ALL_BROKERS)}"
            )
        if kind not in chosen:
            chosen.append(kind)
    return chosen


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def pytest_configure(config: pytest.Config) -> None:
    """Silence kafka-python 3.0's own use of deprecated importlib.resources calls."""
    config.addinivalue_line("filterwarnings", f"ignore:{_KAFKA_PYTHON_NOISE}:DeprecationWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a broker fixture ``kafka``."""
    for item in items:
        if _BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


class BrokerPool:
    """Session-wide embedded brokers, started on first use and stopped at the end."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._running: dict[BrokerKind, EmbeddedBroker] = {}

    def get(self, kind: BrokerKind) -> EmbeddedBroker:
        """The running broker of ``kind``; restarted if an earlier test left it unhealthy."""
        broker = self._running.get(kind)
        if broker is None:
            broker = make_broker(kind, self._root / kind)
            broker.start()
            self._running[kind] = broker
        elif not broker.is_healthy():
            broker.restart()
        return broker

    def stop_all(self) -> None:
        for broker in self._running.values():
            broker.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def broker_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerPool]:
    pool = BrokerPool(tmp_path_factory.mktemp("brokers"))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session", params=selected_brokers())
def broker(request: pytest.FixtureRequest, broker_pool: BrokerPool) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    return broker_pool.get(kind)


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker, broker_pool: BrokerPool) -> KafkaSettings:
    return KafkaSettings.local(broker_pool.get(broker.name).bootstrap)


@pytest.fixture
def topic_admin(kafka_settings: KafkaSettings) -> Iterator[KafkaTopicAdmin]:
    with KafkaTopicAdmin(kafka_settings) as admin:
        yield admin


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., EmbeddedBroker]]:
    built: list[EmbeddedBroker] = []

    def build(
        kind: BrokerKind, *, name: str | None = None, port: int | None = None
    ) -> EmbeddedBroker:
        made = make_broker(kind, tmp_path / (name or f"{kind}-{len(built)}"), port)
        built.append(made)
        return made

    try:
        yield build
    finally:
        for made in built:
            made.kill()


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    stem = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60]

    def name(role: str = "t") -> str:
        return f"{stem}.{role}.{uuid.uuid4().hex[:8]}"

    return name


# --- Faust in-process -----------------------------------------------------------------------


class InProcessWorker(faust.Worker):
    """A faust.Worker for running an app inside an existing event loop (tests, embedding).

    ``faust.Worker.start()`` normally blocks until the worker stops (``daemon=True``),
    installs SIGINT/SIGTERM handlers on the loop, may ``chdir`` and reconfigures logging and
    stdout; none of that is wanted inside pytest, so this subclass turns it off.
    """

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        sink = io.StringIO()
        super().__init__(
            app,
            loop=asyncio.get_running_loop(),
            daemon=False,
            quiet=True,
            override_logging=False,
            redirect_stdouts=False,
            stdout=sink,
            stderr=sink,
            workdir=Path.cwd(),
            **kwargs,
        )

    def install_signal_handlers(self) -> None:
        """Leave the loop's signal handling to pytest."""


def faust_test_app(
    app_id: str, settings: KafkaSettings, datadir: Path, **overrides: Any
) -> faust.App:
    """A Faust app for tests against ``settings``; create it inside the running event loop.

    Topics are never declared by Faust (the hub creates them with ``ensure_topics``), the
    leader-election topic is off, the web server is off, and the session timeout is 10 s —
    on Tansu a group join waits half of it.
    """
    config: dict[str, Any] = {
        "broker": settings.faust_broker_url(),
        "broker_credentials": settings.faust_credentials(),
        "web_enabled": False,
        "datadir": str(datadir),
        "store": "memory://",
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger": 0.005,
    }
    config.update(overrides)
    return faust.App(app_id, **config)


@asynccontextmanager
async def running_faust_app(
    app: faust.App, *, ready_timeout: float = 30.0, stop_timeout: float = 30.0
) -> AsyncIterator[faust.App]:
    """Run ``app`` in this event loop until the block ends; ready = partitions assigned."""
    worker = InProcessWorker(app)
    try:
        await asyncio.wait_for(worker.start(), ready_timeout)
        if app.agents:
            await _wait_for_assignment(app, ready_timeout)
        yield app
    finally:
        await asyncio.wait_for(worker.stop(), stop_timeout)


async def _wait_for_assignment(app: faust.App, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not app.consumer.assignment():
        if time.monotonic() > deadline:
            raise TimeoutError(f"faust app {app.conf.id} got no partitions within {timeout} s")
        await asyncio.sleep(0.05)
