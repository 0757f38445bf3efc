"""Auditor pages and API: the report list with filters, one report's handover chain with the
chain verification status, exports (CSV/JSON) and statistics.

Metadata only: everything comes from :mod:`orosflow.views.auditor`, which never decrypts. Every
export is itself an audit event, so the record shows who took which data out.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from models.accounts import Role
from orosflow.core.csvfile import DEFAULT_SEPARATOR, SEPARATORS, UnknownSeparator, parse_separator
from orosflow.core.db import session_scope
from orosflow.handover.lifecycle import REPORT_LABELS
from orosflow.portal.web import (
    ApiAuditor,
    ApiError,
    AuditorUser,
    ErrorOut,
    PageError,
    api_router,
    not_found_page,
    page_router,
    render,
)
from orosflow.views import auditor as av

CSV_MEDIA = "text/csv; charset=utf-8"

pages = page_router(Role.AUDITOR, prefix="/audit")
api = api_router(Role.AUDITOR, prefix="/audit", tags=["audit"])

# Query parameters shared by pages and API (raw strings: audit_view checks them in Swedish).
FromDate = Annotated[
    str | None, Query(description="Inkommen från och med, ÅÅÅÅ-MM-DD (Stockholmstid).")
]
ToDate = Annotated[
    str | None, Query(description="Inkommen till och med, ÅÅÅÅ-MM-DD (Stockholmstid).")
]
Municipality = Annotated[
    str | None, Query(description="Kommunkod (4 siffror) för en mottagare av anmälan.")
]
Status = Annotated[
    str | None,
    Query(description="Anmälans status: " + ", ".join(REPORT_LABELS) + "."),
]
Urgency = Annotated[str | None, Query(description="Brådska: acute eller not_acute.")]


Separator = Annotated[
    str | None,
    Query(
        description="CSV-avgränsare: semicolon (standard; Excel med svenska inställningar, "
        "decimalkomma) eller comma (decimalpunkt).",
        json_schema_extra={"enum": list(SEPARATORS)},
    ),
]


def _separator(raw: str | None, *, api: bool) -> str:
    """The CSV separator from ``?sep=``; an unknown one is a Swedish 400 page / 422 error."""
    try:
        return parse_separator(raw)
    except UnknownSeparator:
        if api:
            raise ApiError(
                422,
                "invalid_separator",
                UnknownSeparator.message,
                fields=[
                    {
                        "field": "sep",
                        "code": "invalid_separator",
                        "message": UnknownSeparator.message,
                    }
                ],
            ) from None
        raise PageError(400, "Okänd avgränsare", UnknownSeparator.message) from None


def _raw(
    from_date: str | None,
    to_date: str | None,
    municipality: str | None,
    status: str | None,
    urgency: str | None,
) -> dict[str, str]:
    return {
        "from_date": from_date or "",
        "to_date": to_date or "",
        "municipality": municipality or "",
        "status": status or "",
        "urgency": urgency or "",
    }


def _api_filters(raw: dict[str, str]) -> av.AuditFilters:
    try:
        return av.parse_filters(**raw)
    except av.FilterError as exc:
        raise ApiError(
            422,
            "invalid_filter",
            "Filtret är ogiltigt.",
            fields=[e.as_json() for e in exc.errors],
        ) from None


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


def _filter_context(raw: dict[str, str], errors: list[av.FilterFieldError]) -> dict[str, Any]:
    """What the filter form needs: the values as typed, errors, and the choices."""
    with session_scope() as s:
        municipalities = av.municipality_options(s)
    chosen = raw["municipality"]
    if chosen and chosen not in {code for code, _ in municipalities}:
        municipalities.append((chosen, av.municipality_label(chosen)))
    return {
        "values": raw,
        "errors": [{"field": e.field, "label": e.label, "message": e.message} for e in errors],
        "errors_by_field": {e.field: e.message for e in errors},
        "municipalities": municipalities,
        "statuses": list(REPORT_LABELS.items()),
        "urgencies": list(av.URGENCY_LABELS.items()),
    }


# --- pages ------------------------------------------------------------------------------------


@pages.get("")
def reports_page(
    request: Request,
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
    page: str | None = None,
) -> Response:
    raw = _raw(from_date, to_date, municipality, status, urgency)
    try:
        filters = av.parse_filters(**raw)
    except av.FilterError as exc:
        ctx = _filter_context(raw, exc.errors)
        ctx.update(title="Överlämningar", result=None)
        return render(request, "auditor/reports.html", ctx, status_code=400)
    with session_scope() as s:
        result = av.list_reports(s, filters, _page_number(page))
    ctx = _filter_context(raw, [])
    query = filters.query_string()
    ctx.update(
        title="Överlämningar",
        result=result,
        query=query,
        duration=av.duration_text,
        page_link=lambda n: "/audit?" + "&".join(p for p in (query, f"page={n}") if p),
    )
    return render(request, "auditor/reports.html", ctx)


@pages.get("/reports/{reference}")
def report_page(request: Request, reference: str) -> Response:
    with session_scope() as s:
        chain = av.report_chain(s, reference)
    if chain is None:
        raise not_found_page()
    return render(
        request,
        "auditor/report.html",
        {
            "title": f"Överlämningskedja {chain.reference}",
            "r": chain,
            "duration": av.duration_text,
        },
    )


@pages.get("/stats")
def stats_page(
    request: Request,
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
) -> Response:
    raw = _raw(from_date, to_date, municipality, status, urgency)
    try:
        filters = av.parse_filters(**raw)
    except av.FilterError as exc:
        ctx = _filter_context(raw, exc.errors)
        ctx.update(title="Statistik", stats=None)
        return render(request, "auditor/stats.html", ctx, status_code=400)
    with session_scope() as s:
        result = av.stats(s, filters)
    ctx = _filter_context(raw, [])
    ctx.update(
        title="Statistik",
        stats=result,
        query=filters.query_string(),
        duration=av.duration_text,
    )
    return render(request, "auditor/stats.html", ctx)


def _download(body: str, media: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _export(
    fmt: str, filters: av.AuditFilters, actor: str, sep: str = DEFAULT_SEPARATOR
) -> Response:
    """Build the export and record it in the same transaction (no record, no export)."""
    with session_scope() as s:
        data = av.export_data(s, filters, actor)
        if fmt == "csv":
            body, rows = av.export_csv(data, sep)
            media = CSV_MEDIA
        else:
            body = json.dumps(data.model_dump(mode="json"), ensure_ascii=False, indent=2)
            rows = sum(max(1, len(r.handovers)) for r in data.reports)
            media = "application/json"
        av.record_export(s, actor, fmt, data, rows)
    return _download(body, media, av.export_filename(fmt, data.exported_at))


def _stats_export(filters: av.AuditFilters, actor: str, sep: str) -> Response:
    """The statistics as CSV, recorded like the report export."""
    with session_scope() as s:
        result = av.stats(s, filters)
        body, rows = av.stats_csv(result, sep)
        av.record_stats_export(s, actor, result, rows)
    return _download(body, CSV_MEDIA, av.export_filename("csv", result.generated_at, "statistik"))


def _page_export(
    request: Request,
    fmt: str,
    raw: dict[str, str],
    principal: AuditorUser,
    sep: str = DEFAULT_SEPARATOR,
) -> Response:
    try:
        filters = av.parse_filters(**raw)
    except av.FilterError as exc:
        ctx = _filter_context(raw, exc.errors)
        ctx.update(title="Överlämningar", result=None)
        return render(request, "auditor/reports.html", ctx, status_code=400)
    return _export(fmt, filters, principal.actor, sep)


@pages.get("/export.csv")
def export_csv_page(
    request: Request,
    principal: AuditorUser,
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
    sep: str | None = None,
) -> Response:
    raw = _raw(from_date, to_date, municipality, status, urgency)
    return _page_export(request, "csv", raw, principal, _separator(sep, api=False))


@pages.get("/stats.csv")
def stats_csv_page(
    request: Request,
    principal: AuditorUser,
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
    sep: str | None = None,
) -> Response:
    raw = _raw(from_date, to_date, municipality, status, urgency)
    separator = _separator(sep, api=False)
    try:
        filters = av.parse_filters(**raw)
    except av.FilterError as exc:
        ctx = _filter_context(raw, exc.errors)
        ctx.update(title="Statistik", stats=None)
        return render(request, "auditor/stats.html", ctx, status_code=400)
    return _stats_export(filters, principal.actor, separator)


@pages.get("/export.json")
def export_json_page(
    request: Request,
    principal: AuditorUser,
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
) -> Response:
    raw = _raw(from_date, to_date, municipality, status, urgency)
    return _page_export(request, "json", raw, principal)


# --- JSON API ---------------------------------------------------------------------------------


@api.get(
    "/reports", summary="List reports (metadata) with filters", response_model=av.AuditReportPage
)
def reports_api(
    principal: ApiAuditor,
    from_date: FromDate = None,
    to_date: ToDate = None,
    municipality: Municipality = None,
    status: Status = None,
    urgency: Urgency = None,
    page: Annotated[int, Query(ge=1, description="Sidnummer, från 1.")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=av.MAX_PER_PAGE, description="Anmälningar per sida.")
    ] = av.PER_PAGE,
) -> av.AuditReportPage:
    filters = _api_filters(_raw(from_date, to_date, municipality, status, urgency))
    with session_scope() as s:
        return av.list_reports(s, filters, page, per_page)


@api.get(
    "/reports/{reference}",
    summary="One report's handover chain, handovers, flow run link and chain status",
    response_model=av.AuditReportChain,
    responses={404: {"model": ErrorOut, "description": "No such report."}},
)
def report_api(reference: str, principal: ApiAuditor) -> av.AuditReportChain:
    with session_scope() as s:
        chain = av.report_chain(s, reference)
    if chain is None:
        raise ApiError(404, "not_found", "Ärendet finns inte.")
    return chain


@api.get("/stats", summary="Statistics over the filtered reports", response_model=av.AuditStats)
def stats_api(
    principal: ApiAuditor,
    from_date: FromDate = None,
    to_date: ToDate = None,
    municipality: Municipality = None,
    status: Status = None,
    urgency: Urgency = None,
) -> av.AuditStats:
    filters = _api_filters(_raw(from_date, to_date, municipality, status, urgency))
    with session_scope() as s:
        return av.stats(s, filters)


@api.get(
    "/chain", summary="Verify the whole hash-chained audit log", response_model=av.ChainStatusOut
)
def chain_api(principal: ApiAuditor) -> av.ChainStatusOut:
    with session_scope() as s:
        return av.chain_status(s)


@api.get(
    "/export.json",
    summary="AuditExport the filtered reports with handover metadata (JSON); the export is audited",
    response_model=av.AuditExport,
)
def export_json_api(
    principal: ApiAuditor,
    from_date: FromDate = None,
    to_date: ToDate = None,
    municipality: Municipality = None,
    status: Status = None,
    urgency: Urgency = None,
) -> Response:
    filters = _api_filters(_raw(from_date, to_date, municipality, status, urgency))
    return _export("json", filters, principal.actor)


@api.get(
    "/export.csv",
    summary="AuditExport the filtered reports, one row per handover (CSV); the export is audited",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv_api(
    principal: ApiAuditor,
    from_date: FromDate = None,
    to_date: ToDate = None,
    municipality: Municipality = None,
    status: Status = None,
    urgency: Urgency = None,
    sep: Separator = None,
) -> Response:
    separator = _separator(sep, api=True)
    filters = _api_filters(_raw(from_date, to_date, municipality, status, urgency))
    return _export("csv", filters, principal.actor, separator)


@api.get(
    "/stats.csv",
    summary="Statistics over the filtered reports as CSV (one table); the export is audited",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def stats_csv_api(
    principal: ApiAuditor,
    from_date: FromDate = None,
    to_date: ToDate = None,
    municipality: Municipality = None,
    status: Status = None,
    urgency: Urgency = None,
    sep: Separator = None,
) -> Response:
    separator = _separator(sep, api=True)
    filters = _api_filters(_raw(from_date, to_date, municipality, status, urgency))
    return _stats_export(filters, principal.actor, separator)
