"""The gateway on a real HTTP server (uvicorn) fed raw, truncated and malformed requests.

TestClient cannot send a body shorter than its ``Content-Length`` or a broken chunked
encoding; a socket can. Whatever arrives, the server answers with no 5xx (or drops the
connection), logs no unhandled exception, and goes on serving good requests.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from services.database.engine import make_engine
from services.database.tables.gateway import metadata
from services.gateway.app import create_gateway_app
from tests.fuzz.test_gateway_fuzz import DEMO, FUZZ_SETTINGS, build
from tests.gateway.helpers import serving

pytestmark = pytest.mark.timeout(60)

BODY = orjson.dumps(next(s for s in DEMO if s["source"] == "liander"))


def requests(token: str) -> dict[str, bytes]:
    head = (
        f"POST /v1/signals HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
    ).encode()
    return {
        "body-shorter-than-length": head + b"Content-Length: 5000\r\n\r\n" + BODY[:50],
        "truncated-chunks": head + b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + BODY[:40],
        "bad-chunk-size": head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "negative-length": head + b"Content-Length: -1\r\n\r\n{}",
        "text-length": head + b"Content-Length: abc\r\n\r\n{}",
        "two-lengths": head + b"Content-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
        "nul-in-header": head.replace(b"Host: gateway", b"Host: gate\x00way") + b"\r\n",
        "no-request-line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
        "headers-never-end": head + b"X-Padding: " + b"a" * 2000,
    }


class Errors(logging.Handler):
    """Collects ERROR records (uvicorn logs an unhandled exception of the app as one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def errors_logged() -> Iterator[Errors]:
    """ERROR records of uvicorn and the gateway; enter it after the server started (uvicorn
    replaces its loggers' handlers when it configures logging)."""
    handler = Errors()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn", "schakel.gateway")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def exchange(host: str, port: int, raw: bytes, *, timeout_s: float = 5.0) -> bytes:
    """Send ``raw``, close the sending side, read the answer until the server closes (bounded)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(reply) < 65536:
            try:
                chunk = sock.recv(4096)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            reply += chunk
        return reply


def test_raw_malformed_requests_get_no_5xx_and_the_server_keeps_serving(tmp_path: Path):
    # a file database: requests run concurrently, each thread with its own connection
    engine = make_engine(f"sqlite:///{tmp_path}/gateway.db")
    metadata.create_all(engine)
    gateway, _, tokens = build(FUZZ_SETTINGS, engine)
    with serving(create_gateway_app(gateway)) as base, errors_logged() as errors:
        where = urlsplit(base)
        assert where.hostname and where.port
        for name, raw in requests(tokens["liander"]).items():
            reply = exchange(where.hostname, where.port, raw)
            if reply:
                status = int(reply.split(b" ", 2)[1])
                assert status < 500, f"{name}: {reply[:300]!r}"
        good = httpx.post(
            f"{base}/v1/signals",
            content=BODY,
            headers={
                "Authorization": f"Bearer {tokens['liander']}",
                "Content-Type": "application/json",
            },
            timeout=10,
        )
        assert good.status_code == 202, good.text
        time.sleep(0.2)  # let the server finish with the dropped connections
    engine.dispose()
    assert [r.getMessage() for r in errors.records] == []
