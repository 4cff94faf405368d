"""`schakel up`: broker, topics, audit store, router workers, maintenance and demo partners.

Everything runs on loopback with its state under ``$SCHAKEL_STATE_DIR`` (default ``var/``; see
:class:`services.config.Paths` for the parts that can be placed apart). With
``SCHAKEL_KAFKA_BOOTSTRAP`` set, the external cluster is used and no broker is started.

Start and stop are ordered so a stop and start loses nothing: at start, feed messages the
broker no longer holds are re-delivered (:meth:`Maintenance.recover`) *before* any router
produces; at stop, everything that produces (demo partners, gateway, workers) stops *before*
the broker, which then saves its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from services.audit.hub_store import witness_path
from services.audit.store import SqlAuditStore
from services.broker.quiet_logs import BrokerOutage
from services.broker.runtime import KafkaRuntime, open_kafka
from services.broker.settings import KafkaSettings
from services.config import DEMO_ENV, Paths, load_policy
from services.core.covenant.model import Covenant
from services.core.errors import SchakelError
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.gateway.background import GatewayThread, start_gateway_thread
from services.hub.demo import DEMO_POSITION_FILE, SendFailures, publish_demo
from services.hub.locations import durability, state_locations
from services.hub.maintenance import Maintenance, MaintenanceReport
from services.hub.state import HubState, state_path
from services.hub.worker_health import health_path, write_health
from services.hub.workers import WorkerPool
from services.indexer.drain import drain
from services.keys import SIGNING_KEY_ENV_VAR, default_signing_key_path
from services.keys.file_store import FileKeyStore
from services.router.loop import AuditPath
from services.router.topics import TopicLayout, feed_topic
from services.router.worker import AUDIT_PATH_ENV, audit_path_for_broker, audit_path_from_env

log = logging.getLogger("schakel.hub")

STACKING = ("stacking", "run")
STACKING_KEY_FILE = "SCHAKEL_STACKING_KEY_FILE"
"""The stacking worker's ``schakel`` verb (IIPSy; services/stacking)."""
COVERAGE = ("coverage", "run")
INDEXER = ("indexer",)
"""The audit indexer's ``schakel`` verb: the single writer of the routers' audit records."""
"""The coverage worker's ``schakel`` verb (NH Drugsalert; services/coverage)."""
OUTCOMES = ("outcomes", "run")
RIEC = ("riec", "run")
"""The RIEC workplace's feed reader (services/riec): the RIECs' feeds into the workplace."""
"""The outcomes worker's ``schakel`` verb (returns to partners; services/outcomes)."""


