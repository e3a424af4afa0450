"""Forecast: how much will we close, month by month? Open deals by expected close month
with their amount and the amount weighted by the stage's win probability; the deals past
their expected close date or over their stage's time limit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pipelines.models import Deal, DealStatus, Stage
from pipelines.selectors import over_time_limit_q, past_expected_close_q

from ..base import (
    Cell,
    Column,
    Context,
    Report,
    Result,
    Table,
    list_url,
    money_cell,
    register,
)

WEIGHTED = ExpressionWrapper(
    F("amount") * F("probability") / 100, output_field=DecimalField(max_digits=20, decimal_places=4)
)


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


@register
class Forecast(Report):
    slug = "forecast"
    title = _("Forecast")
    question = _(
        "How much will we close in the period, month by month, and which open deals are "
        "slipping (past their expected close date or over their stage's time limit)?"
    )
    icon = "chart-line"
    uses_pipeline = True

    def compute(self, ctx: Context) -> Result:
        deals = ctx.scope(Deal.objects.filter(status=DealStatus.OPEN))
        base = {"status": DealStatus.OPEN, **ctx.list_params()}
        if ctx.pipeline is not None:
            deals = deals.filter(pipeline=ctx.pipeline)
            base["pipeline"] = ctx.pipeline.pk
        # One query: per expected close month within the period, count, amount, weighted.
        in_period = deals.filter(
            expected_close_date__gte=ctx.period.first, expected_close_date__lte=ctx.period.last
        )
        rows = list(
            in_period.order_by()
            .annotate(month=TruncMonth("expected_close_date"))
            .values("month")
            .annotate(n=Count("pk"), total=Sum("amount"), weighted_total=Sum(WEIGHTED))
            .order_by(F("month").asc(nulls_last=True))
        )
        table = Table(
            columns=[
                Column("month", _("Expected close")),
                Column("count", _("Open deals"), numeric=True),
                Column("amount", _("Amount"), numeric=True, field=("deal", "amount")),
                Column("weighted", _("Weighted amount"), numeric=True, field=("deal", "amount")),
            ]
        )
        labels, amounts, weighted_amounts = [], [], []
        total_n, total_amount, total_weighted = 0, Decimal(0), Decimal(0)
        for row in rows:
            amount = Decimal(row["total"] or 0).quantize(Decimal("0.01"))
            weighted = Decimal(row["weighted_total"] or 0).quantize(Decimal("0.01"))
            if row["month"] is None:
                label, url = (
                    str(_("No expected date")),
                    list_url("deals:list", closing="none", **base),
                )
            else:
                first = row["month"]
                label = f"{first:%Y-%m}"
                url = list_url(
                    "deals:list",
                    expected_close_after=first.isoformat(),
                    expected_close_before=_month_end(first).isoformat(),
                    **base,
                )
                labels.append(label)
                amounts.append(float(amount))
                weighted_amounts.append(float(weighted))
            table.rows.append(
                [
                    Cell(label),
                    Cell(row["n"], url=url),
                    money_cell(amount),
                    money_cell(weighted),
                ]
            )
            total_n += row["n"]
            total_amount += amount
            total_weighted += weighted
        period_params = ctx.period.list_params("expected_close")
        table.totals = [
            Cell(str(_("Total"))),
            Cell(total_n, url=list_url("deals:list", **period_params, **base)),
            money_cell(total_amount),
            money_cell(total_weighted),
        ]
        # One query: how many are slipping.
        today = timezone.localdate()
        stages = list(Stage.objects.filter(pipeline__kind="deal"))
        slipping = deals.aggregate(
            past=Count("pk", filter=past_expected_close_q(today)),
            over=Count("pk", filter=over_time_limit_q(stages)),
        )
        headline = [
            (
                str(_("Closing in the period")),
                Cell(total_n, url=list_url("deals:list", **period_params, **base)),
            ),
            (str(_("Weighted amount")), money_cell(total_weighted)),
            (
                str(_("Past the expected close date")),
                Cell(slipping["past"], url=list_url("deals:list", closing="overdue", **base)),
            ),
            (
                str(_("Over the stage's time limit")),
                Cell(slipping["over"], url=list_url("deals:list", overdue="true", **base)),
            ),
        ]
        if "amount" in _hidden(ctx):
            headline = [h for h in headline if h[0] != str(_("Weighted amount"))]
        chart = {
            "type": "bar",
            "data": {
                "labels": labels,
                "datasets": [
                    {"label": str(_("Amount")), "data": amounts, "backgroundColor": "#206bc4"},
                    {
                        "label": str(_("Weighted amount")),
                        "data": weighted_amounts,
                        "backgroundColor": "#2fb344",
                    },
                ],
            },
        }
        if "amount" in _hidden(ctx):
            chart = None
        return Result(table=table, chart=chart, headline=headline)


def _hidden(ctx: Context) -> frozenset[str]:
    from accounts import access

    return access.hidden_fields(ctx.user, "deal")
