"""``schakel status``: topics, partitions, consumer groups, workers and counts per feed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from kafka import KafkaAdminClient

from services.broker.topics import KafkaTopicAdmin
from services.cli.output import console, table
from services.hub.locations import durability
from services.hub.state import HubState, client_settings, state_path
from services.router.topics import FEED_PREFIX, SIGNALS_PREFIX


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show what the hub's broker holds and who is consuming it."""
    import orjson

    settings = client_settings()
    report: dict[str, Any] = {"bootstrap": settings.bootstrap, "topics": {}, "groups": {}}
    with KafkaTopicAdmin(settings) as admin:
        for topic in sorted(admin.list_topics()):
            if not topic.startswith((SIGNALS_PREFIX, FEED_PREFIX)):
                continue
            ends = admin.end_offsets(topic)
            report["topics"][topic] = {"partitions": len(ends), "messages": sum(ends.values())}
    client = KafkaAdminClient(**settings.client_kwargs_kafka_python())
    try:
        groups = sorted(_group_id(g) for g in client.list_groups())
        try:
            described: dict[str, Any] = client.describe_groups(groups) if groups else {}
        except Exception:  # noqa: BLE001 - some brokers (Tansu) answer DescribeGroups partially
            described = {}
        for group in groups:
            info = described.get(group, {})
            report["groups"][group] = {
                "state": str(info.get("group_state", info.get("state", "?"))),
                "members": len(info.get("members", [])),
            }
    finally:
        client.close()
    hub = HubState.read(state_path())
    if hub is not None:
        report["hub_pid"] = hub.pid
        report["broker"] = {
            "kind": hub.broker,
            "persistent": hub.persistent,
            "keeps": durability(hub.broker, hub.persistent),
        }
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
        groups_table.add_row(group, info["state"], str(info["members"]))
    out.print(groups_table)
    routers = report["groups"].get("schakel-router", {}).get("members", 0)
    out.print(f"router workers in group schakel-router: {routers}")


def _group_id(group: Any) -> str:
    """kafka-python returns groups as dicts (3.x) or (id, protocol) tuples (2.x)."""
    if isinstance(group, dict):
        return str(group.get("group_id", group.get("group", "")))
    return str(group[0])
