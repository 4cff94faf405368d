"""Topic names and the topic layout the hub creates at start-up (never auto-created)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SIGNALS_PREFIX = "signals."
FEED_PREFIX = "feed."
DEAD_LETTER = "signals.dead-letter"
AUDIT = "audit"
"""The log-first router's write-ahead audit log, read by the audit indexer (one partition: the
indexer reads it in one order; :mod:`services.core.audit_log`)."""
AUDIT_INDEXER_GROUP = "schakel-audit-indexer"
ALERTS = "signals.schakel"
"""The hub's own signals (stacked-location alerts) are published like a partner's."""


RECEIPT_TIME: dict[str, str] = {"message.timestamp.type": "LogAppendTime"}
"""The config of every ``signals.*`` topic: the broker, not the producer, stamps each record
with the moment it appended it (``timestamp_type`` 1), so a partner that produces to Kafka
directly cannot backdate when the hub received its signal (docs/outcomes.md)."""


def topic_configs(topics: Iterable[str]) -> dict[str, dict[str, str]]:
    """The configs the hub declares for ``topics``: :data:`RECEIPT_TIME` on ``signals.*``."""
    return {t: dict(RECEIPT_TIME) for t in topics if t.startswith(SIGNALS_PREFIX)}


def signals_topic(partner: str) -> str:
    return f"{SIGNALS_PREFIX}{partner}"


def feed_topic(recipient: str) -> str:
    return f"{FEED_PREFIX}{recipient}"


def partner_of(topic: str) -> str | None:
    """The partner a signals topic belongs to (None for the dead-letter topic or others)."""
    if topic == DEAD_LETTER or not topic.startswith(SIGNALS_PREFIX):
        return None
    return topic.removeprefix(SIGNALS_PREFIX)


@dataclass(frozen=True)
class TopicLayout:
    """Partition counts per topic kind; the defaults suit a laptop, production sets its own."""

    signal_partitions: int = 4
    feed_partitions: int = 4
    dead_letter_partitions: int = 1

    def spec(self, partners: Iterable[str], recipients: Iterable[str]) -> dict[str, int]:
        topics = {signals_topic(p): self.signal_partitions for p in sorted(partners)}
        topics.update({feed_topic(r): self.feed_partitions for r in sorted(recipients)})
        topics[DEAD_LETTER] = self.dead_letter_partitions
        topics[AUDIT] = 1
        return topics


def recipient_group(recipient: str) -> str:
    """The consumer group a recipient reads its feed with; the hub reads its committed offsets
    to learn what was consumed (and so what to re-deliver if the broker loses its data)."""
    return f"recipient.{recipient}"


def gateway_group(recipient: str) -> str:
    """The group the gateway commits a recipient's HTTP reads in (``recipient.<id>.gateway``).

    Not :func:`recipient_group`: a commit from outside a group that has members (the
    recipient's own Kafka client, ``schakel subscribe``) is refused as UnknownMemberId, and
    Tansu refuses it for good once the group has had a member. The hub counts a message
    consumed when either group has read past it. Party ids have no dots, so this never names
    another recipient's group.
    """
    return f"{recipient_group(recipient)}.gateway"


def consumption_groups(recipient: str) -> tuple[str, str]:
    """Every group whose committed offsets say what ``recipient`` has consumed."""
    return recipient_group(recipient), gateway_group(recipient)
