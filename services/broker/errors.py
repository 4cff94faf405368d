"""Errors of the broker layer: starting, probing and administering Kafka-protocol brokers.

Messages name what is wrong and how to fix it (a port, a path, an environment variable), and
never carry a secret such as a SASL password.
"""

from __future__ import annotations

from services.core.errors import SchakelError


class BrokerError(SchakelError):
    """A broker could not be started, reached or administered, or its settings are invalid."""
