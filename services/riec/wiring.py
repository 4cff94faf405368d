"""Building the RIEC workplace from the hub's configuration, for the web workplace and the
feed reader (``schakel up``, ``schakel web``, ``schakel riec``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from services.audit.model import AuditStore
from services.broker.settings import KafkaSettings
from services.config import Paths
from services.core.covenant.model import Covenant
from services.core.keys import KeyStore
from services.core.policy import Policy
from services.core.pseudonyms import Pseudonymiser
from services.core.regions import ReferenceData
from services.core.schema_registry import SchemaRegistry
from services.outcomes.store import SqlOutcomeStore
from services.reid.workflow import Reidentification
from services.riec.cases import CaseFiles
from services.riec.handover import HandOver
from services.riec.items import Locate
from services.riec.locate import locator
from services.riec.plan import BarrierPlan
from services.riec.plan_threshold import plan_threshold
from services.riec.publish import kafka_publisher, riec_signer
from services.riec.scope import regions
from services.riec.workplace import Workplace


def case_files(
    engine: Engine,
    audit: AuditStore,
    covenants: Sequence[Covenant],
    paths: Paths,
    reid: Reidentification | None = None,
    handover: HandOver | None = None,
) -> CaseFiles:
    """The workplace on ``engine`` (the hub's database), its tables made if missing; outcomes
    go to the outcome index on the same database."""
    registry = SchemaRegistry.load(paths.schemas)
    workplace = Workplace(
        engine, audit, registry, regions(covenants, ReferenceData.load(paths.reference))
    )
    workplace.create_schema()
    outcomes = SqlOutcomeStore(engine)
    outcomes.create_schema()
    return CaseFiles(workplace, reid, outcomes, handover)


def barrier_plan(
    workplace: Workplace, paths: Paths, covenants: Sequence[Covenant] | None = None
) -> BarrierPlan:
    """The joint barrier plan over the shipped barrier models and the reference
    municipalities; a barrier's partner is a party of ``covenants`` (default: the covenant
    files, read once)."""
    from services.config import check_covenants  # noqa: PLC0415
    from services.core.barriers.loader import load_models  # noqa: PLC0415

    reference = ReferenceData.load(paths.reference)
    names = {code: m.name for code, m in reference.municipalities.items()}
    if covenants is None:
        today = datetime.now(UTC).date()
        _, _, checked = check_covenants(
            paths.covenants, paths.schemas, paths.reference, today=today, demo=paths.demo
        )
        covenants = [c.covenant for c in checked.covenants]
    parties: dict[str, frozenset[str]] = {}
    for covenant in covenants:
        ids = frozenset(covenant.parties)
        parties[covenant.covenant] = parties.get(covenant.covenant, frozenset()) | ids
    return BarrierPlan(
        workplace, load_models(), names, parties=parties, threshold=plan_threshold(covenants)
    )


def hub_handover(keys: KeyStore, paths: Paths, kafka: KafkaSettings) -> HandOver | None:
    """Hand-over for the web workplace of a running hub (``None`` without a RIEC key): the
    covenants in force are re-read when their files change, as the router does."""
    from services.config import Loaded, load_policy  # noqa: PLC0415
    from services.router.policy_source import PolicySource  # noqa: PLC0415

    signer = riec_signer(demo=paths.demo)
    if signer is None:
        return None
    pseudonymiser = Pseudonymiser(keys)

    def load(today: date) -> Loaded:
        return load_policy(
            list(paths.covenants), paths.schemas, paths.reference, pseudonymiser,
            today=today, demo=paths.demo,
        )  # fmt: skip

    source = PolicySource(load, paths.covenants, lambda: datetime.now(UTC).date())

    def rules() -> tuple[SchemaRegistry, Policy]:
        source.maybe_reload()
        return source.current.registry, source.current.policy

    return HandOver(pseudonymiser, rules, signer, kafka_publisher(kafka))


@dataclass
class HubWorkplace:
    cases: CaseFiles
    locate: Locate
    audit: AuditStore

    def close(self) -> None:
        self.audit.close()
        self.cases.workplace.engine.dispose()


def hub_workplace() -> HubWorkplace:
    """The workplace of the hub this process belongs to (its environment)."""
    from services.audit.hub_store import hub_signer, open_hub_store  # noqa: PLC0415
    from services.config import load_policy  # noqa: PLC0415
    from services.database.engine import database_url, make_engine  # noqa: PLC0415
    from services.keys import default_keys_path  # noqa: PLC0415
    from services.keys.file_store import FileKeyStore  # noqa: PLC0415

    paths = Paths.from_env()
    keys: KeyStore = FileKeyStore.open(default_keys_path())
    pseudonymiser = Pseudonymiser(keys)
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference, pseudonymiser,
        today=datetime.now(UTC).date(), demo=paths.demo,
    )  # fmt: skip
    if loaded.policy is None:
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    url = database_url()
    # it writes purge records: it signs checkpoints where it has the signing key file
    audit = open_hub_store(url, paths.state, hub_signer(required=False))
    cases = case_files(make_engine(url), audit, loaded.policy.covenants, paths)
    return HubWorkplace(cases, locator(pseudonymiser), audit)
