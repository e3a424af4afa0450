"""Customers: where do new customers come from and how good are they (source × level),
and which customers matter, by the recency, frequency and value (RFM) of their won deals.

RFM is measured at the period's last day (or today, when the period has not ended) over
every won deal closed by then; each dimension scores 1–3 by the fixed thresholds below,
a score of 2 or 3 counts as "high", and the high/low pattern names the segment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from statistics import median

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import access
from crm.models import Customer, DictionaryItem
from pipelines.models import Deal, DealStatus

from ..base import (
    Cell,
    Column,
    Context,
    Report,
    Result,
    Table,
    list_url,
    money,
    money_cell,
    one_decimal,
    percent,
    register,
)

# Score 3 / 2 / 1: days since the last won deal closed (at most), number of won deals (at
# least), sum of won amounts in CNY (at least).
RECENCY_DAYS = (90, 180)
FREQUENCY = (3, 2)
VALUE = (Decimal("500000"), Decimal("100000"))
HIGH = 2  # a score this high or higher is "high"

# key: (label, recency high, frequency high, value high), in the order shown.
SEGMENTS = {
    "key_value": (_("Key value"), True, True, True),
    "key_develop": (_("Key to develop"), True, False, True),
    "key_keep": (_("Key to keep"), False, True, True),
    "key_win_back": (_("Key to win back"), False, False, True),
    "general_value": (_("General value"), True, True, False),
    "general_develop": (_("General to develop"), True, False, False),
    "general_keep": (_("General to keep"), False, True, False),
    "at_risk": (_("At risk of churn"), False, False, False),
}
ALL = "all"  # the segment page of every scored customer
_BY_PATTERN = {tuple(pattern): key for key, (_label, *pattern) in SEGMENTS.items()}

PALETTE = ["#d63939", "#f76707", "#f59f00", "#2fb344", "#206bc4", "#868e96"]


@dataclass
class Scored:
    customer_id: int
    last_won: date
    days: int  # since the last won deal closed
    deals: int
    value: Decimal
    r: int
    f: int
    v: int
    segment: str

    @property
    def value_text(self) -> str:
        return money(self.value)


def _score(value, thresholds, *, lower_is_better: bool = False) -> int:
    top, middle = thresholds
    if lower_is_better:
        return 3 if value <= top else 2 if value <= middle else 1
    return 3 if value >= top else 2 if value >= middle else 1


def as_of(ctx: Context) -> date:
    return min(ctx.period.last, timezone.localdate())


def rfm_available(user) -> bool:
    """RFM needs the deals and their amounts."""
    return access.has_permission(user, "deal", "view") and "amount" not in access.hidden_fields(
        user, "deal"
    )


def rfm(ctx: Context) -> list[Scored]:
    """Every customer in the report's scope with a won deal (one the user may see) closed
    by the as-of day, scored. One query."""
    if not rfm_available(ctx.user):
        return []
    day = as_of(ctx)
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    customers = ctx.scope(Customer.objects.all())
    rows = (
        Deal.objects.visible_to(ctx.user)
        .filter(status=DealStatus.WON, closed_at__lt=end, customer__in=customers.values("pk"))
        .order_by()
        .values("customer")
        # The day of the last win in local time, worked out by the database.
        .annotate(last=Max(TruncDate("closed_at")), n=Count("pk"), value=Sum("amount"))
    )
    scored = []
    for row in rows:
        last = row["last"]
        days = (day - last).days
        value = Decimal(row["value"] or 0)
        r = _score(days, RECENCY_DAYS, lower_is_better=True)
        f = _score(row["n"], FREQUENCY)
        v = _score(value, VALUE)
        segment = _BY_PATTERN[r >= HIGH, f >= HIGH, v >= HIGH]
        scored.append(Scored(row["customer"], last, days, row["n"], value, r, f, v, segment))
    return scored


def segment_url(ctx: Context, key: str) -> str:
    return f"{reverse('reports:customer_segment', args=[key])}?{ctx.query()}"


@register
class Customers(Report):
    slug = "customers"
    title = _("Customers")
    question = _(
        "Where do new customers come from and at what level, and which customers matter "
        "most by the recency, frequency and value of their won deals?"
    )
    icon = "chart-pie"
    record_type = "customer"

    def compute(self, ctx: Context) -> Result:
        hidden = access.hidden_fields(ctx.user, "customer")
        by_source, by_level = "source" not in hidden, "level" not in hidden
        new = ctx.scope(Customer.objects.all()).filter(
            created_at__gte=ctx.period.start, created_at__lt=ctx.period.end
        )
        base = {**ctx.period.list_params("created"), **ctx.list_params()}
        # One query: new customers per source and level.
        keys = [k for k, shown in (("source", by_source), ("level", by_level)) if shown]
        counts = (
            {
                (row.get("source"), row.get("level")): row["n"]
                for row in new.order_by().values(*keys).annotate(n=Count("pk"))
            }
            if keys
            else {(None, None): new.count()}
        )
        ids = {pk for pair in counts for pk in pair if pk}
        items = DictionaryItem.objects.in_bulk(ids) if ids else {}

        def ordered(position: int) -> list:
            present = {pair[position] for pair in counts}
            return sorted(
                present,
                key=lambda pk: (pk is None, items[pk].order if pk in items else 0, pk or 0),
            )

        def label(pk) -> str:
            return str(items[pk]) if pk in items else str(_("Not given"))

        def params(source="*", level="*") -> dict:
            chosen = dict(base)
            missing = []
            for name, value, shown in (("source", source, by_source), ("level", level, by_level)):
                if value == "*" or not shown:
                    continue
                if value is None:
                    missing.append(name)
                else:
                    chosen[name] = value
            if missing:
                chosen["missing"] = missing
            return chosen

        sources, levels = ordered(0), ordered(1)
        table = Table(
            columns=[
                Column("source", _("Source")),
                *[
                    Column(f"level_{pk or 0}", label(pk) if by_level else _("Customers"), True)
                    for pk in levels
                ],
                *([Column("total", _("Total"), numeric=True)] if by_level else []),
            ]
        )
        for source in sources:
            row = [Cell(label(source) if by_source else str(_("All sources")))]
            for level in levels:
                n = counts.get((source, level), 0)
                row.append(Cell(n, url=list_url("customers:list", **params(source, level))))
            if by_level:
                n = sum(counts.get((source, level), 0) for level in levels)
                row.append(Cell(n, url=list_url("customers:list", **params(source))))
            table.rows.append(row)
        grand = sum(counts.values())
        if sources:
            table.totals = [
                Cell(str(_("Total"))),
                *[
                    Cell(
                        sum(counts.get((s, level), 0) for s in sources),
                        url=list_url("customers:list", **params(level=level)),
                    )
                    for level in levels
                ],
                *([Cell(grand, url=list_url("customers:list", **params()))] if by_level else []),
            ]
        chart = None
        if sources:
            chart = {
                "type": "bar",
                "data": {
                    "labels": [label(s) if by_source else str(_("All sources")) for s in sources],
                    "datasets": [
                        {
                            "label": label(level) if by_level else str(_("New customers")),
                            "data": [counts.get((s, level), 0) for s in sources],
                            "backgroundColor": PALETTE[i % len(PALETTE)],
                        }
                        for i, level in enumerate(levels)
                    ],
                },
                "options": {
                    "indexAxis": "y",
                    "scales": {
                        "x": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
                        "y": {"stacked": True},
                    },
                    "plugins": {"legend": {"position": "bottom"}},
                },
            }

        headline = [
            (
                str(_("New customers")),
                Cell(grand, url=list_url("customers:list", **params())),
            )
        ]
        notes = []
        extra = []
        if rfm_available(ctx.user):
            scored = rfm(ctx)
            segments = self._segments(ctx, scored)
            extra.append((str(_("RFM segments of customers with won deals")), segments))
            headline.append((str(_("Customers with won deals")), segments.totals[1]))
            for key in ("key_value", "at_risk"):
                headline.append(
                    (str(SEGMENTS[key][0]), segments.rows[list(SEGMENTS).index(key)][1])
                )
            notes.append(
                str(
                    _(
                        "RFM as of %(day)s over every won deal closed by then. Recency: 3 when "
                        "the last won deal closed within %(r1)s days, 2 within %(r2)s, else 1. "
                        "Frequency: 3 for %(f1)s or more won deals, 2 for %(f2)s, else 1. "
                        "Value: 3 from %(v1)s won, 2 from %(v2)s, else 1. A score of 2 or 3 is "
                        "high; the pattern of high and low names the segment."
                    )
                    % {
                        "day": as_of(ctx).isoformat(),
                        "r1": RECENCY_DAYS[0],
                        "r2": RECENCY_DAYS[1],
                        "f1": FREQUENCY[0],
                        "f2": FREQUENCY[1],
                        "v1": money(VALUE[0]),
                        "v2": money(VALUE[1]),
                    }
                )
            )
        else:
            notes.append(
                str(_("The RFM segments need deals and their amounts, which your role cannot see."))
            )
        return Result(table=table, chart=chart, headline=headline, notes=notes, extra_tables=extra)

    def _segments(self, ctx: Context, scored: list[Scored]) -> Table:
        table = Table(
            columns=[
                Column("segment", _("Segment")),
                Column("customers", _("Customers"), numeric=True),
                Column("share", _("Share"), numeric=True),
                Column("deals", _("Won deals"), numeric=True),
                Column("value", _("Won amount"), numeric=True, field=("deal", "amount")),
                Column("days", _("Median days since the last win"), numeric=True),
                Column("pattern", _("Recency · frequency · value")),
            ]
        )
        high, low = str(_("high")), str(_("low"))
        total_deals, total_value = 0, Decimal(0)
        for key, (name, *pattern) in SEGMENTS.items():
            members = [s for s in scored if s.segment == key]
            deals = sum(s.deals for s in members)
            value = sum((s.value for s in members), Decimal(0))
            days = median([s.days for s in members]) if members else None
            total_deals += deals
            total_value += value
            table.rows.append(
                [
                    Cell(str(name)),
                    Cell(len(members), url=segment_url(ctx, key)),
                    percent(len(members), len(scored)),
                    Cell(deals),
                    money_cell(value),
                    one_decimal(days),
                    Cell(" · ".join(high if p else low for p in pattern)),
                ]
            )
        table.totals = [
            Cell(str(_("Total"))),
            Cell(len(scored), url=segment_url(ctx, ALL)),
            percent(len(scored), len(scored)),
            Cell(total_deals),
            money_cell(total_value),
            Cell(None, ""),
            Cell(""),
        ]
        return table
