"""Leads: which sources bring leads that turn into customers and won deals, how fast we
first contact them, and why we lose them (and how often the reason says nothing).

Every figure is about the leads created in the period (a cohort): a lead created in
March and converted in April counts as converted in a March report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from statistics import median

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import access
from crm.models import Activity, DictionaryItem
from pipelines.models import LOST_REASON, DealStatus, Lead, LeadStatus
from pipelines.selectors import VAGUE_LOST_REASONS, vague_reason_q

from ..base import (
    Cell,
    Column,
    Context,
    Report,
    Result,
    Table,
    list_url,
    one_decimal,
    percent,
    register,
)

PALETTE = [
    "#206bc4",
    "#2fb344",
    "#f76707",
    "#ae3ec9",
    "#d63939",
    "#17a2b8",
    "#f59f00",
    "#74b816",
    "#6574cd",
    "#868e96",
]


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _hours(values: list[float]) -> Cell:
    return one_decimal(median(values) if values else None)


@dataclass
class _Group:
    """Counts of one source (or month): created, converted, won deal, lost."""

    n: int = 0
    converted: int = 0
    won: int = 0
    lost: int = 0
    hours: list[float] = field(default_factory=list)

    def add(self, row: dict) -> None:
        self.n += row["n"]
        self.converted += row["converted"]
        self.won += row["won"]
        self.lost += row["lost"]


def vague_note(names: list[str]) -> str:
    """Which lost reasons count as vague, by the names people read (never their codes)."""
    if not names:
        return str(_("A lost reason is vague when none was given."))
    return str(
        _("A lost reason is vague when none was given or it is one of: %(reasons)s.")
        % {"reasons": "、".join(names)}
    )


@register
class Leads(Report):
    slug = "leads"
    title = _("Leads")
    question = _(
        "Which sources bring leads that become customers and won deals, how soon do we "
        "first contact a new lead, and why do we lose them?"
    )
    icon = "user-check"
    record_type = "lead"

    def compute(self, ctx: Context) -> Result:
        hidden = access.hidden_fields(ctx.user, "lead")
        by_source = "source" not in hidden
        leads = ctx.scope(Lead.objects.all()).filter(
            created_at__gte=ctx.period.start, created_at__lt=ctx.period.end
        )
        created = ctx.period.list_params("created")
        base = {**created, **ctx.list_params()}

        # One query: per source and month, created / converted / won deal / lost.
        keys = ["month", *(["source"] if by_source else [])]
        rows = list(
            leads.order_by()
            .annotate(month=TruncMonth("created_at"))
            .values(*keys)
            .annotate(
                n=Count("pk"),
                converted=Count("pk", filter=Q(status=LeadStatus.CONVERTED)),
                won=Count("pk", filter=Q(converted_deal__status=DealStatus.WON)),
                lost=Count("pk", filter=Q(status=LeadStatus.LOST)),
            )
        )
        # One query: each lead's source and hours from creation to its first activity.
        first_activity = (
            Activity.objects.filter(
                subject_type=ContentType.objects.get_for_model(Lead), subject_id=OuterRef("pk")
            )
            .order_by("occurred_at")
            .values("occurred_at")[:1]
        )
        contacts = (
            leads.order_by()
            .annotate(first_contact=Subquery(first_activity))
            .filter(first_contact__isnull=False)
            .values_list("source_id", "created_at", "first_contact")
        )
        # One query: lost leads by reason, with and without a note.
        lost_rows = []
        if "lost_reason" not in hidden:
            lost_rows = list(
                leads.filter(status=LeadStatus.LOST)
                .order_by()
                .values("lost_reason")
                .annotate(
                    n=Count("pk"),
                    no_note=Count("pk", filter=Q(lost_note="")),
                    vague=Count("pk", filter=vague_reason_q()),
                )
            )
        item_ids = {r.get("source") for r in rows} | {r["lost_reason"] for r in lost_rows}
        # One query: the labels of the sources and reasons, and of the vague reasons the
        # footnote names.
        vague_items = Q(dictionary__code="lost_reason", code__in=VAGUE_LOST_REASONS)
        items = {
            item.pk: item
            for item in DictionaryItem.objects.filter(
                Q(pk__in=[pk for pk in item_ids if pk]) | vague_items
            ).select_related("dictionary")
        }
        vague_names = [
            str(item)
            for item in sorted(items.values(), key=lambda i: (i.order, i.pk))
            if item.dictionary.code == "lost_reason" and item.code in VAGUE_LOST_REASONS
        ]

        sources: dict[int | None, _Group] = {}
        months: dict[date, _Group] = {}
        per_month_source: dict[tuple[date, int | None], int] = {}
        for row in rows:
            month = timezone.localtime(row["month"]).date() if row["month"] else None
            key = row.get("source")
            sources.setdefault(key, _Group()).add(row)
            months.setdefault(month, _Group()).add(row)
            per_month_source[month, key] = per_month_source.get((month, key), 0) + row["n"]
        all_hours = []
        for key, created_at, first_contact in contacts:
            hours = max(0.0, (first_contact - created_at).total_seconds() / 3600)
            all_hours.append(hours)
            group = sources.get(key if by_source else None)
            if group is not None:
                group.hours.append(hours)

        def label(pk):
            return str(items[pk]) if pk in items else str(_("Not given"))

        def source_params(key) -> dict:
            if not by_source:
                return {}
            return {"source": key} if key else {"missing": "source"}

        # The table: one row per source.
        table = Table(
            columns=[
                Column("source", _("Source")),
                Column("leads", _("Leads"), numeric=True),
                Column("converted", _("Converted to customer"), numeric=True),
                Column("converted_rate", _("Conversion rate"), numeric=True),
                Column("won", _("Converted to a won deal"), numeric=True),
                Column("won_rate", _("Won-deal rate"), numeric=True),
                Column("lost", LeadStatus.LOST.label, numeric=True),
                Column("first_contact", _("Median hours to first contact"), numeric=True),
            ]
        )
        order = sorted(sources, key=lambda k: (-sources[k].n, k is None, label(k)))
        total = _Group(hours=all_hours)
        for key in order:
            group = sources[key]
            total.add(group.__dict__)
            table.rows.append(
                self._row(
                    label(key) if by_source else str(_("All sources")),
                    group,
                    {**base, **source_params(key)},
                )
            )
        table.totals = self._row(str(_("Total")), total, base)

        # By month (the same query, summed in Python).
        month_table = Table(
            columns=[
                Column("month", _("Month")),
                Column("leads", _("Leads"), numeric=True),
                Column("converted", _("Converted to customer"), numeric=True),
                Column("won", _("Converted to a won deal"), numeric=True),
                Column("lost", LeadStatus.LOST.label, numeric=True),
            ]
        )
        month_list = sorted(m for m in months if m is not None)
        for month in month_list:
            group = months[month]
            params = {
                **base,
                "created_after": max(month, ctx.period.first).isoformat(),
                "created_before": min(_month_end(month), ctx.period.last).isoformat(),
            }
            month_table.rows.append(
                [
                    Cell(f"{month:%Y-%m}"),
                    Cell(group.n, url=list_url("leads:list", status="all", **params)),
                    Cell(
                        group.converted,
                        url=list_url("leads:list", status=LeadStatus.CONVERTED, **params),
                    ),
                    Cell(
                        group.won,
                        url=list_url("leads:list", status="all", deal=DealStatus.WON, **params),
                    ),
                    Cell(group.lost, url=list_url("leads:list", status=LeadStatus.LOST, **params)),
                ]
            )

        # Lost reasons.
        lost_params = {**base, "status": LeadStatus.LOST}
        reasons = Table(
            columns=[
                Column("reason", LOST_REASON["lead"]),
                Column("vague", _("Vague")),
                Column("lost", _("Lost leads"), numeric=True),
                Column("share", _("Share"), numeric=True),
                Column("no_note", _("Without a note"), numeric=True),
            ]
        )
        lost_total = sum(r["n"] for r in lost_rows)
        no_note_total = sum(r["no_note"] for r in lost_rows)
        vague_total = sum(r["vague"] for r in lost_rows)
        for row in sorted(
            lost_rows, key=lambda r: (-r["n"], r["lost_reason"] is None, label(r["lost_reason"]))
        ):
            pk = row["lost_reason"]
            item = items.get(pk)
            vague = item is None or item.code in VAGUE_LOST_REASONS
            params = {**lost_params, **({"lost_reason": pk} if pk else {"missing": "lost_reason"})}
            reasons.rows.append(
                [
                    Cell(label(pk)),
                    Cell(str(_("Yes")) if vague else "", str(_("Yes")) if vague else ""),
                    Cell(row["n"], url=list_url("leads:list", **params)),
                    percent(row["n"], lost_total),
                    Cell(row["no_note"], url=list_url("leads:list", lost_note="false", **params)),
                ]
            )
        reasons.totals = [
            Cell(str(_("Total"))),
            Cell(""),
            Cell(lost_total, url=list_url("leads:list", **lost_params)),
            percent(lost_total, lost_total),
            Cell(no_note_total, url=list_url("leads:list", lost_note="false", **lost_params)),
        ]

        vague_share = percent(vague_total, lost_total)
        vague_share.url = list_url("leads:list", vague_reason="true", **lost_params)
        no_note_share = percent(no_note_total, lost_total)
        no_note_share.url = list_url("leads:list", lost_note="false", **lost_params)
        headline = [
            (str(_("New leads")), table.totals[1]),
            (str(_("Conversion rate")), table.totals[3]),
            (str(_("Won-deal rate")), table.totals[5]),
            (str(_("Median hours to first contact")), table.totals[7]),
        ]
        if lost_rows:
            headline += [
                (str(_("Lost without a specific reason")), vague_share),
                (str(_("Lost without a note")), no_note_share),
            ]

        chart = None
        if month_list:
            keys = order if by_source else [None]
            chart = {
                "type": "bar",
                "data": {
                    "labels": [f"{m:%Y-%m}" for m in month_list],
                    "datasets": [
                        {
                            "label": label(key) if by_source else str(_("Leads")),
                            "data": [per_month_source.get((m, key), 0) for m in month_list],
                            "backgroundColor": PALETTE[i % len(PALETTE)],
                        }
                        for i, key in enumerate(keys)
                    ],
                },
                "options": {
                    "scales": {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True}},
                    "plugins": {"legend": {"position": "bottom"}},
                },
            }
        notes = [
            str(
                _(
                    "Figures are about the leads created in the period, whenever they were "
                    "converted or lost. A won deal is the deal created at conversion, won."
                )
            ),
            str(
                _(
                    "First contact: the first follow-up (activity) logged on the lead; leads "
                    "without one are left out of the median."
                )
            ),
            vague_note(vague_names),
        ]
        extra = [(str(_("By month")), month_table)]
        if "lost_reason" not in hidden:
            extra.append((str(_("Lost reasons")), reasons))
        return Result(table=table, chart=chart, headline=headline, notes=notes, extra_tables=extra)

    def _row(self, name: str, group: _Group, params: dict) -> list[Cell]:
        converted = percent(group.converted, group.n)
        converted.url = list_url("leads:list", status=LeadStatus.CONVERTED, **params)
        won = percent(group.won, group.n)
        won.url = list_url("leads:list", status="all", deal=DealStatus.WON, **params)
        return [
            Cell(name),
            Cell(group.n, url=list_url("leads:list", status="all", **params)),
            Cell(
                group.converted,
                url=list_url("leads:list", status=LeadStatus.CONVERTED, **params),
            ),
            converted,
            Cell(
                group.won, url=list_url("leads:list", status="all", deal=DealStatus.WON, **params)
            ),
            won,
            Cell(group.lost, url=list_url("leads:list", status=LeadStatus.LOST, **params)),
            _hours(group.hours),
        ]
