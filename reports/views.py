"""The reports' pages: /reports/ lists them, /reports/<slug>/ shows one (chart above a
table), ?format=csv|xlsx exports its table."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

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
    )
    result = chosen.compute(ctx)
    result.table = result.table.without_hidden(request.user)
    result.extra_tables = [
        (t, table.without_hidden(request.user)) for t, table in result.extra_tables
    ]
    export = request.GET.get("format")
    if export in ("csv", "xlsx"):
        return _export(chosen, result, export)
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


def _export(report, result, kind: str) -> HttpResponse:
    tables = [(report.title, result.table), *result.extra_tables]
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
