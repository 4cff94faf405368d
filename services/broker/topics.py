"""Creating and inspecting the hub's topics explicitly, never through broker auto-creation.

Every topic the hub uses is declared with its partition count and created by
:meth:`TopicAdmin.ensure_topics` at start-up. Auto-creation is never relied on: it would give
a topic the broker's default partition count (4 on Tansu, often 1 elsewhere), and the partition
count fixes how keys spread — changing it later re-routes keys and breaks per-key order.
For the same reason ``ensure_topics`` never adds partitions to an existing topic on its own: a
topic with fewer partitions than declared is an error that names the topic and the fix.

Topic configs (``configs``: topic → {key: value}, e.g. ``message.timestamp.type=LogAppendTime``
on the ``signals.*`` topics, :func:`services.router.topics.topic_configs`) are set when a topic
is created and set again on an existing topic whose value differs (incremental AlterConfigs).
A broker that refuses the change (no AlterConfigs permission) is logged with the fix, not an
error: what the hub *relies on* is checked where it is used (the outcomes worker trusts a
record's timestamp only when the record itself says the broker stamped it).

:func:`missing_topics` tells which declared topics a broker does not have. After a restart of
a memory-only broker (Tansu) it lists every topic — the hub's signal that the broker lost its
data and consumers must not trust their committed offsets.

:class:`KafkaTopicAdmin` implements :class:`TopicAdmin` with kafka-python's admin client;
``services.broker.testing.MemoryTopicAdmin`` is an in-memory double with the same behaviour.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
from kafka.errors import KafkaError, for_code

from services.broker.errors import BrokerError
from services.broker.settings import KafkaSettings

log = logging.getLogger(__name__)

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_UNKNOWN_TOPIC = 3
_TOPIC_EXISTS = 36
_WAIT_SECONDS = 10.0

TopicConfigs = Mapping[str, Mapping[str, str]]
"""Topic → {config key: value} the hub declares for it."""


class TopicAdmin(Protocol):
    """Topic administration as the hub needs it (a Kafka cluster or an in-memory double)."""

    def ensure_topics(
        self, spec: Mapping[str, int], configs: TopicConfigs | None = None
    ) -> list[str]:
        """Create each missing topic of ``spec`` (name → partitions); return those created.

        Existing topics must have at least the declared number of partitions, else
        :class:`BrokerError` names the topic and how to fix it. ``configs`` (topic → {key:
        value}) are given to new topics and set on existing ones that differ.
        """
        ...

    def topic_config(self, topic: str, key: str) -> str | None:
        """The value of ``key`` the broker reports for ``topic`` (None if it reports none)."""
        ...

    def list_topics(self) -> list[str]:
        """The names of all non-internal topics, sorted."""
        ...

    def partitions(self, topic: str) -> int:
        """The number of partitions of ``topic`` (BrokerError if it does not exist)."""
        ...

    def delete_topics(self, topics: Iterable[str]) -> None:
        """Delete the topics that exist among ``topics`` (for tests and resets)."""
        ...

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition → offset one past the last record (0 for an empty partition)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def missing_topics(admin: TopicAdmin, spec: Mapping[str, int]) -> list[str]:
    """The topics of ``spec`` the broker does not have, sorted (all of them after data loss)."""
    existing = set(admin.list_topics())
    return sorted(topic for topic in spec if topic not in existing)


def check_spec(spec: Mapping[str, int]) -> None:
    """Raise :class:`BrokerError` unless every name is a legal Kafka topic with ≥ 1 partition."""
    for topic, partitions in spec.items():
        check_topic_name(topic)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise BrokerError(
                f"topic {topic!r} is declared with {partitions!r} partitions; declare a whole "
                "number of at least 1"
            )


def check_topic_name(topic: str) -> None:
    """Raise :class:`BrokerError` unless ``topic`` is a legal Kafka topic name."""
    if not _TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
        raise BrokerError(
            f"{topic!r} is not a legal Kafka topic name: use 1 to 249 of the characters "
            "a-z A-Z 0-9 . _ -"
        )


def too_few_partitions(topic: str, have: int, want: int) -> BrokerError:
    """The error for an existing topic with fewer partitions than the hub declares."""
    return BrokerError(
        f"topic {topic!r} has {have} partition(s) but the hub declares {want}; adding "
        "partitions re-routes keys and breaks per-key order, so the hub does not do it "
        f"itself — if that is acceptable, raise it with: kafka-topics.sh --alter --topic "
        f"{topic} --partitions {want}; otherwise delete and recreate the topic"
    )


def unknown_topic(topic: str) -> BrokerError:
    """The error for a topic the broker does not have."""
    return BrokerError(f"topic {topic!r} does not exist; create it with ensure_topics at start-up")


def is_internal_topic(topic: str) -> bool:
    """Kafka reserves names starting with ``__`` for its own topics (offsets, transactions)."""
    return topic.startswith("__")


class KafkaTopicAdmin:
    """:class:`TopicAdmin` for a real cluster, through kafka-python's KafkaAdminClient.

    Connects lazily at the first call. Every request is bounded by ``timeout`` seconds, and
    transient failures (the broker restarting, a connection being re-established, a
    controller moving) are retried within that time, so an admin outlives a broker restart.
    ``replication_factor`` None lets the cluster apply its default (1 on the embedded
    brokers, usually 3 on a production cluster).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        replication_factor: int | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.settings = settings
        self.replication_factor = replication_factor
        self.timeout = timeout
        self._admin: Any = None

    @property
    def _timeout_ms(self) -> int:
        return int(self.timeout * 1000)

    def _client(self) -> Any:
        if self._admin is None:
            try:
                self._admin = KafkaAdminClient(
                    **self.settings.client_kwargs_kafka_python(),
                    request_timeout_ms=self._timeout_ms,
                    bootstrap_timeout_ms=self._timeout_ms,
                )
            except KafkaError as exc:
                raise BrokerError(
                    f"cannot reach Kafka at {self.settings.bootstrap} within "
                    f"{self.timeout:.0f} s: {exc}"
                ) from None
        return self._admin

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an admin-client method, retrying transient Kafka errors until the timeout."""
        deadline = time.monotonic() + self.timeout
        pause = 0.05
        while True:
            try:
                return getattr(self._client(), method)(*args, **kwargs)
            except KafkaError as exc:
                if not getattr(exc, "retriable", False) or time.monotonic() + pause > deadline:
                    raise BrokerError(
                        f"cannot {what} at {self.settings.bootstrap}: {exc}"
                    ) from None
                log.debug("retrying %s after %s", what, exc)
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _existing_partitions(self, topics: list[str]) -> dict[str, int]:
        """Partition counts of those of ``topics`` that exist (metadata, no auto-creation)."""
        found: dict[str, int] = {}
        for entry in self._call("describe topics", "describe_topics", topics):
            code = entry.get("error_code", 0)
            if code == _UNKNOWN_TOPIC:
                continue
            if code != 0:
                raise BrokerError(
                    f"cannot describe topic {entry.get('name')!r}: {_error_name(code)}"
                )
            found[entry["name"]] = len(entry.get("partitions") or [])
        return found

    def ensure_topics(
        self, spec: Mapping[str, int], configs: TopicConfigs | None = None
    ) -> list[str]:
        check_spec(spec)
        declared = {t: dict(c) for t, c in (configs or {}).items() if t in spec and c}
        existing = self._existing_partitions(list(spec))
        _check_partitions(existing, spec)
        wanted = {topic: count for topic, count in spec.items() if topic not in existing}
        created = self._create(wanted, declared) if wanted else []
        raced = [topic for topic in wanted if topic not in created]
        if raced:  # created by someone else between describe and create
            _check_partitions(self._existing_partitions(raced), spec)
        if created:
            log.info("created topics %s", ", ".join(f"{t}({spec[t]})" for t in created))
        self._align_configs({t: c for t, c in declared.items() if t not in created})
        return sorted(created)

    def topic_config(self, topic: str, key: str) -> str | None:
        check_topic_name(topic)
        return self._configs([topic], [key]).get(topic, {}).get(key)

    def _configs(self, topics: list[str], keys: list[str]) -> dict[str, dict[str, str]]:
        # every key, filtered here: Tansu 0.6.0 drops the connection when asked for named keys
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        answer = self._call(
            "describe topic configs", "describe_configs", resources, config_filter="all"
        )
        found = answer.get("topic", {})
        return {
            topic: {k: str(v.get("value")) for k, v in found.get(topic, {}).items() if k in keys}
            for topic in topics
        }

    def _align_configs(self, declared: Mapping[str, Mapping[str, str]]) -> None:
        """Set the declared configs an existing topic does not have (logged, never fatal)."""
        if not declared:
            return
        keys = sorted({k for c in declared.values() for k in c})
        try:
            have = self._configs(sorted(declared), keys)
        except BrokerError as exc:
            log.warning("cannot check topic configs (%s); set them as docs/outcomes.md says", exc)
            return
        differ = {
            topic: {k: v for k, v in want.items() if have.get(topic, {}).get(k) != v}
            for topic, want in declared.items()
        }
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, dict(change))
            for topic, change in sorted(differ.items())
            if change
        ]
        if not resources:
            return
        try:
            answer = self._call(
                "alter topic configs",
                "alter_configs",
                resources,
                raise_on_unknown=False,
                incremental=True,
            )
        except BrokerError as exc:
            answer = {"topic": {r.name: str(exc) for r in resources}}
        for resource in resources:
            result = answer.get("topic", {}).get(resource.name, "no answer")
            settings = " ".join(f"{k}={v}" for k, v in sorted(resource.configs.items()))
            if result == "OK":
                log.info("set %s on existing topic %s", settings, resource.name)
            else:
                log.warning(
                    "topic %s lacks %s and the broker refused to set it (%s); set it with: "
                    "kafka-configs.sh --alter --entity-type topics --entity-name %s "
                    "--add-config %s",
                    resource.name,
                    settings,
                    result,
                    resource.name,
                    ",".join(f"{k}={v}" for k, v in sorted(resource.configs.items())),
                )

    def _create(
        self, wanted: Mapping[str, int], configs: Mapping[str, Mapping[str, str]]
    ) -> list[str]:
        replication = self.replication_factor if self.replication_factor is not None else -1
        request = {
            topic: {
                "num_partitions": count,
                "replication_factor": replication,
                "configs": dict(configs.get(topic, {})),
            }
            for topic, count in wanted.items()
        }
        response = self._call(
            "create topics",
            "create_topics",
            request,
            timeout_ms=self._timeout_ms,
            raise_errors=False,
        )
        created: list[str] = []
        for result in response["topics"]:
            code = result.get("error_code", 0)
            if code == 0:
                created.append(result["name"])
            elif code != _TOPIC_EXISTS:
                detail = result.get("error_message") or _error_name(code)
                raise BrokerError(f"cannot create topic {result['name']!r}: {detail}")
        if created:
            self._call(
                "wait for new topics",
                "wait_for_topics",
                created,
                timeout_ms=int(_WAIT_SECONDS * 1000),
            )
        return created

    def list_topics(self) -> list[str]:
        return sorted(
            entry["name"]
            for entry in self._call("list topics", "describe_topics", None)
            if entry.get("error_code", 0) == 0
            and not entry.get("is_internal")
            and not is_internal_topic(entry["name"])
        )

    def partitions(self, topic: str) -> int:
        check_topic_name(topic)
        found = self._existing_partitions([topic])
        if topic not in found:
            raise unknown_topic(topic)
        return found[topic]

    def delete_topics(self, topics: Iterable[str]) -> None:
        names = sorted(set(topics))
        for topic in names:
            check_topic_name(topic)
        present = sorted(self._existing_partitions(names)) if names else []
        if not present:
            return
        response = self._call(
            "delete topics",
            "delete_topics",
            present,
            timeout_ms=self._timeout_ms,
            raise_errors=False,
        )
        for result in response["topics"]:
            code = result.get("error_code", 0)
            if code not in (0, _UNKNOWN_TOPIC):
                raise BrokerError(f"cannot delete topic {result['name']!r}: {_error_name(code)}")
        deadline = time.monotonic() + _WAIT_SECONDS
        while self._existing_partitions(present) and time.monotonic() < deadline:
            time.sleep(0.05)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition → one past the last record, verified by reading the last batch.

        The broker's ListOffsets answer is checked by fetching from one before it: Tansu 0.6.0
        reports one past the *first* record of the last batch, and the fetch returns the whole
        batch, so the consumer's position afterwards is the true end. On correct brokers the
        fetch returns the single last record and the answer is unchanged.
        """
        count = self.partitions(topic)
        parts = [TopicPartition(topic, p) for p in range(count)]
        answer = self._call(
            f"list offsets of {topic!r}",
            "list_partition_offsets",
            dict.fromkeys(parts, OffsetSpec.LATEST),
            timeout_ms=self._timeout_ms,
        )
        reported = {tp.partition: int(answer[tp].offset) for tp in parts}
        nonempty = {p: end for p, end in reported.items() if end > 0}
        if nonempty:
            reported.update(self._read_to_end(topic, nonempty))
        return reported

    def _read_to_end(self, topic: str, reported: Mapping[int, int]) -> dict[int, int]:
        """Fetch each partition from ``reported - 1`` to its end; the resulting positions."""
        parts = {p: TopicPartition(topic, p) for p in reported}
        try:
            consumer = KafkaConsumer(
                **self.settings.client_kwargs_kafka_python(),
                enable_auto_commit=False,
                fetch_max_wait_ms=20,
                max_poll_records=100_000,
                request_timeout_ms=self._timeout_ms + 1000,
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot read the end of {topic!r}: {exc}") from None
        try:
            consumer.assign(list(parts.values()))
            for partition, end in reported.items():
                consumer.seek(parts[partition], end - 1)
            pending = set(reported)
            deadline = time.monotonic() + self.timeout
            while pending and time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=100)
                for partition in list(pending):
                    tp = parts[partition]
                    if not batch.get(tp) and consumer.position(tp) >= reported[partition]:
                        pending.discard(partition)
            return {p: max(reported[p], int(consumer.position(tp))) for p, tp in parts.items()}
        except KafkaError as exc:
            raise BrokerError(f"cannot read the end of {topic!r}: {exc}") from None
        finally:
            consumer.close()

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _check_partitions(existing: Mapping[str, int], spec: Mapping[str, int]) -> None:
    for topic, have in existing.items():
        if have < spec[topic]:
            raise too_few_partitions(topic, have, spec[topic])


def _error_name(code: int) -> str:

    return f"{for_code(code).__name__} (Kafka error {code})"
