"""The covenant report: counts per rule, recipient, month and result, with an SVG bar chart
and a CSV export. Open to every role (it shows aggregates only); a scoped privacy officer's
counts include only records of their scope, and a covenant outside that scope is answered
"not in your scope" (404) rather than with a report of zeros.
"""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine

from services.audit import queries
from services.audit.queries import Scope
from services.audit.report import Report, covenant_report
from services.config import Paths
from services.web.chart import bar_chart
from services.web.context import Viewer, WebContext
from services.web.covenant_notes import illustrations
from services.web.forms import FormError, period, text
from services.web.users import ROLES


class OutOfScopeError(Exception):
    """The covenant asked for lies outside the viewer's scope; the message says so."""


def report_csv(report: Report) -> str:
    """The report as CSV rows ``section,key,count``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "count"])
    writer.writerow(["total", report.covenant_id, report.total])
    sections = (
        ("rule", report.by_rule),
        ("recipient", report.by_recipient),
        ("month", report.by_month),
        ("result", report.by_result),
        ("withheld_reason", report.withheld_reasons),
        ("plain_disclosure", report.plain_disclosures),
    )
    for section, items in sections:
        for key, count in items:
            writer.writerow([section, _cell(key), count])
    return out.getvalue()


def _cell(value: str) -> str:
    """Defuse spreadsheet formulas (CSV injection): a leading =, +, - or @ is quoted."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def out_of_scope(engine: Engine, covenant: str, scope: Scope) -> str | None:
    """Why ``covenant`` lies outside ``scope`` (so a report on it would count nothing), or
    ``None`` when it is within it."""
    if scope.covenants is not None and covenant not in scope.covenants:
        yours = ", ".join(sorted(scope.covenants)) or "none yet (ask an admin for a scope)"
        return f"{covenant} is not in your scope. Your covenants: {yours}."
    if scope.partners is not None and covenant not in queries.covenants(engine, scope):
        yours = ", ".join(sorted(scope.partners)) or "none"
        return (
            f"{covenant} is not in your scope: no decision under it involves your partners "
            f"({yours})."
        )
    return None


def routes(context: WebContext, paths: Paths | None = None) -> APIRouter:
    router = APIRouter()

    def build(request: Request, viewer: Viewer, route: str) -> tuple[dict[str, str], Report | None]:
        """The form values and the report ``viewer`` asked for (``None`` without a covenant);
        :class:`OutOfScopeError` for a covenant outside the viewer's scope."""
        values = dict(request.query_params)
        covenant = text(values, "covenant")
        if covenant is None:
            return values, None
        why = out_of_scope(context.engine, covenant, viewer.user.scope)
        if why is not None:
            context.logged(viewer, route, {"covenant": covenant, "out_of_scope": True})
            raise OutOfScopeError(why)
        report = covenant_report(context.engine, covenant, period(values), viewer.user.scope)
        detail = {"covenant": covenant, "from": values.get("from"), "to": values.get("to")}
        context.logged(viewer, route, {k: v for k, v in detail.items() if v})
        return values, report

    @router.get("/report", response_class=HTMLResponse)
    def report_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, ROLES)
        known = queries.covenants(context.engine, viewer.user.scope)
        asked = dict(request.query_params)
        try:
            values, report = build(request, viewer, "report")
        except FormError as error:
            return context.page(
                "report.html", viewer, 400, error=str(error), values={}, known=known
            )
        except OutOfScopeError as error:
            return context.page(
                "report.html", viewer, 404, out_of_scope=str(error), values=asked, known=known
            )
        charts = (
            {
                "Per month": bar_chart(report.by_month),
                "Per rule": bar_chart(report.by_rule),
                "Per recipient": bar_chart(report.by_recipient),
            }
            if report
            else {}
        )
        note = illustrations(paths or Paths.from_env()).get(report.covenant_id) if report else None
        return context.page(
            "report.html",
            viewer,
            values=values,
            report=report,
            charts=charts,
            known=known,
            illustration=note,
        )

    @router.get("/report.csv", response_model=None)
    def report_download(request: Request) -> Response:
        viewer = context.viewer(request, ROLES)
        try:
            _, report = build(request, viewer, "report.csv")
        except FormError as error:
            return Response(str(error), status_code=400, media_type="text/plain")
        except OutOfScopeError as error:
            return Response(str(error), status_code=404, media_type="text/plain")
        if report is None:
            return Response("covenant is required", status_code=400, media_type="text/plain")
        name = "".join(c for c in report.covenant_id if c.isalnum() or c in "-_")[:60]
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="report-{name or "x"}.csv"'},
        )

    @router.get("/api/report")
    def report_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        try:
            _, report = build(request, viewer, "api/report")
        except FormError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except OutOfScopeError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        if report is None:
            return JSONResponse({"error": "covenant is required"}, status_code=400)
        return JSONResponse(report.to_json())

    return router