@dataclass(frozen=True)
class HubOptions:
    demo: bool = False
    workers: int = 1
    rate: float = 20.0
    tick_s: float = 2.0
    web_port: int | None = 8470
    gateway_port: int | None = 8471


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_hub(options: HubOptions, console: Console, *, outage: BrokerOutage | None = None) -> None:
    """Start everything, print where it is, and run until Ctrl-C or SIGTERM."""
    paths = _hub_paths(options)
    key_path = paths.key_file
    store_keys = FileKeyStore.open(key_path) if key_path.exists() else FileKeyStore.create(key_path)
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        Pseudonymiser(store_keys),
        today=utc_now().date(),
        demo=paths.demo,
    )
    if loaded.policy is None:
        for problem in loaded.checked.errors:
            console.print(str(problem), style="red", markup=False)
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    policy = loaded.policy
    spec = TopicLayout().spec(policy.suppliers, policy.recipients)
    db_url = paths.database_url
    store = SqlAuditStore(make_engine(db_url))
    store.create_schema()
    runtime = open_kafka(paths.broker)
    pool: WorkerPool | None = None
    stacking: WorkerPool | None = None
    coverage: WorkerPool | None = None
    indexer: WorkerPool | None = None
    outcomes: WorkerPool | None = None
    riec: WorkerPool | None = None
    gateway: GatewayThread | None = None
    audit_path = audit_path_for(runtime)
    try:
        maintenance = Maintenance(runtime.settings, store, spec, policy.recipients)
        recovery = _recover(maintenance, runtime, store, audit_path)
        created = recovery.recreated
        env = {
            "SCHAKEL_KAFKA_BOOTSTRAP": runtime.settings.bootstrap,
            "SCHAKEL_DATABASE_URL": db_url,
            "SCHAKEL_KEYS": str(key_path.resolve()),
            SIGNING_KEY_ENV_VAR: str(default_signing_key_path(key_path).resolve()),
            "SCHAKEL_STATE_DIR": str(paths.state.resolve()),
            DEMO_ENV: "1" if paths.demo else "0",
            AUDIT_PATH_ENV: audit_path,
        }
        indexer = _start_indexer(audit_path, env, paths)
        pool = WorkerPool(options.workers, env, paths.logs)
        pool.start()
        stacking_env = stacking_environment(env, paths.demo)
        if stacking_env is not None:  # one instance: evidence of a location comes from many topics
            stacking = WorkerPool(1, stacking_env, paths.logs, name="stacking", command=STACKING)
            stacking.start()
        else:
            console.print(
                f"[yellow]stacking off: set {STACKING_KEY_FILE} to the hub's alert-signing key "
                "(schakel keys partner schakel)[/yellow]"
            )
        coverage, outcomes, riec = _single_workers(env, paths.logs)
        _write_state(paths, runtime, db_url)
        if options.web_port is not None:
            web = WebParts(paths, runtime.settings, policy.covenants)
            _start_web(db_url, store_keys, web, options.web_port, console)
        if options.gateway_port is not None:
            gateway = start_gateway_thread(
                db_url,
                runtime.settings,
                paths.schemas,
                options.gateway_port,
                lambda problem: console.print(f"[yellow]{problem}[/yellow]", markup=False),
                paths=paths,
            )
        _print_started(
            console,
            runtime,
            paths,
            spec,
            created,
            pool,
            options,
            stacking is not None,
            _covenant_lines(policy.covenants, paths.demo, utc_now().date()),
        )
        _print_recovery(console, runtime, recovery)
        asyncio.run(
            _supervise(
                options,
                runtime,
                [p for p in (pool, stacking, coverage, outcomes, riec, indexer) if p is not None],
                maintenance,
                policy.suppliers,
                console,
                paths,
                outage,
            )
        )
    finally:
        _stop(
            console,
            paths,
            gateway,
            (riec, outcomes, coverage, stacking, pool, indexer),
            runtime,
            store,
        )


def _stop(
    console: Console,
    paths: Paths,
    gateway: GatewayThread | None,
    pools: Sequence[WorkerPool | None],
    runtime: KafkaRuntime,
    store: SqlAuditStore,
) -> None:
    """Stop in order: everything that produces first (all pools drain at once), then the
    audit indexer, then index what the audit topic still holds (a memory-only broker would
    take it along), then the broker (which saves its data with nothing writing to it), then
    the audit store."""
    console.print("stopping: gateway, router and stacking workers, indexer, broker, audit store")
    for path in (state_path(paths), health_path(paths)):
        with contextlib.suppress(OSError):
            path.unlink()
    for draining in (p for p in pools if p is not None):
        draining.terminate()  # all drain at once; what the indexer leaves, drain() indexes
    if gateway is not None:
        gateway.stop()
    for started in pools:
        if started is not None:
            started.stop()
    if any(started is not None and started.name == "indexer" for started in pools):
        try:
            drain(runtime.settings, store, timeout_s=60)
        except Exception as exc:  # noqa: BLE001 - the stop goes on; the message says what is left
            console.print(
                f"[red]the audit topic could not be indexed to its end before the broker "
                f"stopped ({exc}); with a memory-only broker its tail is lost[/red]",
                markup=False,
            )
    runtime.close()
    store.close()


def _recover(
    maintenance: Maintenance, runtime: KafkaRuntime, store: SqlAuditStore, path: AuditPath
) -> MaintenanceReport:
    """Before any router produces: topics, then (log-first) index every audit record and feed
    copy the broker holds, then re-deliver what the feeds lost (see the module docstring)."""
    maintenance.ensure_topics()
    if path != "sql":
        drain(runtime.settings, store)
    return maintenance.recover()


def _start_indexer(path: AuditPath, env: dict[str, str], paths: Paths) -> WorkerPool | None:
    """The audit indexer (one: the single writer of the routers' audit records), unless the
    routers write SQL themselves."""
    if path == "sql":
        return None
    indexer = WorkerPool(1, env, paths.logs, name="indexer", command=INDEXER)
    indexer.start()
    return indexer


def audit_path_for(runtime: KafkaRuntime) -> AuditPath:
    """``$SCHAKEL_AUDIT_PATH`` if set; else ``transactional`` on a broker with transactions
    (noida, an external Kafka cluster) and ``audit-first`` on one without (Tansu)."""
    if os.environ.get(AUDIT_PATH_ENV, "").strip():
        return audit_path_from_env()
    broker = runtime.broker
    return audit_path_for_broker(broker is None or broker.supports_transactions)


