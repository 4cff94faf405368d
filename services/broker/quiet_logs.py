"""One line while the broker is away, instead of the Kafka clients' ten a second.

When the broker stops answering, aiokafka logs every failed connection, metadata refresh and
produce retry (``Unable connect to node``, ``Unable to update metadata``,
``NodeNotReadyError``): about ten lines per 100 ms, which buries what the hub itself says.
:class:`BrokerOutage` is a logging filter for the console handler: the first such line
becomes one clear WARNING, the rest are counted, not shown; :meth:`BrokerOutage.back` (or a
quiet spell of :data:`QUIET_S`) ends the outage and says how many lines were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

CLIENT_LOGGERS = ("aiokafka", "kafka")
CONNECTION_WORDS = (
    "Unable connect to node",
    "Unable to connect",
    "Unable to update metadata",
    "Unable to request metadata",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connection refused",
    "connection refused",
    "RequestTimedOutError",
    "Got error produce response",
    "Failed fetch messages",
    "coordinator dead",
    "Coordinator dead",
    "GroupCoordinatorNotAvailableError",
    "socket disconnected",
    "Bootstrap failed",
    "Unable to bootstrap",
    "Metadata refresh",
    "KafkaTimeoutError",
)
QUIET_S = 30.0
"""No client connection error for this long: the outage is over (external clusters, which
the hub does not probe)."""

log = logging.getLogger("schakel.hub")


class BrokerOutage(logging.Filter):
    """Collapses the Kafka clients' connection errors into one line per outage."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self.active = False
        self.suppressed = 0
        self._last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(CLIENT_LOGGERS) or not _about_connection(record):
            return True
        now = self._clock()
        if self.active and now - self._last > QUIET_S:
            self.active = False
        self._last = now
        if self.active:
            self.suppressed += 1
            return False
        self.active = True
        self.suppressed = 0
        kind = _kind(record)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "the broker is not reachable (%s); the clients retry quietly until it is back"
        record.args = (kind,)
        record.exc_info = record.exc_text = record.stack_info = None
        return True

    def back(self) -> int | None:
        """End an outage (the broker answers again): how many lines were held back, or None
        when there was none."""
        if not self.active:
            return None
        self.active = False
        return self.suppressed


def _about_connection(record: logging.LogRecord) -> bool:
    if record.levelno < logging.WARNING:
        return False
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += " " + record.exc_info[1].__class__.__name__
    return any(word in text for word in CONNECTION_WORDS)


def _kind(record: logging.LogRecord) -> str:
    text = record.getMessage()
    return next((word for word in CONNECTION_WORDS if word in text), "connection error")


def install(outage: BrokerOutage, logger: logging.Logger | None = None) -> None:
    """Put ``outage`` on every handler of ``logger`` (the root logger), where records of
    every client logger pass."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(outage)
