"""How the workplace signs and publishes hand-over signals in the running hub.

The RIEC signs with its own key (``SCHAKEL_RIEC_KEY_FILE``, made by ``schakel keys partner
riec-nh`` and registered for the party in the covenant); only in demo mode may the public TEST
key stand in. Without either, hand-over is off and the case page says how to turn it on.
Signals go on ``signals.<riec>`` through a kafka-python producer (acks from all in-sync
replicas, 10 s per send), made on first use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.broker.settings import KafkaSettings
from services.config import demo_mode
from services.riec.handover import Publish, Signer
from services.riec.model import RiecError
from services.router.topics import signals_topic

log = logging.getLogger("schakel.riec")

KEY_FILE_ENV = "SCHAKEL_RIEC_KEY_FILE"
SEND_TIMEOUT_S = 10.0


def riec_signer(*, demo: bool, environ: Mapping[str, str] | None = None) -> Signer | None:
    """The RIEC's signer from ``SCHAKEL_RIEC_KEY_FILE``, the TEST keys in demo mode (``demo``,
    or ``SCHAKEL_DEMO=1``), else ``None`` (hand-over off)."""
    env = os.environ if environ is None else environ
    configured = env.get(KEY_FILE_ENV, "").strip()
    if configured:
        from services.cli.partner_key import read_partner_key  # noqa: PLC0415 - key files here
        from services.core.signing import sign  # noqa: PLC0415

        key = read_partner_key(Path(configured))

        def signer(envelope: Mapping[str, Any]) -> dict[str, Any]:
            if envelope.get("source") != key.partner:
                raise RiecError(
                    f"{KEY_FILE_ENV} holds the key of {key.partner}, not of "
                    f"{envelope.get('source')}. Fix: point it at that RIEC's key file."
                )
            return sign(envelope, key.private_key, key.key_id)

        return signer
    if demo or demo_mode(env):
        from services.demo.keys import DemoSigner  # noqa: PLC0415 - demo only

        # demo mode is announced already (banner, status); this says what it means here
        log.info("%s not set: hand-overs are signed with the public TEST key", KEY_FILE_ENV)
        return DemoSigner()
    return None


def kafka_publisher(settings: KafkaSettings) -> Publish:
    """Publish to ``signals.<source>`` on ``settings``' cluster; a failed send raises
    :class:`RiecError` (the hand-over stays staged: a retry sends the same signal)."""
    lock = threading.Lock()
    made: list[Any] = []

    def publish(source: str, raw: bytes) -> None:
        from kafka import KafkaProducer  # noqa: PLC0415 - only when a hand-over is sent
        from kafka.errors import KafkaError  # noqa: PLC0415

        with lock:
            if not made:
                made.append(KafkaProducer(acks="all", **settings.client_kwargs_kafka_python()))
            producer = made[0]
        try:
            producer.send(signals_topic(source), raw).get(timeout=SEND_TIMEOUT_S)
        except KafkaError as error:
            raise RiecError(
                f"the broker did not confirm the hand-over ({type(error).__name__}). Fix: check "
                "the broker (schakel status), then try again."
            ) from None

    return publish
