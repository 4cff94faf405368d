"""A Kafka wire-protocol health probe: does this port answer ApiVersions and Metadata?

An open TCP port only shows that something listens; the hub needs to know that a Kafka broker
answers there and advertises an address clients can reach. The probe sends two real requests
over one short-lived connection — ApiVersions v0 (which every broker must answer) and
Metadata v1 for no topics (brokers and controller only, so it never triggers topic
auto-creation) — and returns the brokers the cluster advertises.

It is written against the wire format instead of a client library so that it is cheap (one
connection, no background threads, a few milliseconds) and has a hard timeout, which makes it
suitable for polling while a broker starts.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from services.broker.errors import BrokerError

_API_METADATA = 3
_API_VERSIONS = 18
_METADATA_VERSION = 1
_CLIENT_ID = b"schakel-probe"
_MAX_FRAME = 16 * 1024 * 1024


@dataclass(frozen=True)
class AdvertisedBroker:
    """A broker as the cluster advertises it in Metadata."""

    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        """``host:port`` as clients will dial it."""
        return f"{self.host}:{self.port}"


def probe(host: str, port: int, *, timeout: float = 2.0) -> list[AdvertisedBroker]:
    """Ask the broker at ``host:port`` for its API versions and cluster metadata.

    Returns the advertised brokers. Raises :class:`OSError` when nothing answers in time and
    :class:`BrokerError` when something answers that is not a working Kafka broker.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        try:
            versions = _request(sock, _API_VERSIONS, 0, 1, b"")
            _check_api_versions(versions)
            metadata = _request(sock, _API_METADATA, _METADATA_VERSION, 2, struct.pack(">i", 0))
            return _parse_metadata_v1(metadata)
        except (struct.error, UnicodeDecodeError) as exc:
            raise BrokerError(
                f"the answer at {host}:{port} is not Kafka protocol ({exc})"
            ) from None


def is_kafka(host: str, port: int, *, timeout: float = 2.0) -> bool:
    """Whether a Kafka broker answers at ``host:port`` and advertises at least one broker."""
    try:
        return bool(probe(host, port, timeout=timeout))
    except (OSError, BrokerError):
        return False


def _request(
    sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes
) -> bytes:
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(_CLIENT_ID))
    payload = header + _CLIENT_ID + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    if not 4 <= size <= _MAX_FRAME:
        raise BrokerError(f"the broker answered with an invalid frame size {size}")
    frame = _read_exactly(sock, size)
    (answered_id,) = struct.unpack_from(">i", frame)
    if answered_id != correlation_id:
        raise BrokerError(
            f"the broker answered request {correlation_id} with correlation id {answered_id}"
        )
    return frame[4:]


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise ConnectionError("the broker closed the connection mid-answer")
        chunks += chunk
    return bytes(chunks)


def _check_api_versions(body: bytes) -> None:
    error_code, count = struct.unpack_from(">hi", body)
    if error_code != 0:
        raise BrokerError(f"the broker refused ApiVersions with error code {error_code}")
    offset = 6
    for _ in range(max(count, 0)):
        api_key, low, high = struct.unpack_from(">hhh", body, offset)
        offset += 6
        if api_key == _API_METADATA:
            if not low <= _METADATA_VERSION <= high:
                raise BrokerError(
                    f"the broker does not support Metadata v{_METADATA_VERSION} "
                    f"(supports v{low}..v{high})"
                )
            return
    raise BrokerError("the broker does not offer the Metadata API")


def _parse_metadata_v1(body: bytes) -> list[AdvertisedBroker]:
    (count,) = struct.unpack_from(">i", body)
    offset = 4
    brokers: list[AdvertisedBroker] = []
    for _ in range(max(count, 0)):
        node_id, host_len = struct.unpack_from(">ih", body, offset)
        offset += 6
        host = body[offset : offset + host_len].decode("utf-8")
        offset += host_len
        (port,) = struct.unpack_from(">i", body, offset)
        offset += 4
        (rack_len,) = struct.unpack_from(">h", body, offset)
        offset += 2 + max(rack_len, 0)
        brokers.append(AdvertisedBroker(node_id=node_id, host=host, port=port))
    return brokers
