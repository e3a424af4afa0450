"""Funnel: where do deals get stuck? For the period and a deal pipeline: the deals that
entered each stage, the share of them that later reached the next stage or one beyond it
(a cohort: never over 100%), the days spent in each
stage (median and 90th percentile, from the stage history) and the deals lost from each
stage with their lost reasons."""

from __future__ import annotations

import math

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Max, Min, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _

from accounts import access
from crm.models import DictionaryItem
from pipelines.models import Deal, DealStatus, Pipeline, StageHistory, StageKind

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

DAY = 86_400


def percentile(values: list[float], share: float) -> float | None:
    """The `share` percentile with linear interpolation between the closest ranks (as
    PostgreSQL's percentile_cont): the median is percentile(values, 0.5)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(share) WITHIN GROUP (ORDER BY expression): what
    `percentile` computes in Python, without sending the values over."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(share)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, share: float, **extra):
        super().__init__(expression, share=float(share), **extra)


def days_cell(seconds: float | None) -> Cell:
    return one_decimal(None if seconds is None else seconds / DAY)


def cohorts(ctx: Context, pipeline, funnel_stages: list, scoped) -> tuple[dict, dict]:
    """One query: per funnel stage, the deals that entered it in the period (its cohort)
    and how many of them later moved into a stage after it (the next one or beyond, won
    included; lost and other pipelines' stages do not count). Never more than the cohort.

    Per deal, over its moves in the pipeline since the period began: the first entry into
    each stage in the period, and the last move into a stage after it; the deal went on
    when that move came after the entry (or at the same moment: imported histories date
    a day's moves alike). The per-deal rows are counted by the database."""
    period = ctx.period
    aggregates = {}
    for index, stage in enumerate(funnel_stages):
        aggregates[f"e{index}"] = Min(
            "moved_at", filter=Q(to_stage=stage.pk, moved_at__lt=period.end)
        )
        after = [s.pk for s in funnel_stages[index + 1 :]]
        if after:
            aggregates[f"b{index}"] = Max("moved_at", filter=Q(to_stage__in=after))
    if not aggregates:
        return {}, {}
    per_deal = (
        StageHistory.objects.filter(
            pipeline=pipeline,
            record_type="deal",
            moved_at__gte=period.start,
            record_id__in=scoped.values("pk"),
        )
        .order_by()
        .values("record_id")
        .annotate(**aggregates)
    )
    sql, params = per_deal.query.sql_with_params()
    counts = []
    for index in range(len(funnel_stages)):
        counts.append(f"COUNT(e{index})")
        counts.append(
            f"COUNT(CASE WHEN b{index} >= e{index} THEN 1 END)"
            if f"b{index}" in aggregates
            else "0"
        )
    with connection.cursor() as cursor:
        # `sql` is Django's own compiled query; every value is a parameter.
        cursor.execute(f"SELECT {', '.join(counts)} FROM ({sql}) per_deal", params)  # noqa: S608
        row = cursor.fetchone()
    entered, went_on = {}, {}
    for index, stage in enumerate(funnel_stages):
        entered[stage.pk], went_on[stage.pk] = (
            int(row[2 * index] or 0),
            int(row[2 * index + 1] or 0),
        )
    return entered, went_on


def scope_params(ctx: Context) -> dict[str, str]:
    """The owner/department filters as the deal list spells them (the viewer is "me":
    the list's owner choices name everyone else by id)."""
    params = ctx.list_params()
    if ctx.owner is not None and ctx.owner.pk == ctx.user.pk:
        params["owner"] = "me"
    return params


def chosen_pipeline(ctx: Context) -> Pipeline | None:
    if ctx.pipeline is not None:
        return ctx.pipeline
    return Pipeline.objects.active().for_deals().order_by("-is_default", "order", "id").first()


@register
class Funnel(Report):
    slug = "funnel"
    title = _("Funnel")
    question = _(
        "Where do deals get stuck? How many entered each stage in the period, how many went "
        "on to the next, how long they stayed and why they were lost."
    )
    icon = "filter"
    uses_pipeline = True

    def compute(self, ctx: Context) -> Result:
        pipeline = chosen_pipeline(ctx)
        columns = [
            Column("stage", pipeline.display_name if pipeline else _("Stage")),
            Column("entered", _("Entered"), numeric=True),
            Column("conversion", _("To next stage"), numeric=True),
            Column("median", _("Median days"), numeric=True),
            Column("p90", _("90th pct. days"), numeric=True),
            Column("lost", _("Lost"), numeric=True),
        ]
        if pipeline is None:
            return Result(table=Table(columns), notes=[str(_("No deal pipeline is set up."))])
        period = ctx.period
        stages = list(pipeline.stages.order_by("order", "id"))
        funnel_stages = [s for s in stages if s.kind != StageKind.LOST]
        stage_ids = [s.pk for s in stages]
        scoped = ctx.scope(Deal.objects.all())
        moves = StageHistory.objects.filter(
            record_type="deal", moved_at__gte=period.start, moved_at__lt=period.end
        ).order_by()
        # Each query below names the pipeline by the column its index leads with
        # (stagehistory_pipeline, stagehistory_from_stage, stagehistory_to_stage), so
        # PostgreSQL reads the period's moves from the index alone.
        # One query: deals that entered each stage of the pipeline in the period (a move's
        # pipeline is its target stage's), and how many of them later moved further on.
        entered, went_on = cohorts(ctx, pipeline, funnel_stages, scoped)
        # One query: median and 90th percentile of the time spent in a stage, of every
        # move out of it in the period (computed by PostgreSQL; SQLite sends the values).
        # Moves to another pipeline count: the time was spent in this one's stage.
        out_of = moves.filter(from_stage__in=stage_ids, record_id__in=scoped.values("pk"))
        spent: dict[int, tuple[float | None, float | None]] = {}
        if connection.vendor == "postgresql":
            for stage_id, p50, p90 in (
                out_of.values("from_stage")
                .annotate(
                    p50=PercentileCont("seconds_in_previous", 0.5),
                    p90=PercentileCont("seconds_in_previous", 0.9),
                )
                .values_list("from_stage", "p50", "p90")
            ):
                spent[stage_id] = (p50, p90)
        else:
            values: dict[int, list[int]] = {}
            for stage_id, seconds in out_of.values_list("from_stage", "seconds_in_previous"):
                values.setdefault(stage_id, []).append(seconds)
            spent = {k: (percentile(v, 0.5), percentile(v, 0.9)) for k, v in values.items()}
        # One query: deals lost in the period, by the stage they were lost from and reason
        # (the moves into the pipeline's lost stage, of the scoped deals lost in the period).
        lost_deals = scoped.filter(
            status=DealStatus.LOST, closed_at__gte=period.start, closed_at__lt=period.end
        )
        reason = Deal.objects.filter(pk=OuterRef("record_id")).order_by().values("lost_reason")
        lost_rows = list(
            moves.filter(
                to_stage__in=[s.pk for s in stages if s.kind == StageKind.LOST],
                from_stage__in=stage_ids,
                record_id__in=lost_deals.values("pk"),
            )
            .annotate(reason=Subquery(reason[:1]))
            .values("from_stage", "reason")
            .annotate(n=Count("record_id", distinct=True))
            .values_list("from_stage", "reason", "n")
        )
        lost_by_stage: dict[int, int] = {}
        for stage_id, _reason, n in lost_rows:
            lost_by_stage[stage_id] = lost_by_stage.get(stage_id, 0) + n

        base = scope_params(ctx)
        entered_params = {**period.list_params("entered"), **base}
        lost_params = {**period.list_params("closed"), **base}
        table = Table(columns)
        for index, stage in enumerate(funnel_stages):
            n = entered.get(stage.pk, 0)
            following = funnel_stages[index + 1] if index + 1 < len(funnel_stages) else None
            conversion = percent(went_on.get(stage.pk, 0), n) if following else Cell(None, "—")
            p50, p90 = spent.get(stage.pk, (None, None))
            lost = lost_by_stage.get(stage.pk, 0)
            table.rows.append(
                [
                    Cell(stage.display_name),
                    Cell(
                        n,
                        url=list_url("deals:list", entered_stage=stage.pk, **entered_params),
                    ),
                    conversion,
                    days_cell(p50),
                    days_cell(p90),
                    Cell(lost, url=list_url("deals:list", lost_from=stage.pk, **lost_params))
                    if stage.kind == StageKind.OPEN
                    else Cell(None, "—"),
                ]
            )

        first = funnel_stages[0] if funnel_stages else None
        won_stages = [s for s in funnel_stages if s.kind == StageKind.WON]
        headline = []
        if first is not None:
            started = entered.get(first.pk, 0)
            headline.append(
                (
                    str(_("Entered “%(stage)s”") % {"stage": first.display_name}),
                    Cell(
                        started,
                        url=list_url("deals:list", entered_stage=first.pk, **entered_params),
                    ),
                )
            )
        for stage in won_stages:
            headline.append(
                (
                    str(_("Entered “%(stage)s”") % {"stage": stage.display_name}),
                    Cell(
                        entered.get(stage.pk, 0),
                        url=list_url("deals:list", entered_stage=stage.pk, **entered_params),
                    ),
                )
            )
        # One query: the deals of the pipeline lost in the period (the list's own terms).
        lost_total = Cell(
            lost_deals.filter(pipeline=pipeline).count(),
            url=list_url("deals:list", status=DealStatus.LOST, pipeline=pipeline.pk, **lost_params),
        )
        headline.append((str(_("Lost in the period")), lost_total))
        table.totals = [Cell(str(_("Total"))), Cell(""), Cell(""), Cell(""), Cell(""), lost_total]
        result = Result(table=table, headline=headline, chart=self.chart(table, funnel_stages))
        if "lost_reason" not in access.hidden_fields(ctx.user, "deal"):
            result.extra_tables.append(
                (
                    str(_("Lost, by stage and reason")),
                    self.drop_off(lost_rows, stages, lost_params, lost_total),
                )
            )
        if ctx.pipeline is None:
            result.notes.append(
                str(
                    _("The pipeline “%(name)s” is shown; choose another one above.")
                    % {"name": pipeline.display_name}
                )
            )
        result.notes.append(
            str(
                _(
                    "Entered: deals that moved into the stage (or were created in it) in the "
                    "period. To the next stage: of the deals that entered the stage in the "
                    "period, the share that later reached the next stage or one after it (up "
                    "to today). Days in stage: from the moves out of the stage in the period. "
                    "Lost: deals lost from the stage in the period."
                )
            )
        )
        return result

    @staticmethod
    def drop_off(lost_rows, stages, lost_params, lost_total: Cell) -> Table:
        names = {s.pk: s for s in stages}
        order = {s.pk: i for i, s in enumerate(stages)}
        reasons = {item.pk: item for item in DictionaryItem.objects.of("lost_reason").order_by()}
        table = Table(
            [
                Column("stage", _("Lost from")),
                Column("reason", _("Lost reason"), field=("deal", "lost_reason")),
                Column("count", _("Deals"), numeric=True),
            ]
        )
        for stage_id, reason_id, n in sorted(
            lost_rows,
            key=lambda r: (order.get(r[0], 0), -r[2], str(reasons.get(r[1], ""))),
        ):
            item = reasons.get(reason_id)
            reason = {"lost_reason": reason_id} if reason_id else {"missing": "lost_reason"}
            url = (
                list_url("deals:list", lost_from=stage_id, **reason, **lost_params)
                if item is not None or reason_id is None
                else ""
            )
            stage = names.get(stage_id)
            table.rows.append(
                [
                    Cell(stage.display_name if stage else "—"),
                    Cell(str(item) if item else str(_("No reason given"))),
                    Cell(n, url=url),
                ]
            )
        table.totals = [Cell(str(_("Total"))), Cell(""), lost_total]
        return table

    @staticmethod
    def chart(table: Table, stages) -> dict:
        return {
            "type": "bar",
            "data": {
                "labels": [str(row[0]) for row in table.rows],
                "datasets": [
                    {
                        "label": str(_("Entered")),
                        "data": [row[1].value for row in table.rows],
                        "backgroundColor": [
                            "#2fb344" if s.kind == StageKind.WON else "#206bc4" for s in stages
                        ],
                    }
                ],
            },
            "options": {
                "animation": False,
                "indexAxis": "y",
                "plugins": {"legend": {"display": False}},
                "scales": {"x": {"beginAtZero": True, "ticks": {"precision": 0}}},
            },
        }
