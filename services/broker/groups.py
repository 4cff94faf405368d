"""Consumer groups as the broker reports them: state and members, or honestly "not reported".

What the embedded brokers answer (measured against Tansu 0.6.0 and noida-db 0.2.3 with live
aiokafka members; tests/broker/test_groups.py keeps it true):

* **ListGroups** — noida lists every group with members or committed offsets, with its state.
  Tansu lists only groups that have *committed offsets*, with state ``Unknown``: a group
  whose members have not committed yet is missing from the list. So the hub's own groups
  (router, stacking, coverage) are always described by name, listed or not.
* **DescribeGroups** — both report the state (``Stable``, ``Empty``…) and every member; noida
  also the client id and the partitions assigned, Tansu neither. A group that does not exist
  is ``Dead`` on noida and ``Empty`` on Tansu. Tansu also sets every authorized-operation bit
  (-1), including bit 15 (TWO_PHASE_COMMIT, KIP-939), which kafka-python 3.0 cannot map and
  fails the whole answer on; the hub does not use authorized operations, so they are dropped
  before kafka-python looks at them.

When a broker still does not answer, the state and member count are ``None`` — "not
reported" — and :attr:`GroupsReport.problem` says why; never a made-up ``0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from services.broker.settings import KafkaSettings

_ABSENT = ("Dead", "Empty", "Unknown", "")


class _GroupAdmin(KafkaAdminClient):  # type: ignore[misc]  # kafka-python is untyped
    """kafka-python's admin client without authorized operations in DescribeGroups answers.

    Its ``_process_acl_operations`` turns each bit into an ``ACLOperation`` and raises on bits
    it does not know (Tansu answers with all 32 set); the hub never reads them.
    """

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


@dataclass(frozen=True)
class Group:
    """One consumer group; ``None`` means the broker did not report it."""

    name: str
    state: str | None
    members: int | None
    listed: bool
    """Whether ListGroups named it (Tansu leaves out groups that never committed)."""

    @property
    def active(self) -> bool:
        """Listed by the broker, or described with members or a live state."""
        return self.listed or bool(self.members) or (self.state or "") not in _ABSENT

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "members": self.members, "listed": self.listed}


@dataclass(frozen=True)
class GroupsReport:
    groups: dict[str, Group] = field(default_factory=dict)
    problem: str | None = None
    """Why states or members are not reported, when the broker did not answer."""


def consumer_groups(
    settings: KafkaSettings, wanted: Iterable[str] = (), *, timeout: float = 15.0
) -> GroupsReport:
    """Every group the broker lists plus ``wanted`` (described by name, listed or not)."""
    timeout_ms = int(timeout * 1000)
    try:
        admin = _GroupAdmin(
            **settings.client_kwargs_kafka_python(),
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        return GroupsReport(problem=f"the broker did not answer ({exc.__class__.__name__})")
    try:
        return _report(admin, set(wanted))
    finally:
        admin.close()


def _report(admin: Any, wanted: set[str]) -> GroupsReport:
    problems: list[str] = []
    try:
        listed = {_group_id(g) for g in admin.list_groups()}
    except (KafkaError, ValueError, TypeError) as exc:
        listed = set()
        problems.append(f"ListGroups failed ({exc.__class__.__name__})")
    names = sorted(listed | wanted)
    described: dict[str, Any] = {}
    if names:
        try:
            described = admin.describe_groups(names)
        except (KafkaError, ValueError, TypeError) as exc:
            problems.append(f"DescribeGroups failed ({exc.__class__.__name__})")
    groups = {}
    for name in names:
        info = described.get(name)
        if not isinstance(info, dict) or info.get("error"):
            state, members = None, None
        else:
            state = str(info.get("group_state") or "") or None
            members = len(info.get("members") or [])
        groups[name] = Group(name, state, members, name in listed)
    problem = "; ".join(problems) or None
    if problem is None and any(g.state is None for g in groups.values()):
        problem = "the broker did not describe some groups"
    return GroupsReport(groups, problem)


def _group_id(group: Any) -> str:
    """kafka-python returns groups as dicts (3.x) or (id, protocol) tuples (2.x)."""
    if isinstance(group, dict):
        return str(group.get("group_id", group.get("group", "")))
    return str(group[0])
