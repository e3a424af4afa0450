"""The reports' pages: /reports/ lists them, /reports/<slug>/ shows one (chart above a
table), ?format=csv|xlsx exports its table."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from crm import exports
from pipelines.views.deals import FROM_PARAM

from .base import Context, Result, Table, get_report, reports
from .forms import ReportFilterForm


@login_required
def index(request):
    available = [r for r in reports() if r.allowed(request.user)]
    if not available:
        raise PermissionDenied
    return render(request, "reports/index.html", {"reports": available})


@login_required
def report(request, slug: str):
    chosen = get_report(slug)
    if chosen is None:
        raise Http404
    if not chosen.allowed(request.user):
        raise PermissionDenied
    form = ReportFilterForm(request.GET or None, request=request, report=chosen)
    ctx = Context(
        user=request.user,
        period=form.get_period(),
        owner=form.chosen("owner", form.people),
        department=form.chosen("department", form.departments),
        pipeline=form.chosen("pipeline", form.pipelines),
        params=form.params(),
    )
    result = chosen.compute(ctx)
    result.table = result.table.without_hidden(request.user)
    result.extra_tables = [
        (t, table.without_hidden(request.user)) for t, table in result.extra_tables
    ]
    with_origin(result, ctx.report_url(chosen.slug))
    export = request.GET.get("format")
    if export in exports.FORMATS:
        more = [(t, make().without_hidden(request.user)) for t, make in result.export_tables]
        return _export(chosen, result, more, export)
    query = request.GET.copy()
    query.pop("format", None)
    return render(
        request,
        "reports/report.html",
        {
            "report": chosen,
            "reports": [r for r in reports() if r.allowed(request.user)],
            "form": form,
            "ctx": ctx,
            "result": result,
            "query": query.urlencode(),
        },
    )


def _cells(result: Result):
    tables = [result.table, *(table for _title, table in result.extra_tables)]
    for table in tables:
        for row in table.rows:
            yield from row
        yield from table.totals or ()
    for _label, cell in result.headline:
        yield cell


def with_origin(result: Result, origin: str) -> None:
    """Every figure that opens the deal list tells it which report it came from (the
    report with its period and filters): the list then links back to it."""
    deals = reverse("deals:list")
    done = set()
    for cell in _cells(result):
        if id(cell) in done or not (cell.url == deals or cell.url.startswith(f"{deals}?")):
            continue
        done.add(id(cell))
        separator = "&" if "?" in cell.url else "?"
        cell.url = f"{cell.url}{separator}{urlencode({FROM_PARAM: origin})}"


def _sheet(title: str, table: Table) -> exports.Sheet:
    """A report table as the export writes it: the cells' values (numbers stay numbers),
    and on the totals row the text of a cell without one ("—")."""
    rows = [[cell.value for cell in row] for row in table.rows]
    if table.totals:
        rows.append([cell.value if cell.value is not None else str(cell) for cell in table.totals])
    return exports.Sheet(str(title), [str(column.label) for column in table.columns], rows)


def _export(report, result, more: list, kind: str) -> HttpResponse:
    """The report's tables in one file through the record exports' writer, which keeps
    names and labels that look like formulas inert and gives Excel valid sheet names."""
    tables = [(report.title, result.table), *result.extra_tables, *more]
    content = exports.write_sheets(kind, [_sheet(title, table) for title, table in tables])
    extension, content_type = exports.FORMATS[kind]
    response = HttpResponse(content, content_type=content_type)
    name = f"{report.title}-{timezone.localdate():%Y-%m-%d}.{extension}"
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@login_required
def customer_segment(request, key: str):
    """The customers of one RFM segment of the customers report (or all of them), for the
    same period and owner/department filters: the list behind the segment's size."""
    from crm.models import Customer

    from .library import customers as customers_report

    chosen = get_report("customers")
    if chosen is None or (key != customers_report.ALL and key not in customers_report.SEGMENTS):
        raise Http404
    if not chosen.allowed(request.user):
        raise PermissionDenied
    form = ReportFilterForm(request.GET or None, request=request, report=chosen)
    ctx = Context(
        user=request.user,
        period=form.get_period(),
        owner=form.chosen("owner", form.people),
        department=form.chosen("department", form.departments),
    )
    members = [
        s for s in customers_report.rfm(ctx) if key == customers_report.ALL or s.segment == key
    ]
    members.sort(key=lambda s: (-s.value, s.days, s.customer_id))
    page = Paginator(members, 50).get_page(request.GET.get("page"))
    names = Customer.objects.visible_to(request.user).in_bulk([s.customer_id for s in page])
    rows = [(s, names.get(s.customer_id)) for s in page]
    query = request.GET.copy()
    query.pop("page", None)
    title = (
        _("Customers with won deals")
        if key == customers_report.ALL
        else customers_report.SEGMENTS[key][0]
    )
    return render(
        request,
        "reports/segment.html",
        {
            "report": chosen,
            "title": title,
            "ctx": ctx,
            "as_of": customers_report.as_of(ctx),
            "rows": rows,
            "page_obj": page,
            "paginator": page.paginator,
            "query": query.urlencode(),
        },
    )
