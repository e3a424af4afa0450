"""The reports' pages: /reports/ lists them, /reports/<slug>/ shows one (chart above a
table), ?format=csv|xlsx exports its table."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .base import Context, Table, get_report, reports
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
    export = request.GET.get("format")
    if export in ("csv", "xlsx"):
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


def _rows(table: Table) -> list[list]:
    rows = [[c.label for c in table.columns]]
    rows += [[cell.value for cell in row] for row in table.rows]
    if table.totals:
        rows.append([cell.value if cell.value is not None else str(cell) for cell in table.totals])
    return rows


def _export(report, result, more: list, kind: str) -> HttpResponse:
    tables = [(report.title, result.table), *result.extra_tables, *more]
    name = f"{report.title}-{timezone.localdate():%Y-%m-%d}.{kind}"
    if kind == "csv":
        buffer = io.StringIO()
        buffer.write("\ufeff")  # Chinese Excel opens UTF-8 with a BOM
        writer = csv.writer(buffer)
        for index, (title, table) in enumerate(tables):
            if index:
                writer.writerow([])
                writer.writerow([str(title)])
            writer.writerows(_rows(table))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        for title, table in tables:
            sheet = book.create_sheet(str(title)[:31])
            for row in _rows(table):
                sheet.append(
                    [
                        v if isinstance(v, (int, float, Decimal)) or v is None else str(v)
                        for v in row
                    ]
                )
        data = io.BytesIO()
        book.save(data)
        response = HttpResponse(
            data.getvalue(),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(str(name))}"
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
