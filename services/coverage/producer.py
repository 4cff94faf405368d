"""The Kafka feed producer of a coverage release (one message, delivery awaited)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from services.broker.settings import KafkaSettings


class KafkaFeedProducer:
    """Sends each message with a short-lived producer; a release is one message a month."""

    def __init__(self, settings: KafkaSettings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        return asyncio.run(asyncio.wait_for(self._send(topic, key, value), self.timeout))

    async def _send(self, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        producer = AIOKafkaProducer(acks="all", **self.settings.client_kwargs_aiokafka())
        await producer.start()
        try:
            metadata = await producer.send_and_wait(topic, value, key=key)
            return int(metadata.partition), int(metadata.offset)
        finally:
            await producer.stop()
