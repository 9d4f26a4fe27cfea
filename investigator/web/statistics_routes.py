"""Statistics screens of the workspace (W14, W15).

    GET /workspace/statistics?period=year&year=2026           the statistics page: counts,
                                                              trend and bar charts (inline SVG),
                                                              handling time, deadline compliance,
                                                              per-handler overdue counts,
                                                              rewards, repeat subjects
    GET /workspace/statistics/export?format=csv|xlsx&...      the same tables as a file
    GET /workspace/statistics/report?period=quarter&...       the printable monthly, quarterly
                                                              or yearly report

Periods: ``period=month|quarter|year|custom`` with ``year``, ``month``, ``quarter``, or
``start`` and ``end``. Only a viewer that ``policy.can(p, "view_statistics")`` gets an answer
(everybody else: 404, like any refusal). Every view and every export is audited
(``statistics.view``, ``statistics.report``, ``statistics.export``). The numbers come from
plaintext metadata only and never count a case the viewer is excluded from
(``investigator.domain.statistics``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.response import Template

from investigator.domain import charts, exports, periods
from investigator.domain import statistics as st
from investigator.policy import can
from investigator.web.case_common import NO_STORE, not_found, page, services_of
from investigator.web.guards import StaffPrincipal, current_staff
from portal.http.i18n import locale_of
from portal.kernel import audit, clock
from portal.kernel.i18n import translations
from portal.kernel.msgid import _

_MESSAGES = (
    _("Choose a valid period."),
    _("Give the first and last day of the range."),
    _("The range must run forward and span at most three years."),
)
_PARAMS = ("period", "year", "month", "quarter", "start", "end")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _params(request: Request[Any, Any, Any]) -> dict[str, str]:
    query = request.query_params
    return {k: str(query.get(k))[:20] for k in _PARAMS if query.get(k) not in (None, "")}


async def _viewer(request: Request[Any, Any, Any]) -> StaffPrincipal:
    staff = await current_staff(request)
    if not can(staff.policy(), "view_statistics"):
        raise not_found()
    return staff


async def _report(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    period: st.Period,
    action: str,
    detail: str = "",
) -> st.Report:
    services = services_of(request)
    async with services.db.read() as s:
        report = await st.compute(s, staff.policy(), period, clock.today())
    async with services.db.write() as s:
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action=action,
            case_id=None,
            detail=f"period={period.kind} from={period.start.isoformat()} "
            f"to={period.end.isoformat()}{detail}",
        )
    return report


def _context(request: Request[Any, Any, Any], report: st.Report) -> dict[str, Any]:
    locale = locale_of(request.scope)
    t = translations(locale).gettext
    tables = exports.build_tables(report, t, locale)
    p = report.period
    labels = [label for label, _n in report.trend]
    trend_svg = charts.line_chart(
        "chart-trend",
        t(_("Cases received")),
        t(_("Cases received per %(unit)s, %(now)s compared with %(before)s: "))
        % {
            "unit": t(_("day")) if p.daily else t(_("month")),
            "now": p.label,
            "before": report.previous.label,
        }
        + ", ".join(f"{b} {n}" for b, n in report.trend),
        labels,
        [
            (p.label, [n for _b, n in report.trend]),
            (report.previous.label, [n for _b, n in report.previous_trend]),
        ],
    )
    bars = {}
    for dim in ("kind", "category", "channel", "outcome"):
        items = exports.breakdown_items(report, dim, t, locale)
        bars[dim] = charts.bar_chart(
            f"chart-{dim}",
            t(exports.DIMENSION_TITLES[dim]),
            t(exports.DIMENSION_TITLES[dim])
            + f" ({p.label}): "
            + ", ".join(f"{label} {n}" for label, n in items),
            items,
        )
    query = "&".join(f"{k}={v}" for k, v in (("period", p.kind), *_period_query(p)))
    return {
        "report": report,
        "tables": tables,
        "trend_svg": trend_svg,
        "bars": bars,
        "query": query,
    }


def _period_query(p: st.Period) -> tuple[tuple[str, str], ...]:
    if p.kind == "month":
        return (("year", str(p.start.year)), ("month", str(p.start.month)))
    if p.kind == "quarter":
        return (("year", str(p.start.year)), ("quarter", str((p.start.month - 1) // 3 + 1)))
    if p.kind == "year":
        return (("year", str(p.start.year)),)
    return (("start", p.start.isoformat()), ("end", p.end.isoformat()))


@get("/statistics", name="workspace_statistics")
async def statistics_page(request: Request[Any, Any, Any]) -> Template:
    staff = await _viewer(request)
    today = clock.today()
    error: str | None = None
    try:
        period = periods.parse_period(_params(request), today)
    except periods.PeriodError as exc:
        error, period = str(exc), periods.year_period(today.year)
    report = await _report(request, staff, period, "statistics.view")
    return page(
        "statistics",
        status=400 if error else 200,
        staff=staff,
        error=error,
        today=today,
        **_context(request, report),
    )


@get("/statistics/report", name="workspace_statistics_report")
async def statistics_report(request: Request[Any, Any, Any]) -> Template:
    staff = await _viewer(request)
    try:
        period = periods.parse_period(_params(request), clock.today())
    except periods.PeriodError as exc:
        raise not_found() from exc
    report = await _report(request, staff, period, "statistics.report")
    return page("report_print", staff=staff, today=clock.today(), **_context(request, report))


@get("/statistics/export", name="workspace_statistics_export")
async def statistics_export(request: Request[Any, Any, Any]) -> Response[bytes]:
    staff = await _viewer(request)
    fmt = request.query_params.get("format") or "csv"
    if fmt not in FORMATS:
        raise not_found()
    try:
        period = periods.parse_period(_params(request), clock.today())
    except periods.PeriodError as exc:
        raise not_found() from exc
    report = await _report(request, staff, period, "statistics.export", f" format={fmt}")
    locale = locale_of(request.scope)
    tables = exports.build_tables(report, translations(locale).gettext, locale)
    body = exports.to_csv(tables) if fmt == "csv" else exports.to_xlsx(tables)
    name = f"statistics-{period.label.replace('..', '_')}.{fmt}"
    return Response(
        content=body,
        media_type=FORMATS[fmt],
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


statistics_handlers = [statistics_page, statistics_report, statistics_export]
