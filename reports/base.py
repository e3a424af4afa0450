"""What every report is made of (issue 7): a question, filters (period, owner,
department, pipeline), figures computed by database aggregation over the records the
viewer may see (DESIGN rule 1), a chart above a table, each number linking to the list
of the records behind it, and a CSV/XLSX export of the table that honours field
permissions (DESIGN rule 2).

A report is a subclass of Report registered with @register; `compute(ctx)` returns a
Result. Keep it to one query per chart or table (not per row)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse

from accounts import access
from accounts.models import Department, User
from crm.money import format_money, format_money_compact

from .periods import Period


@dataclass
class Cell:
    value: Any  # a number, text or None; what the export writes
    text: str = ""  # as shown (defaults to the value)
    url: str = ""  # the filtered list of the records behind the number
    title: str = ""  # the exact figure, when the text is short (¥93.6万)

    def __str__(self) -> str:
        return self.text or ("" if self.value is None else str(self.value))

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, (int, float, Decimal)) and not isinstance(self.value, bool)


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    # (record type, field name): the column is left out for a role that may not see it.
    field: tuple[str, str] | None = None


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    totals: list[Cell] | None = None

    def without_hidden(self, user) -> Table:
        keep = [
            i
            for i, column in enumerate(self.columns)
            if column.field is None
            or column.field[1] not in access.hidden_fields(user, column.field[0])
        ]
        return Table(
            columns=[self.columns[i] for i in keep],
            rows=[[row[i] for i in keep] for row in self.rows],
            totals=[self.totals[i] for i in keep] if self.totals else None,
        )

    def _aligned(self, cells: list[Cell]) -> list[tuple[Cell, bool]]:
        # A cell sits where its column's numbers sit: a placeholder ("—") or an empty
        # figure in a numeric column is right-aligned like the numbers above and below it.
        return [
            (cell, column.numeric or cell.numeric)
            for cell, column in zip(cells, self.columns, strict=False)
        ]

    @property
    def display_rows(self) -> list[list[tuple[Cell, bool]]]:
        """The rows as the page shows them: (cell, right-aligned) pairs."""
        return [self._aligned(row) for row in self.rows]

    @property
    def display_totals(self) -> list[tuple[Cell, bool]] | None:
        return self._aligned(self.totals) if self.totals else None


@dataclass
class Result:
    table: Table
    # A Chart.js configuration ({"type": ..., "data": ..., "options": ...}) or None.
    chart: dict | None = None
    headline: list[tuple[str, Cell]] = field(default_factory=list)  # big numbers on top
    notes: list[str] = field(default_factory=list)
    # More tables below the main one: (title, table).
    extra_tables: list[tuple[str, Table]] = field(default_factory=list)
    # Tables only the CSV/XLSX export has, made only for it: detail too long for a page
    # (a year's rows per rep and week), each row of which the page reaches by a link.
    export_tables: list[tuple[str, Callable[[], Table]]] = field(default_factory=list)


@dataclass
class Context:
    """Who is asking and what they chose; querysets already scoped and filtered."""

    user: User
    period: Period
    owner: User | None = None
    department: Department | None = None
    pipeline: Any = None  # pipelines.models.Pipeline or None
    # The report's own settings (Report.extra_fields), validated: {name: value}.
    params: dict[str, Any] = field(default_factory=dict)

    def scope(self, queryset: QuerySet, owner_path: str = "owner") -> QuerySet:
        """Records of `queryset` the user may see, narrowed by the owner/department chosen."""
        queryset = queryset.visible_to(self.user)
        if self.owner is not None:
            queryset = queryset.filter(**{f"{owner_path}_id": self.owner.pk})
        if self.department is not None:
            ids = Department.objects.subtree_ids(self.department.pk)
            queryset = queryset.filter(**{f"{owner_path}__department_id__in": ids})
        return queryset

    def report_url(self, slug: str, **params: Any) -> str:
        """A report page with this one's period, filters and settings, `params` on top
        (e.g. the same report narrowed to one rep)."""
        return f"{reverse('reports:report', args=[slug])}?{self.query(**params)}"

    def query(self, **params: Any) -> str:
        """This report's period, filters and settings as its form spells them."""
        query: dict[str, Any] = {"period": self.period.key}
        if self.period.key == "custom":
            query.update(first=self.period.first.isoformat(), last=self.period.last.isoformat())
        for name, value in (
            ("owner", self.owner),
            ("department", self.department),
            ("pipeline", self.pipeline),
        ):
            if value is not None:
                query[name] = value.pk
        query.update(self.params)
        query.update(params)
        return urlencode(query)

    def list_params(self) -> dict[str, str]:
        """The owner/department filters as the record lists spell them."""
        params = {}
        if self.owner is not None:
            params["owner"] = str(self.owner.pk)
        if self.department is not None:
            params["department"] = str(self.department.pk)
        return params


@functools.cache
def _path(name: str) -> str:
    # Record lists take no arguments: one reverse per list, not per linked number (a
    # year's activity table links ~12,000 of them).
    return reverse(name)


def list_url(name: str, **params: Any) -> str:
    """A record list (e.g. "deals:list") filtered by `params` (None values dropped)."""
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{_path(name)}?{urlencode(clean, doseq=True)}" if clean else _path(name)


# Reports format money as every page does; `money` is the name the report library uses.
money = format_money


def money_cell(value) -> Cell:
    """An amount as tables show it, short (¥93.6万), with the exact figure in its title;
    the export writes the value."""
    return Cell(value, format_money_compact(value), title=format_money(value))


def percent(part: int, whole: int) -> Cell:
    """A share as a number (0–100, one decimal) and text; empty when nothing to divide."""
    if not whole:
        return Cell(None, "—")
    value = round(Decimal(part) * 100 / Decimal(whole), 1)
    return Cell(float(value), f"{value}%")


def one_decimal(value: float | Decimal | None) -> Cell:
    """Days or hours: always one decimal (8.0 and 10.8, never 8 and 10.8), so the figures
    of a column read alike; empty ("—") without a value."""
    if value is None:
        return Cell(None, "—")
    value = round(float(value), 1)
    return Cell(value, f"{value:.1f}")


class Report:
    slug = ""
    title = ""
    question = ""  # the manager's question it answers
    icon = "chart-bar"
    record_type = "deal"  # the role must be able to view these
    uses_pipeline = False  # offers the pipeline filter
    # Settings of its own shown with the filters: (name, label, default, minimum) numbers.
    extra_fields: tuple[tuple[str, str, int, int], ...] = ()
    pipeline_kind = "deal"

    def allowed(self, user) -> bool:
        return access.has_permission(user, self.record_type, "view")

    def compute(self, ctx: Context) -> Result:  # pragma: no cover - each report has its own
        raise NotImplementedError


_reports: dict[str, Report] = {}


def register(cls: type[Report]) -> type[Report]:
    _reports[cls.slug] = cls()
    return cls


def reports() -> list[Report]:
    return list(_reports.values())


def get_report(slug: str) -> Report | None:
    return _reports.get(slug)
