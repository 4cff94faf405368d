"""The embedded broker: one interface for every Kafka-protocol broker the hub can run itself.

:class:`EmbeddedBroker` is what the hub and the tests program against; :class:`ChildProcessBroker`
implements it once for any broker binary that takes a loopback port and a data directory on
its command line — subclasses only say how to build that command line and what the broker
can do (``persistent``, ``supports_transactions``).

Start-up is complete only when the port answers real Kafka requests (ApiVersions and Metadata,
see :mod:`services.broker.probe`) and the broker advertises exactly the loopback address
clients were given, within a bounded time; a child that exits during start-up is reported with
the tail of its log. A broker started on a port the kernel picked keeps that port for
``restart()``, so clients holding the bootstrap address reconnect to the restarted broker.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal, Protocol, Self, runtime_checkable

from services.broker.errors import BrokerError
from services.broker.probe import probe
from services.broker.process import (
    LOOPBACK,
    ChildProcess,
    child_environment,
    free_loopback_port,
    port_is_free,
    wait_until,
)

log = logging.getLogger(__name__)

BrokerKind = Literal["tansu", "noida"]

#: Attempts to start on a kernel-picked port before giving up (another program may take the
#: port between picking and binding it).
_PORT_ATTEMPTS = 3


@runtime_checkable
class EmbeddedBroker(Protocol):
    """A Kafka-protocol broker running as a child process on 127.0.0.1."""

    @property
    def name(self) -> BrokerKind:
        """Which broker this is."""
        ...

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for clients."""
        ...

    @property
    def port(self) -> int:
        """The loopback port (picked at the first start when none was given)."""
        ...

    @property
    def data_dir(self) -> Path:
        """The directory the hub gave the broker for its data and log."""
        ...

    @property
    def persistent(self) -> bool:
        """Whether topics, records and committed offsets survive a clean restart."""
        ...

    @property
    def supports_transactions(self) -> bool:
        """Whether transactional and idempotent producers work against this broker."""
        ...

    @property
    def pid(self) -> int | None:
        """The child's process id, or None if it was never started."""
        ...

    def start(self) -> None:
        """Start the child and return once it answers Kafka requests."""
        ...

    def stop(self) -> None:
        """Stop the child gracefully (a persistent broker saves its data)."""
        ...

    def kill(self) -> None:
        """Kill the child at once (SIGKILL), as a crash would."""
        ...

    def restart(self) -> None:
        """Stop and start again on the same port."""
        ...

    def is_healthy(self) -> bool:
        """Whether the child runs and answers Kafka requests right now."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class ChildProcessBroker(ABC):
    """An :class:`EmbeddedBroker` run from a binary that takes its port on the command line."""

    kind: ClassVar[BrokerKind]
    is_persistent: ClassVar[bool]
    has_transactions: ClassVar[bool]
    #: Seconds ``stop()`` waits after SIGTERM before SIGKILL, unless the caller gives its own.
    default_stop_timeout: ClassVar[float] = 30.0
    #: Seconds ``start()`` waits for the broker to answer, unless the caller gives its own.
    default_startup_timeout: ClassVar[float] = 30.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        startup_timeout: float | None = None,
        stop_timeout: float | None = None,
    ) -> None:
        self._data_dir = data_dir.resolve()
        self._port = port
        self.startup_timeout = (
            self.default_startup_timeout if startup_timeout is None else startup_timeout
        )
        self.stop_timeout = self.default_stop_timeout if stop_timeout is None else stop_timeout
        self._child: ChildProcess | None = None

    @abstractmethod
    def command(self, port: int) -> list[str]:
        """The command line that runs the broker on ``127.0.0.1:port`` with data in data_dir."""

    def check_platform(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Raise :class:`BrokerError` if this machine cannot run the broker (before starting)."""

    @property
    def name(self) -> BrokerKind:
        return self.kind

    @property
    def persistent(self) -> bool:
        return self.is_persistent

    @property
    def supports_transactions(self) -> bool:
        return self.has_transactions

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """Where the broker's stdout and stderr go."""
        return self._data_dir / f"{self.kind}.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError(f"{self.kind} has no port yet; start it first")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def start(self) -> None:
        if self._child is not None and self._child.is_running():
            raise BrokerError(f"{self.kind} is already running on {self.bootstrap}")
        self.check_platform()
        self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        attempts = _PORT_ATTEMPTS if self._port is None else 1
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else free_loopback_port()
            if not port_is_free(port):
                raise BrokerError(
                    f"cannot start {self.kind}: {LOOPBACK}:{port} is in use by another "
                    f"program; stop it (`ss -ltnp 'sport = :{port}'` shows which) or choose "
                    "another port"
                )
            child = ChildProcess(
                self.command(port),
                cwd=self._data_dir,
                log_path=self.log_path,
                env=child_environment(self._data_dir),
                name=self.kind,
            )
            began = time.monotonic()
            child.start()
            self._child = child
            try:
                healthy = self._await_healthy(child, port)
            except BrokerError:
                child.stop(timeout=5.0)
                raise
            if healthy:
                self._port = port
                log.info(
                    "%s broker healthy on %s:%d in %.2f s (pid %s)",
                    self.kind,
                    LOOPBACK,
                    port,
                    time.monotonic() - began,
                    child.pid,
                )
                return
            exited = not child.is_running()
            child.stop(timeout=5.0)
            if exited and attempt < attempts:
                log.warning("%s exited during start-up on port %d; retrying", self.kind, port)
                continue
            reason = (
                f"exited with status {child.returncode} during start-up"
                if exited
                else f"did not answer Kafka requests within {self.startup_timeout:.0f} s"
            )
            raise BrokerError(
                f"{self.kind} on {LOOPBACK}:{port} {reason}; see {self.log_path}:\n"
                f"{child.log_tail()}"
            )

    def _await_healthy(self, child: ChildProcess, port: int) -> bool:
        def ready() -> bool:
            return not child.is_running() or self._answers(port)

        finished = wait_until(ready, timeout=self.startup_timeout)
        return finished and child.is_running()

    def _answers(self, port: int) -> bool:
        try:
            brokers = probe(LOOPBACK, port, timeout=1.0)
        except (OSError, BrokerError):
            return False
        advertised = {b.address for b in brokers}
        if advertised != {f"{LOOPBACK}:{port}"}:
            raise BrokerError(
                f"{self.kind} on {LOOPBACK}:{port} advertises {sorted(advertised)}; clients "
                f"could not reach it — its advertised listener must be {LOOPBACK}:{port}"
            )
        return True

    def stop(self) -> None:
        if self._child is not None:
            status = self._child.stop(timeout=self.stop_timeout)
            log.info("%s broker stopped (status %s)", self.kind, status)

    def kill(self) -> None:
        if self._child is not None:
            self._child.kill()
            log.info("%s broker killed", self.kind)

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_healthy(self) -> bool:
        if self._child is None or not self._child.is_running() or self._port is None:
            return False
        try:
            return self._answers(self._port)
        except BrokerError:
            return False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{LOOPBACK}:{self._port}" if self._port is not None else "no port yet"
        return f"<{type(self).__name__} {where} data_dir={self._data_dir}>"