def _write_state(paths: Paths, runtime: KafkaRuntime, db_url: str) -> None:
    """Tell client commands where this hub is and what its broker keeps (``hub.json``)."""
    broker = runtime.broker
    HubState(
        runtime.settings.bootstrap,
        db_url,
        os.getpid(),
        demo=paths.demo,
        broker=broker.name if broker is not None else "external",
        persistent=broker.persistent if broker is not None else None,
    ).write(state_path(paths))


def _single_workers(env: dict[str, str], logs: Path) -> tuple[WorkerPool, WorkerPool, WorkerPool]:
    """Start the coverage worker (counts per municipality and month: schakel coverage), the
    outcomes worker (returns to partners: the single writer of the matching index) and the
    RIEC workplace's feed reader (the RIECs' feeds into the workplace: web /riec)."""
    coverage = WorkerPool(1, env, logs, name="coverage", command=COVERAGE)
    coverage.start()
    outcomes = WorkerPool(1, env, logs, name="outcomes", command=OUTCOMES)
    outcomes.start()
    riec = WorkerPool(1, env, logs, name="riec", command=RIEC)
    riec.start()
    return coverage, outcomes, riec


def _hub_paths(options: HubOptions) -> Paths:
    """The hub's paths, its state folder made; with ``--demo`` in demo mode (TEST keys count,
    for every part of the hub)."""
    paths = Paths.from_env().absolute()
    if options.demo:
        paths = dataclasses.replace(paths, demo=True)
    paths.state.mkdir(parents=True, exist_ok=True)
    return paths


def stacking_environment(env: dict[str, str], demo: bool) -> dict[str, str] | None:
    """The stacking worker's environment, or None when it cannot sign its alerts.

    Alerts are signed with ``SCHAKEL_STACKING_KEY_FILE``; only the demo (``SCHAKEL_DEMO=1``
    in ``env``) may fall back to the public TEST key of the hub party.
    """
    if os.environ.get(STACKING_KEY_FILE, "").strip():
        return env
    if demo:
        return {**env, DEMO_ENV: "1"}
    return None


async def _supervise(
    options: HubOptions,
    runtime: KafkaRuntime,
    pools: Sequence[WorkerPool],
    maintenance: Maintenance,
    partners: frozenset[str],
    console: Console,
    paths: Paths,
    outage: BrokerOutage | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    published: Counter[str] = Counter()
    failures = SendFailures()
    demo = (
        asyncio.create_task(
            publish_demo(
                runtime.settings,
                partners,
                stop,
                rate=options.rate,
                clock=utc_now,
                counts=published,
                position=paths.state / DEMO_POSITION_FILE,
                failures=failures,
            )
        )
        if options.demo
        else None
    )
    _report_workers(pools, paths, console)
    ticks = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.tick_s)
        if stop.is_set():
            break
        ticks += 1
        await _watch_broker(runtime, maintenance, console, outage)
        events = [e for pool in pools for e in pool.supervise()]
        for event in events:
            console.print(event, markup=False)
        if events:
            _report_workers(pools, paths, console)
        try:
            report = await asyncio.to_thread(maintenance.tick)
        except Exception as exc:  # noqa: BLE001 - a failed tick is retried on the next one
            console.print(
                f"[yellow]maintenance tick failed: {exc.__class__.__name__}: {exc}[/yellow]"
            )
            continue
        if report.verified:
            console.print(
                f"[yellow]the restarted broker had lost {report.redelivered} unconsumed feed "
                "message(s); re-delivered them[/yellow]"
                if report.redelivered
                else "the restarted broker kept every delivered feed message: nothing to "
                "re-deliver",
            )
        if report.recreated:
            console.print(
                f"[yellow]broker had lost {len(report.recreated)} topic(s): recreated them and "
                f"re-delivered {report.redelivered} unconsumed feed message(s)[/yellow]"
            )
        if options.demo and ticks % 5 == 0:
            console.print(
                f"demo partners published {sum(published.values())} signals"
                + (f" ({failures.failed} not acknowledged)" if failures.failed else ""),
                markup=False,
            )
    if demo is not None:
        await demo


