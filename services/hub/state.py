"""Where a running hub can be found: ``$SCHAKEL_STATE_DIR/hub.json``, written by `schakel up`.

Client commands (`publish`, `subscribe`, `status`) use ``SCHAKEL_KAFKA_BOOTSTRAP`` when it is
set, and otherwise the hub found here, so on a laptop they need no configuration at all.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import orjson

from services.broker.settings import KafkaSettings
from services.config import Paths, demo_mode, state_hint
from services.core.errors import SchakelError


class HubNotRunning(SchakelError):  # noqa: N818 - reads as a sentence in messages
    """No external cluster is configured and no local hub is running."""


@dataclass(frozen=True)
class HubState:
    bootstrap: str
    database_url: str
    pid: int
    _: KW_ONLY
    demo: bool = False
    """Started with ``--demo``: the hub accepts the demo partners' TEST keys."""
    broker: str = "external"
    """The embedded broker's name (``noida``, ``tansu``), or ``external``."""
    persistent: bool | None = None
    """Whether the embedded broker keeps its data across a restart (None: external)."""

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(dataclasses.asdict(self)))
        temporary.replace(path)

    @classmethod
    def read(cls, path: Path) -> HubState | None:
        try:
            data = orjson.loads(path.read_bytes())
            persistent = data.get("persistent")
            return cls(
                str(data["bootstrap"]),
                str(data["database_url"]),
                int(data["pid"]),
                demo=data.get("demo") is True,
                broker=str(data.get("broker", "external")),
                persistent=persistent if isinstance(persistent, bool) else None,
            )
        except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            return None


def state_path(paths: Paths | None = None) -> Path:
    return (paths or Paths.from_env()).state / "hub.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def client_settings() -> KafkaSettings:
    """Kafka settings for a client command: the environment's cluster, or the running hub's."""
    configured = KafkaSettings.from_env()
    if configured is not None:
        return configured
    path = state_path()
    state = HubState.read(path)
    if state is None or not _alive(state.pid):
        raise HubNotRunning(
            f"no hub is running (no live {path.absolute()}; {state_hint()}); start one with "
            "`schakel up`, or set SCHAKEL_KAFKA_BOOTSTRAP to use a Kafka cluster"
        )
    return KafkaSettings.local(state.bootstrap)


def hub_in_demo_mode() -> bool:
    """Whether the hub a client command talks to accepts TEST keys: ``SCHAKEL_DEMO`` is set,
    or (without ``SCHAKEL_KAFKA_BOOTSTRAP``) the local hub was started with ``--demo``."""
    if demo_mode():
        return True
    if KafkaSettings.from_env() is not None:
        return False
    state = HubState.read(state_path())
    return state is not None and state.demo and _alive(state.pid)
