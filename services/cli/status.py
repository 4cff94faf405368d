"""``schakel status``: topics, partitions, consumer groups, workers and counts per feed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.broker.groups import consumer_groups
from services.broker.topics import KafkaTopicAdmin
from services.cli.output import console, table
from services.hub.locations import durability
from services.hub.state import HubState, client_settings, state_path
from services.hub.worker_health import WorkerHealth, health_path, read_health
from services.router.topics import FEED_PREFIX, SIGNALS_PREFIX, recipient_group

ROUTER_GROUP = "schakel-router"
HUB_GROUPS = (ROUTER_GROUP, "schakel-stacking", "schakel-coverage")
"""The hub's own groups, described by name: Tansu lists a group only once it committed."""


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show what the hub's broker holds and who is consuming it."""
    import time

    import orjson

    settings = client_settings()
    report: dict[str, Any] = {"bootstrap": settings.bootstrap, "topics": {}, "groups": {}}
    with KafkaTopicAdmin(settings) as admin:
        for topic in sorted(admin.list_topics()):
            if not topic.startswith((SIGNALS_PREFIX, FEED_PREFIX)):
                continue
            ends = admin.end_offsets(topic)
            report["topics"][topic] = {"partitions": len(ends), "messages": sum(ends.values())}
    recipients = [
        t.removeprefix(FEED_PREFIX) for t in report["topics"] if t.startswith(FEED_PREFIX)
    ]
    described = consumer_groups(settings, [*HUB_GROUPS, *map(recipient_group, recipients)])
    for name, group in described.groups.items():
        if group.active or name == ROUTER_GROUP:
            report["groups"][name] = group.to_json()
    report["groups_problem"] = described.problem
    router = described.groups.get(ROUTER_GROUP)
    report["router_workers"] = router.members if router is not None else None
    hub = HubState.read(state_path())
    if hub is not None:
        report["hub_pid"] = hub.pid
        report["demo"] = hub.demo
        report["broker"] = {
            "kind": hub.broker,
            "persistent": hub.persistent,
            "keeps": durability(hub.broker, hub.persistent),
        }
    workers = read_health(health_path()) if hub is not None else []
    now = time.time()
    report["workers"] = [_worker_json(w, now) for w in workers]
    if as_json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    out = console()
    if "broker" in report:
        out.print(f"broker: {report['broker']['kind']}; {report['broker']['keeps']}", markup=False)
    topics = table(f"Topics on {settings.bootstrap}", ["topic", "# partitions", "# messages"])
    for topic, info in report["topics"].items():
        topics.add_row(topic, str(info["partitions"]), str(info["messages"]))
    out.print(topics)
    groups_table = table("Consumer groups", ["group", "state", "# members"])
    for group, info in report["groups"].items():
        groups_table.add_row(group, _shown(info["state"]), _shown(info["members"]))
    out.print(groups_table)
    if described.problem:
        out.print(f"not reported by the broker: {described.problem}", markup=False)
    members = report["router_workers"]
    out.print(f"router workers in group {ROUTER_GROUP}: {_shown(members)}", markup=False)
    _print_workers(out, workers, now)
    if report.get("demo"):
        out.print("demo mode: the demo partners' TEST keys are accepted", style="yellow")


def _shown(value: object) -> str:
    return "not reported" if value is None else str(value)


def _worker_json(worker: WorkerHealth, now: float) -> dict[str, Any]:
    return {
        "name": worker.name,
        "index": worker.index,
        "pid": worker.pid,
        "state": worker.state(now),
        "restarts": worker.restarts,
        "exits_recently": len(worker.recent_exits(now)),
        "last_exit_code": worker.last_exit_code,
        "log": worker.log,
        "problem": worker.problem(now),
    }


def _print_workers(out: Any, workers: list[WorkerHealth], now: float) -> None:
    """The hub's worker processes, and a line for each that exited lately (red when it keeps
    exiting): a crash-looping worker must not pass for a running one."""
    if workers:
        out.print(_workers_table(workers, now))
    for worker in workers:
        problem = worker.problem(now)
        if problem is not None:
            out.print(problem, style="red" if worker.looping(now) else "yellow", markup=False)


def _workers_table(workers: list[WorkerHealth], now: float) -> Any:
    shown = table("Hub workers", ["worker", "pid", "state", "# restarts", "last exit", "log"])
    for worker in workers:
        shown.add_row(
            worker.label,
            _shown(worker.pid),
            worker.state(now),
            str(worker.restarts),
            "-" if worker.last_exit_code is None else str(worker.last_exit_code),
            worker.log,
        )
    return shown
