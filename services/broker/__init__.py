"""The hub's Kafka-protocol broker: embedded child process or external cluster, one interface.

The hub either starts an embedded broker (Tansu or noida-db) as a child process bound to
127.0.0.1 with its data in a directory the hub owns, or — when ``SCHAKEL_KAFKA_BOOTSTRAP`` is
set — connects to an external Kafka cluster with the SASL/TLS settings from the environment.
Either way every client is configured from one :class:`KafkaSettings`, and every topic the hub
needs is created explicitly with its partition count by :class:`KafkaTopicAdmin`; nothing relies
on broker-side auto-creation. See docs/architecture.md ("Brokers") for the choice of default.
"""

from __future__ import annotations

from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.errors import BrokerError
from services.broker.factory import DEFAULT_BROKER, broker_kind_from_env, make_broker
from services.broker.noida import NoidaBroker
from services.broker.runtime import KafkaRuntime, open_kafka
from services.broker.settings import KafkaSettings
from services.broker.tansu import TansuBroker
from services.broker.topics import KafkaTopicAdmin, TopicAdmin, missing_topics

__all__ = [
    "DEFAULT_BROKER",
    "BrokerError",
    "BrokerKind",
    "EmbeddedBroker",
    "KafkaRuntime",
    "KafkaSettings",
    "KafkaTopicAdmin",
    "NoidaBroker",
    "TansuBroker",
    "TopicAdmin",
    "broker_kind_from_env",
    "make_broker",
    "missing_topics",
    "open_kafka",
]
