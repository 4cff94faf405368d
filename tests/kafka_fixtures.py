"""Fixtures that start real Kafka-protocol brokers on 127.0.0.1 (see services/broker)."""
