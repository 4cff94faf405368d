"""A RIEC's feed made by the real core: demo traffic and the stacked-location alerts the
stacking step raised over it, decided by the shipped covenants; what ``riec-nh`` received is
its feed, exactly as the router would deliver it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.config import Paths, load_policy
from services.core import records
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.demo.generator import generate
from services.demo.keys import DemoSigner
from services.keys.testing import MemoryKeyStore
from services.outcomes.store import SqlOutcomeStore
from services.reid.workflow import Reidentification
from services.riec.cases import CaseFiles
from services.riec.handover import HandOver
from services.riec.locate import locator
from services.riec.scope import regions
from services.riec.workplace import Workplace
from services.stacking.loop import alert_message
from services.web.users import UserStore
from tests.stacking.helpers import NOW, make_hub
from tests.stacking.helpers import records as stacking_records

RIEC = "riec-nh"
DRUGS = "drugslocaties-nh"
PASSWORD = "correct horse battery"
KDF_COST = 8
COVENANTS = [DRUGS, "nh-drugsalert", "schimmige-schuren"]
USERS: dict[str, tuple[str, list[str], list[str]]] = {
    "admin": ("admin", [], []),
    "ana": ("riec-analyst", COVENANTS, [RIEC]),
    "bo": ("riec-analyst", COVENANTS, [RIEC]),
    "drugs-only": ("riec-analyst", [DRUGS], [RIEC]),
    "other-riec": ("riec-analyst", [DRUGS], ["riec-amsterdam"]),
    "drugs-officer": ("privacy-officer", [DRUGS], []),
    "manager": ("covenant-manager", [], []),
}


@dataclass(frozen=True)
class Feed:
    messages: tuple[dict[str, Any], ...]
    """What riec-nh received, in order."""
    audit: tuple[dict[str, Any], ...]
    """The router's audit records of every decision."""
    planted: tuple[str, ...]
    """The planted sites' addresses (raw: never to appear in the workplace)."""


@cache
def feed(signals: int = 900) -> Feed:
    hub = make_hub()
    traffic = generate(signals, seed=7, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)
    alerts = hub.step().run(stacking_records(traffic.signals), NOW).changes.alerts
    raw = [orjson.dumps(s) for s in traffic.signals]
    for alert in alerts.values():
        message = alert_message(alert, hub.config, hub.pseudonymiser, DemoSigner())
        if message is not None:
            raw.append(message)
    delivered: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for one in raw:
        outcome = process(one, hub.registry, hub.policy, NOW)
        for decision in outcome.decisions:
            audit.append(records.audit_record(decision, actor="router"))
            if decision.delivered and decision.recipient == RIEC:
                delivered.append(records.feed_message(decision))
    planted = tuple(site.address for site in traffic.planted)
    return Feed(tuple(delivered), tuple(audit), planted)


@dataclass
class Site:
    engine: Engine
    keys: MemoryKeyStore
    workplace: Workplace
    cases: CaseFiles
    reid: Reidentification
    outcomes: SqlOutcomeStore
    users: UserStore
    feed: Feed
    published: list[tuple[str, bytes]]
    """What hand-overs put on the signals topics: (source, signed envelope)."""
    loaded: Any


def build(path: Path, *, clock: Any = lambda: NOW) -> Site:
    """A database at ``path`` with the router's audit records, the users, and the workplace
    holding riec-nh's feed."""
    made = feed()
    keys = MemoryKeyStore.for_tests()
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(keys)
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference, pseudonymiser,
        today=NOW.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    engine = make_engine(f"sqlite:///{path}")
    audit = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(keys)))
    audit.create_schema()
    for start in range(0, len(made.audit), 200):
        audit.record(made.audit[start : start + 200], [])
    users = UserStore(engine, kdf_cost=KDF_COST)
    users.create_schema()
    for name, (role, covenants, partners) in USERS.items():
        users.add(name, PASSWORD, role, covenants=covenants, partners=partners)
    covenants = loaded.policy.covenants
    workplace = Workplace(
        engine, audit, loaded.registry, regions(covenants, loaded.reference),
        clock=clock,
    )  # fmt: skip
    workplace.create_schema()
    workplace.receive(RIEC, made.messages, locator(pseudonymiser))
    reid = Reidentification(engine, audit, pseudonymiser, covenants, clock=clock)
    reid.create_schema()
    outcomes = SqlOutcomeStore(engine)
    outcomes.create_schema()
    published: list[tuple[str, bytes]] = []
    policy = loaded.policy
    handover = HandOver(
        pseudonymiser,
        lambda: (loaded.registry, policy),
        DemoSigner(),
        lambda source, raw: published.append((source, raw)),
    )
    cases = CaseFiles(workplace, reid, outcomes, handover)
    return Site(engine, keys, workplace, cases, reid, outcomes, users, made, published, loaded)


def user(site: Site, name: str) -> Any:
    found = site.users.get(name)
    assert found is not None
    return found


def rows(site: Site) -> Iterator[dict[str, Any]]:
    yield from site.feed.messages


def web_app(site: Site) -> Any:
    """The web workplace on the site's database, with re-identification and the RIEC pages."""
    from services.web.app import create_web_app
    from services.web.context import WebSettings

    return create_web_app(
        site.engine,
        site.keys,
        WebSettings(secret=b"s" * 32, kdf_cost=KDF_COST),
        site.reid,
        site.cases,
        plan(site),
        clock=lambda: datetime.now(UTC),
    )


def plan(site: Site) -> Any:
    """The barrier plan on the site's workplace, over the shipped models and municipalities."""
    from services.riec.wiring import barrier_plan

    return barrier_plan(site.workplace, Paths.from_env({}), site.loaded.policy.covenants)
