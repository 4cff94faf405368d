"""The covenant report: counts per rule, recipient, month and result, with an SVG bar chart
and a CSV export. Open to every role (it shows aggregates only); a scoped privacy officer's
counts include only records of their scope.
"""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.audit import queries
from services.audit.report import Report, covenant_report
from services.config import Paths
from services.web.chart import bar_chart
from services.web.context import Viewer, WebContext
from services.web.covenant_notes import illustrations
from services.web.forms import FormError, period, text
from services.web.users import ROLES


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


def routes(context: WebContext, paths: Paths | None = None) -> APIRouter:
    router = APIRouter()

    def build(request: Request, route: str) -> tuple[Viewer, dict[str, str], Report | None]:
        viewer = context.viewer(request, ROLES)
        values = dict(request.query_params)
        covenant = text(values, "covenant")
        if covenant is None:
            return viewer, values, None
        report = covenant_report(context.engine, covenant, period(values), viewer.user.scope)
        detail = {"covenant": covenant, "from": values.get("from"), "to": values.get("to")}
        context.logged(viewer, route, {k: v for k, v in detail.items() if v})
        return viewer, values, report

    @router.get("/report", response_class=HTMLResponse)
    def report_page(request: Request) -> HTMLResponse:
        try:
            viewer, values, report = build(request, "report")
        except FormError as error:
            viewer = context.viewer(request, ROLES)
            return context.page("report.html", viewer, 400, error=str(error), values={})
        known = queries.covenants(context.engine, viewer.user.scope)
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
        try:
            _, _, report = build(request, "report.csv")
        except FormError as error:
            return Response(str(error), status_code=400, media_type="text/plain")
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
        try:
            _, _, report = build(request, "api/report")
        except FormError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        if report is None:
            return JSONResponse({"error": "covenant is required"}, status_code=400)
        return JSONResponse(report.to_json())

    return router