async def _watch_broker(
    runtime: KafkaRuntime,
    maintenance: Maintenance,
    console: Console,
    outage: BrokerOutage | None,
) -> None:
    """Restart an embedded broker that stopped answering, then re-deliver what it no longer
    holds: on a persistent broker only the feed messages missing at their recorded place
    (:meth:`Maintenance.request_redelivery` with ``verify``), never the whole backlog."""
    broker = runtime.broker
    if broker is None:
        return
    if not broker.is_healthy():
        console.print(
            "[yellow]embedded broker is not answering; restarting it, then re-delivering the "
            "feed messages it no longer holds[/yellow]"
        )
        await asyncio.to_thread(broker.restart)
        maintenance.request_redelivery(verify=broker.persistent)
    elif outage is not None and (held_back := outage.back()) is not None:
        console.print(
            f"the broker answers again ({held_back} client error line(s) held back while it "
            "was away)",
            markup=False,
        )


def _report_workers(pools: Sequence[WorkerPool], paths: Paths, console: Console) -> None:
    """Write how every worker is doing for `schakel status`; say so loudly when one keeps
    exiting (a crash-looping worker must not pass for a running one)."""
    workers = [w for pool in pools for w in pool.health()]
    write_health(health_path(paths), workers)
    now = time.time()
    for worker in workers:
        if worker.looping(now) and not worker.running:
            console.print(worker.problem(now), style="red", markup=False, highlight=False)


def _covenant_lines(covenants: Sequence[Covenant], demo: bool, today: date) -> list[str]:
    """Banner lines: the covenant versions, which are illustrations, and the key mode."""
    illustrations = [c.key for c in covenants if c.illustration]
    in_force = sum(1 for c in covenants if c.in_force(today))
    lines = [f"[b]covenants[/b]  {len(covenants)} version(s), {in_force} in force today"]
    if illustrations:
        lines.append(
            "[b]           ILLUSTRATIONS[/b], not the text of signed covenants: "
            + ", ".join(illustrations)
            + " (schakel covenant list)"
        )
    lines.append(
        "[b]keys[/b]       "
        + (
            "[yellow]demo mode: the demo partners' TEST keys are accepted (covenants/demo/); "
            "never in production[/yellow]"
            if demo
            else "partner keys registered in the covenants; TEST keys are refused"
        )
    )
    return lines


@dataclass(frozen=True)
class WebParts:
    """What the web workplace of ``schakel up`` is built from besides the database."""

    paths: Paths
    kafka: KafkaSettings
    covenants: Sequence[Covenant]


def _start_web(
    db_url: str, keys: FileKeyStore, parts: WebParts, port: int, console: Console
) -> None:
    """Serve the privacy officer's workplace on 127.0.0.1 from a daemon thread, with the
    re-identification pages audited into a hash-chained, checkpointed store, and the RIEC
    analysts' pages (hand-over signed with the RIEC's key, or the TEST key in demo mode)."""
    from services.audit.hub_store import open_hub_store  # noqa: PLC0415 - only when served
    from services.reid.workflow import Reidentification  # noqa: PLC0415 - only when served
    from services.riec.wiring import (  # noqa: PLC0415 - only when served
        barrier_plan,
        case_files,
        hub_handover,
    )
    from services.web.serve import serve  # noqa: PLC0415 - web stack only when served

    def run() -> None:
        try:
            engine = make_engine(db_url)
            state, covenants = parts.paths.state, parts.covenants
            audit = open_hub_store(db_url, state, signer=None)  # the web never signs
            flow = Reidentification(engine, audit, Pseudonymiser(keys), covenants)
            handover = hub_handover(keys, parts.paths, parts.kafka)
            riec = case_files(engine, audit, covenants, parts.paths, flow, handover)
            plan = barrier_plan(riec.workplace, parts.paths)
            serve(
                engine,
                keys,
                state,
                host="127.0.0.1",
                port=port,
                reid=flow,
                riec=riec,
                plan=plan,
                kafka=parts.kafka,  # the integrity page reads the audit index's lag
            )
        except (OSError, SystemExit, SchakelError) as exc:
            console.print(f"[yellow]web workplace not started on port {port}: {exc}[/yellow]")

    threading.Thread(target=run, name="schakel-web", daemon=True).start()


