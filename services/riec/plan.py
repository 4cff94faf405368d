"""The joint barrier plan: barriers partners raised per barrier-model step and municipality,
and next to each the measured effect — per calendar quarter, before and after it was raised.

Three measures, each a count for one municipality in one quarter:

``signals``
    signals the covenants cover whose type informs the barrier's step (coverage facts);
``reports``
    reports by residents, farmers and traders (coverage's ``reports``: NH Drugsalert);
``findings``
    positive findings at a location (the outcome index, issue 13).

Suppression is safe against differencing (:mod:`services.core.coverage.by_type`): the only
counts released are per signal type, each suppressed below the threshold (default 5) on its
own, with complementary suppression against the coverage page's monthly cells; a step's
``signals`` and the ``reports`` are sums of released type counts only. Cells are whole
calendar quarters, the same whatever barrier asks. ``findings`` is one count per municipality
and quarter, suppressed below the threshold. The threshold is the stricter of 5 and what the
covenants in force ask of coverage releases (:mod:`services.riec.plan_threshold`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

from sqlalchemy import Engine, func, insert, inspect, select

from services.core.barriers.model import BarrierModel
from services.core.coverage.by_type import released_sum
from services.core.coverage.facts import category_of
from services.core.coverage.release import DEFAULT_THRESHOLD
from services.database.tables.riec import riec_barriers
from services.riec import audit_outbox
from services.riec.effect import Cell, Quarter, findings_in, released_types
from services.riec.model import BARRIER_KINDS, Barrier, RiecError
from services.riec.records import action_record
from services.riec.workplace import Workplace, clean
from services.web.users import User

__all__ = ["MEASURES", "BarrierPlan", "Cell", "Quarter", "campaign_counts"]

MEASURES: Final = ("signals", "reports", "findings")
QUARTERS_BEFORE: Final = 2
QUARTERS_AFTER: Final = 2


class BarrierPlan:
    """The plan on ``workplace``'s database; ``models`` are the barrier models (steps),
    ``municipalities`` the CBS codes with their names, ``parties`` each covenant's party ids
    (who may be named as a barrier's partner)."""

    def __init__(
        self,
        workplace: Workplace,
        models: Sequence[BarrierModel],
        municipalities: Mapping[str, str],
        *,
        parties: Mapping[str, frozenset[str]] | None = None,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.workplace = workplace
        self.models = {m.model: m for m in models}
        self.municipalities = dict(municipalities)
        self.parties = dict(parties or {})
        self.threshold = threshold

    def partners_for(self, user: User) -> list[str]:
        """The partners ``user`` may name: the parties of the covenants in their scope."""
        covenants = self.workplace.reach(user).covenants
        return sorted(
            {
                p
                for c, ids in self.parties.items()
                if covenants is None or c in covenants
                for p in ids
            }
        )

    def municipalities_for(self, user: User) -> dict[str, str]:
        """The municipalities ``user`` may raise a barrier in: their RIEC's region."""
        region = self.workplace.reach(user).region
        return {c: n for c, n in self.municipalities.items() if region is None or c in region}

    @property
    def engine(self) -> Engine:
        return self.workplace.engine

    def raise_barrier(
        self, user: User, *, model: str, step: str, partner: str, kind: str,
        municipality: str, description: str, since: date, source: str | None = None,
    ) -> Barrier:  # fmt: skip
        """Add a barrier to the plan (audited; ``source`` names the data file it came from)."""
        row = self.check(
            user, model=model, step=step, partner=partner, kind=kind,
            municipality=municipality, description=description, since=since,
        )  # fmt: skip
        now = self.workplace.now()
        row = {**row, "raised_by": user.name, "created_at": now}
        with self.engine.begin() as connection:
            key = connection.execute(insert(riec_barriers), row).inserted_primary_key
            barrier = _barrier({"id": int(key[0]) if key else 0, **row})
            record_id = f"riec-barrier-{barrier.id}-{self.workplace.new_id()}"
            reference: dict[str, Any] = {
                "barrier": barrier.id, "model": model, "step": step, "kind": kind,
                "municipality": municipality, "partner": row["partner"],
            }  # fmt: skip
            if source is not None:
                reference["source"] = source
            record = action_record(
                record_id, "barrier", actor=user.name, at=now, recipient=None,
                covenant_id=None, object_kind="riec-barrier", reference=reference,
            )  # fmt: skip
            audit_outbox.stage(connection, [record])  # with the barrier, or neither
        self.workplace.flush_audit()
        return barrier

    def check(
        self, user: User, *, model: str, step: str, partner: str, kind: str,
        municipality: str, description: str, since: date,
    ) -> dict[str, Any]:  # fmt: skip
        """The row ``user``'s barrier would be stored as; :class:`RiecError` says what is
        wrong (an unknown model, step, kind, municipality or partner; outside the scope)."""
        found = self.models.get(model)
        if found is None:
            raise RiecError(f"no barrier model {model!r}. Fix: one of {', '.join(self.models)}.")
        if step not in {s.id for s in found.steps}:
            raise RiecError(f"{model} has no step {step!r}. Fix: pick one of its steps.")
        if kind not in BARRIER_KINDS:
            raise RiecError(f"kind must be one of {', '.join(BARRIER_KINDS)}.")
        if municipality not in self.municipalities:
            raise RiecError(f"unknown municipality {municipality!r}. Fix: a CBS code like GM0361.")
        if municipality not in self.municipalities_for(user):
            raise RiecError(
                f"municipality {municipality} is outside your RIEC's region. Fix: raise barriers "
                "in your region's municipalities only."
            )
        partner = partner.strip()
        if partner not in self.partners_for(user):
            raise RiecError(
                f"unknown partner {partner[:100]!r}: not a party of your covenants. Fix: a "
                "party id from the covenants, such as "
                f"{', '.join(self.partners_for(user)[:3]) or 'gemeente-alkmaar'}."
            )
        text = clean("description", description, 500)
        return {
            "model": model, "step": step, "partner": partner, "kind": kind,
            "municipality": municipality, "description": text, "since": since,
        }  # fmt: skip

    def barriers(self, municipality: str | None = None) -> list[Barrier]:
        if not inspect(self.engine).has_table("riec_barriers"):
            return []
        statement = select(riec_barriers).order_by(
            riec_barriers.c.model, riec_barriers.c.step, riec_barriers.c.since
        )
        if municipality is not None:
            statement = statement.where(riec_barriers.c.municipality == municipality)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).mappings().all()
        return [_barrier(r) for r in rows]

    def effect(self, barrier: Barrier) -> list[Cell]:
        """The barrier's municipality, quarter by quarter around the one it was raised in."""
        today = self.workplace.now().date()
        raised = Quarter.of(barrier.since)
        current = Quarter.of(today)
        types = self._types_of(barrier.step)
        reports = sorted(t for t in self.workplace.registry.types() if category_of(t) == "reports")
        cells = []
        for offset in range(-QUARTERS_BEFORE, QUARTERS_AFTER + 1):
            quarter = raised.shifted(offset)
            if quarter.start.date() > today:
                break
            if quarter == current:  # in progress: nothing released until it is over
                cells.append(
                    Cell(
                        quarter, offset, dict.fromkeys(MEASURES), complete=False,
                        types=dict.fromkeys(types), report_types=dict.fromkeys(reports),
                    )
                )  # fmt: skip
                continue
            released = released_types(self.engine, barrier.municipality, quarter, self.threshold)
            findings = findings_in(self.engine, barrier.municipality, quarter)
            counts = {
                "signals": released_sum(released, types),
                "reports": released_sum(released, reports),
                "findings": findings if findings >= self.threshold else None,
            }
            cells.append(
                Cell(
                    quarter, offset, counts, complete=True,
                    types={t: released.get(t) for t in types},
                    report_types={t: released.get(t) for t in reports},
                )
            )  # fmt: skip
        return cells

    def _types_of(self, step: str) -> list[str]:
        registry = self.workplace.registry
        return [t for t in registry.types() if step in registry.get(t).barrier_steps]


def campaign_counts(engine: Engine) -> dict[str, int]:
    """Municipality → how many campaigns in the plan are aimed at it (none without a plan)."""
    if not inspect(engine).has_table("riec_barriers"):
        return {}
    c = riec_barriers.c
    statement = (
        select(c.municipality, func.count()).where(c.kind == "campaign").group_by(c.municipality)
    )
    with engine.connect() as connection:
        return {m: int(n) for m, n in connection.execute(statement).all()}


def _barrier(row: Mapping[Any, Any]) -> Barrier:
    return Barrier(
        id=int(row["id"]),
        model=str(row["model"]),
        step=str(row["step"]),
        partner=str(row["partner"]),
        kind=str(row["kind"]),
        municipality=str(row["municipality"]),
        description=str(row["description"]),
        since=row["since"],
        raised_by=str(row["raised_by"]),
    )
