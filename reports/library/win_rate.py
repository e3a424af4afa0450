"""Win rate and cycle: of the deals closed in the period, how many were won, by owner,
by the owner's department, by the customer's source, by pipeline and by month; how long
won deals took from creation to the win; the average amount won."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import ExtractMonth, ExtractYear, TruncMonth
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import Department
from crm.models import DictionaryItem
from pipelines.models import Deal, DealStatus, Pipeline

from ..base import (
    Cell,
    Column,
    Context,
    Report,
    Result,
    Table,
    list_url,
    money_cell,
    one_decimal,
    percent,
    register,
)
from .funnel import scope_params

DAY = 86_400
WON = Q(status=DealStatus.WON)
LOST = Q(status=DealStatus.LOST)
FIGURES = {
    "won": Count("pk", filter=WON),
    "lost": Count("pk", filter=LOST),
    "won_amount": Sum("amount", filter=WON),
}


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _first_day(month: date | datetime) -> date:
    """TruncMonth gives a date or a datetime, depending on the database."""
    return month.date() if isinstance(month, datetime) else month


def _median_days(seconds: list[float]) -> Cell:
    return one_decimal(statistics.median(seconds) / DAY if seconds else None)


def _average(total, count: int) -> Cell:
    if not count:
        return Cell(None, "—")
    value = (Decimal(total or 0) / count).quantize(Decimal("0.01"))
    return money_cell(value)


class Group:
    """One row's figures: won and lost counts, amount won, won deals' cycle times."""

    def __init__(self, label: str, params: dict | None):
        self.label, self.params = label, params  # params None: no list to link to
        self.won = self.lost = 0
        self.won_amount = Decimal(0)
        self.cycles: list[float] = []

    def add(self, row: dict) -> None:
        self.won += row["won"]
        self.lost += row["lost"]
        self.won_amount += Decimal(row["won_amount"] or 0)


@register
class WinRate(Report):
    slug = "win-rate"
    title = _("Win rate and cycle")
    question = _(
        "Of the deals closed in the period, how many did we win — by rep, team, customer "
        "source, pipeline and month — how long did a win take and how much did it bring?"
    )
    icon = "trophy"
    uses_pipeline = True

    def columns(self, first: Column) -> list[Column]:
        return [
            first,
            Column("won", _("Won"), numeric=True),
            Column("lost", _("Lost"), numeric=True),
            Column("rate", _("Win rate"), numeric=True),
            Column("cycle", _("Median days to win"), numeric=True),
            Column("average", _("Average won amount"), numeric=True, field=("deal", "amount")),
        ]

    def compute(self, ctx: Context) -> Result:
        period = ctx.period
        closed = ctx.scope(
            Deal.objects.filter(
                status__in=(DealStatus.WON, DealStatus.LOST),
                closed_at__gte=period.start,
                closed_at__lt=period.end,
            )
        ).order_by()
        base = {**period.list_params("closed"), **scope_params(ctx)}
        if ctx.pipeline is not None:
            closed = closed.filter(pipeline=ctx.pipeline)
            base["pipeline"] = ctx.pipeline.pk
        source_hidden = "source" in access.hidden_fields(ctx.user, "customer")

        # One query per grouping.
        by_owner = self.by_owner(ctx, closed, base)
        by_department = self.by_department(closed, base)
        by_source = None if source_hidden else self.by_source(closed, base)
        by_pipeline = self.by_pipeline(closed, base)
        by_month = self.by_month(closed, base, period)
        overall = Group(str(_("Total")), base)
        overall.add(closed.aggregate(**FIGURES))

        # One query: the won deals' times from creation to close, with every grouping's
        # key (the close's month in local time, as by_month has it).
        tree = Department.objects.tree_map()
        won = closed.filter(status=DealStatus.WON).values_list(
            "owner_id",
            "owner__department_id",
            "customer__source_id",
            "pipeline_id",
            ExtractYear("closed_at"),
            ExtractMonth("closed_at"),
            F("closed_at") - F("created_at"),
        )
        departments: dict[int | None, list[Group]] = {}

        def department_groups(department_id: int | None) -> list[Group]:
            """The department's group and its parents' (a department's rows include its
            sub-departments); worked out once per department."""
            if department_id not in departments:
                found = (
                    [by_department[None]] if department_id is None and None in by_department else []
                )
                department = tree.get(department_id)
                while department is not None:
                    if department.pk in by_department:
                        found.append(by_department[department.pk])
                    department = tree.get(department.parent_id)
                departments[department_id] = found
            return departments[department_id]

        sources = by_source or {}
        for owner_id, department_id, source_id, pipeline_id, year, month, cycle in won:
            seconds = max(0.0, cycle.total_seconds())
            groups = [
                overall,
                by_owner.get(owner_id),
                sources.get(source_id),
                by_pipeline.get(pipeline_id),
                by_month.get(date(year, month, 1)),
                *department_groups(department_id),
            ]
            for group in groups:
                if group is not None:
                    group.cycles.append(seconds)

        table = self.table(_("Owner"), by_owner.values(), overall)
        extra = [(str(_("By department")), self.table(_("Department"), by_department.values()))]
        if by_source is not None:
            extra.append(
                (str(_("By customer source")), self.table(_("Source"), by_source.values()))
            )
        extra.append((str(_("By pipeline")), self.table(_("Pipeline"), by_pipeline.values())))
        extra.append((str(_("By month")), self.table(_("Month closed"), by_month.values())))

        rate = percent(overall.won, overall.won + overall.lost)
        headline = [
            (str(_("Won")), self.count(overall.won, overall.params, DealStatus.WON)),
            (str(_("Lost")), self.count(overall.lost, overall.params, DealStatus.LOST)),
            (str(_("Win rate")), rate),
            (str(_("Median days to win")), _median_days(overall.cycles)),
        ]
        if "amount" not in access.hidden_fields(ctx.user, "deal"):
            headline.append(
                (str(_("Average won amount")), _average(overall.won_amount, overall.won))
            )
        chart = {
            "type": "bar",
            "data": {
                "labels": [g.label for g in by_owner.values()],
                "datasets": [
                    {
                        "label": str(_("Won")),
                        "data": [g.won for g in by_owner.values()],
                        "backgroundColor": "#2fb344",
                    },
                    {
                        "label": str(_("Lost")),
                        "data": [g.lost for g in by_owner.values()],
                        "backgroundColor": "#d63939",
                    },
                ],
            },
            "options": {
                "animation": False,
                "indexAxis": "y",
                "scales": {
                    "x": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
                    "y": {"stacked": True},
                },
            },
        }
        notes = [
            str(
                _(
                    "Deals won or lost in the period (by their close date). Win rate: won / "
                    "(won + lost). Days to win: from the deal's creation to its win. A "
                    "department's figures include its sub-departments."
                )
            )
        ]
        return Result(table=table, chart=chart, headline=headline, notes=notes, extra_tables=extra)

    # --- groupings: one aggregate query each ------------------------------------------

    @staticmethod
    def by_owner(ctx: Context, closed, base) -> dict:
        groups = {}
        rows = (
            closed.values("owner_id", "owner__name", "owner__username")
            .annotate(**FIGURES)
            .order_by("owner__name", "owner__username", "owner_id")
        )
        for row in rows:
            pk = row["owner_id"]
            owner = "me" if pk == ctx.user.pk else str(pk)
            label = row["owner__name"] or row["owner__username"]
            group = groups[pk] = Group(label, {**base, "owner": owner})
            group.add(row)
        return groups

    @staticmethod
    def by_department(closed, base) -> dict:
        """Each department that owns closed deals, with its sub-departments' figures
        included (as the deal list's department filter counts them)."""
        tree = Department.objects.tree_map()
        direct = {
            row["owner__department_id"]: row
            for row in closed.values("owner__department_id").annotate(**FIGURES)
        }
        groups = {}
        for pk in sorted(direct, key=lambda p: (p is None, tree[p].path_display if p else "")):
            if pk is None:
                groups[None] = Group(str(_("No department")), {**base, "missing": "department"})
            else:
                groups[pk] = Group(tree[pk].path_display, {**base, "department": pk})
        for pk, row in direct.items():
            if pk is None:
                groups[None].add(row)
                continue
            department = tree.get(pk)
            while department is not None:
                if department.pk in groups:
                    groups[department.pk].add(row)
                department = tree.get(department.parent_id)
        return groups

    @staticmethod
    def by_source(closed, base) -> dict:
        rows = list(closed.values("customer__source_id").annotate(**FIGURES))
        items = DictionaryItem.objects.in_bulk(
            [r["customer__source_id"] for r in rows if r["customer__source_id"]]
        )
        groups = {}
        for row in sorted(
            rows,
            key=lambda r: (
                r["customer__source_id"] is None,
                getattr(items.get(r["customer__source_id"]), "order", 0),
                r["customer__source_id"] or 0,
            ),
        ):
            pk = row["customer__source_id"]
            if pk is None:
                group = Group(str(_("No source")), {**base, "missing": "source"})
            elif pk not in items:
                group = Group(str(_("No source")), None)
            else:
                group = Group(str(items[pk]), {**base, "source": pk})
            group.add(row)
            groups[pk] = group
        return groups

    @staticmethod
    def by_pipeline(closed, base) -> dict:
        rows = closed.values("pipeline_id").annotate(**FIGURES)
        pipelines = {p.pk: p for p in Pipeline.objects.for_deals()}
        groups = {}
        for row in sorted(
            rows, key=lambda r: (pipelines[r["pipeline_id"]].order, r["pipeline_id"])
        ):
            pipeline = pipelines[row["pipeline_id"]]
            group = groups[pipeline.pk] = Group(
                pipeline.display_name, {**base, "pipeline": pipeline.pk}
            )
            group.add(row)
        return groups

    @staticmethod
    def by_month(closed, base, period) -> dict:
        rows = (
            closed.annotate(month=TruncMonth("closed_at"))
            .values("month")
            .annotate(**FIGURES)
            .order_by("month")
        )
        groups = {}
        for row in rows:
            first = _first_day(row["month"])
            params = {
                **base,
                "closed_after": max(first, period.first).isoformat(),
                "closed_before": min(_month_end(first), period.last).isoformat(),
            }
            group = groups[first] = Group(f"{first:%Y-%m}", params)
            group.add(row)
        return groups

    # --- tables ---------------------------------------------------------------------

    @staticmethod
    def count(n: int, params: dict | None, status: str) -> Cell:
        if params is None:
            return Cell(n)
        return Cell(n, url=list_url("deals:list", status=status, **params))

    def table(self, label, groups, overall: Group | None = None) -> Table:
        table = Table(self.columns(Column("group", label)))
        for group in groups:
            table.rows.append(self.row(group))
        if overall is not None:
            table.totals = self.row(overall)
        return table

    def row(self, group: Group) -> list[Cell]:
        return [
            Cell(group.label),
            self.count(group.won, group.params, DealStatus.WON),
            self.count(group.lost, group.params, DealStatus.LOST),
            percent(group.won, group.won + group.lost),
            _median_days(group.cycles),
            _average(group.won_amount, group.won),
        ]
