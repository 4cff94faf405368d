"""The barrier-model page: for every business-process step of the cannabis and synthetic-drug
models, the signal types that inform it, the partners that supply them, the covenant rules
(in force today) that carry them, the recipients, and the signals decided in the last 30 days;
steps without a signal source or a recipient are marked as gaps.

Open to every role (covenant facts and counts only); a scoped privacy officer's volumes count
only the audit records of their scope. Each view is access-logged. Covenants and barrier
models are read per request, so the page follows edits to the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.config import Paths, check_covenants
from services.core.barriers.loader import DEFAULT_BARRIERS, BarrierModelError, load_models
from services.core.barriers.matrix import StepRow, barrier_matrix
from services.coverage.volumes import signal_volumes
from services.web.context import Viewer, WebContext
from services.web.users import ROLES


class MatrixUnavailableError(Exception):
    """The covenants or barrier models have errors; the message says where to look."""


def rules_by_covenant(rules: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``covenant@version/rule`` ids grouped as ``(covenant@version, [rule, ...])``, so the
    page names each covenant once and lists its rules under it."""
    grouped: dict[str, list[str]] = {}
    for rule in rules:
        covenant, _, name = rule.partition("/")
        grouped.setdefault(covenant, []).append(name)
    return list(grouped.items())


def routes(
    context: WebContext, paths: Paths | None = None, barriers: Sequence[Path] = (DEFAULT_BARRIERS,)
) -> APIRouter:
    router = APIRouter()
    where = paths or Paths.from_env()

    def build(
        request: Request, route: str
    ) -> tuple[Viewer, str | None, list[StepRow], dict[str, str], list[tuple[str, str]]]:
        """The viewer, the model asked for, the matrix, the title of each model and the
        provenance note of each model that has one."""
        viewer = context.viewer(request, ROLES)
        model = request.query_params.get("model") or None
        now = datetime.now(UTC)
        try:
            models = load_models(barriers)
        except BarrierModelError as error:
            raise MatrixUnavailableError(f"barrier models have errors: {error}") from None
        registry, _, checked = check_covenants(
            where.covenants, where.schemas, where.reference, today=now.date(), demo=where.demo
        )
        if not checked.ok:
            raise MatrixUnavailableError("covenants have errors; run `schakel covenant check`")
        if model is not None:
            models = [m for m in models if m.model == model]
        covenants = [c.covenant for c in checked.covenants if c.covenant.in_force(now.date())]
        volumes = signal_volumes(context.engine, now, viewer.user.scope)
        context.logged(viewer, route, {"model": model or "*"})
        titles = {m.model: m.title for m in models}
        notes = [(m.title, m.provenance) for m in models if m.provenance]
        return viewer, model, barrier_matrix(models, registry, covenants, volumes), titles, notes

    @router.get("/barriers", response_class=HTMLResponse)
    def barriers_page(request: Request) -> HTMLResponse:
        try:
            viewer, model, rows, titles, notes = build(request, "barriers")
        except MatrixUnavailableError as error:
            viewer = context.viewer(request, ROLES)
            return context.page("barriers.html", viewer, 503, error=str(error), rows=[])
        gaps = sum(1 for r in rows if r.gaps)
        rules = {r.step: rules_by_covenant(r.rules) for r in rows}
        return context.page(
            "barriers.html",
            viewer,
            rows=rows,
            model=model,
            gaps=gaps,
            titles=titles,
            rules=rules,
            provenance=notes,
        )

    @router.get("/api/barriers")
    def barriers_json(request: Request) -> JSONResponse:
        try:
            _, _, rows, _, _ = build(request, "api/barriers")
        except MatrixUnavailableError as error:
            return JSONResponse({"error": str(error)}, status_code=503)
        return JSONResponse([r.to_json() for r in rows])

    return router