def _print_recovery(console: Console, runtime: KafkaRuntime, recovery: MaintenanceReport) -> None:
    """Say what the broker had lost since the last run and what was re-delivered."""
    if not recovery.redelivered:
        return
    per_topic = ", ".join(f"{t}={n}" for t, n in sorted(recovery.redelivered_by_topic.items()))
    if runtime.broker is not None and not runtime.broker.persistent:
        cause = "it keeps nothing across a restart"
    elif any(topic in recovery.redelivered_by_topic for topic in recovery.recreated):
        cause = "its feed topics were missing: new broker data, or data lost"
    else:
        cause = "it lost the last writes before it stopped"
    console.print(
        f"[yellow]the broker no longer held {recovery.redelivered} unconsumed feed message(s) "
        f"the audit records as delivered ({cause}); re-delivered them: {per_topic}[/yellow]",
    )


def _print_started(
    console: Console,
    runtime: KafkaRuntime,
    paths: Paths,
    spec: dict[str, int],
    created: list[str],
    pool: WorkerPool,
    options: HubOptions,
    stacking: bool,
    covenant_lines: list[str],
) -> None:
    embedded = runtime.broker
    broker = (
        f"embedded {embedded.name} on {runtime.settings.bootstrap}; "
        + durability(embedded.name, embedded.persistent)
        if embedded is not None
        else f"{runtime.settings.bootstrap}; " + durability("external", None)
    )
    where = state_locations(
        paths,
        witness_path(paths.state),
        embedded.data_dir if embedded is not None else None,
        memory_only=embedded is not None and not embedded.persistent,
    )
    feeds = sorted(t for t in spec if t.startswith(feed_topic("")))
    lines = [
        f"[b]broker[/b]     {broker}",
        *(f"[b]{place.part:<10}[/b] {place.line()}" for place in where),
        f"[b]topics[/b]     {len(spec)} ({len(created)} created now), e.g. {', '.join(feeds[:3])}",
        *covenant_lines,
        f"[b]routers[/b]    {options.workers} worker(s), pids {', '.join(map(str, pool.pids()))}; logs in {pool.log_dir}",
        (
            f"[b]stacking[/b]   1 worker (IIPSy alerts; list them: schakel stacking alerts); logs in {pool.log_dir}"
            if stacking
            else "[b]stacking[/b]   off (no alert-signing key: SCHAKEL_STACKING_KEY_FILE)"
        ),
        "[b]coverage[/b]   1 worker (NH Drugsalert counts: schakel coverage; web /coverage)",
        "[b]outcomes[/b]   1 worker (returns to partners; schakel indicators; web /indicators)",
        "[b]riec[/b]       1 worker (the RIECs' feeds into the analysts' workplace; web /riec)",
        "[b]web[/b]        "
        + (
            f"http://127.0.0.1:{options.web_port}/ (first: schakel users add NAME --role admin)"
            if options.web_port is not None
            else "off"
        ),
        "[b]gateway[/b]    "
        + (
            f"http://127.0.0.1:{options.gateway_port}/v1/ (a token: schakel gateway token issue --recipient riec-nh)"
            if options.gateway_port is not None
            else "off"
        ),
        f"[b]demo[/b]       {'simulated partners at ' + str(options.rate) + ' signals/s' if options.demo else 'off (add --demo)'}",
        "",
        *(f"{label:<15}{command}" for label, command in SUGGESTED),
        "stop:          Ctrl-C",
    ]
    print_banner(console, "Schakel hub is up", lines)


SUGGESTED = (
    ("read a feed:", "schakel subscribe --as riec-nh --from-beginning --follow"),
    ("publish:", "schakel publish --as liander examples/liander.jsonl"),
    ("status:", "schakel status"),
)
"""The commands the banner suggests (tests/hub/test_suggested_commands.py runs each)."""


def print_banner(console: Console, title: str, lines: Sequence[str]) -> None:
    """``lines`` (console markup) in a panel, never cut: paths and commands must stay whole.

    Where the panel fits the console it is drawn as it is. Otherwise, on a terminal the lines
    are printed without a frame and the terminal wraps them (a frame would split a path with
    its border); elsewhere (a pipe, a log file, whose width Rich takes as 80 columns) the
    panel is drawn as wide as its longest line.
    """
    body = Text.from_markup("\n".join(lines))
    needed = max(*map(cell_len, body.plain.split("\n")), cell_len(title) + 6) + 4
    if needed <= console.width:
        console.print(Panel(body, title=title, expand=False), soft_wrap=False)
    elif console.is_terminal:
        console.print(Text(title, style="bold"), soft_wrap=True)
        console.print(body, soft_wrap=True)
    else:
        width = console.width
        console.width = needed
        try:
            console.print(Panel(body, title=title, expand=False), soft_wrap=False)
        finally:
            console.width = width
