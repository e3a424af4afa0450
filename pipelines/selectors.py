"""Read-side questions about leads and deals that the lists, the board, the reports and
soon automation and the API all ask: which records stayed too long in their stage,
which deals are past their expected close, which were lost without a real reason, what
a pipeline's board shows. One definition each, so a report's figure and the list it
links to count the same records.

As in crm.selectors: a selector takes the user (never the request) and answers inside
the user's data scope; the rule it applies is also a condition (`*_q`) for callers that
already hold a scoped queryset (a list's filters, a report narrowed by owner)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, models
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts import access

from .kinds import staged_type
from .models import (
    Deal,
    DealStatus,
    Lead,
    LeadStatus,
    Pipeline,
    Stage,
    StageKind,
)

# The board's totals query (one aggregate) is defined in services; the board's readers
# reach it here with the rest of the board's questions.

StagedModel = type[Lead] | type[Deal]


def model_of(pipeline: Pipeline) -> StagedModel:
    """The record model a pipeline moves: deals or leads."""
    return staged_type(pipeline).model


# --- Over the stage's time limit ---------------------------------------------------------


def over_time_limit_q(stages: Iterable[Stage], now: datetime | None = None) -> Q:
    """Records in an open stage of `stages` longer than its time limit: more whole days
    than the limit, as the record's own `over_time_limit` says (a record exactly at the
    limit is not over it). One condition per limited stage, so the (stage, entered) index
    serves it; a stage without a limit, or a won or lost one, adds nothing."""
    now = now or timezone.now()
    condition = Q(pk__in=[])
    for stage in stages:
        if stage.time_limit_days and stage.kind == StageKind.OPEN:
            cutoff = now - timedelta(days=stage.time_limit_days + 1)
            condition |= Q(stage_id=stage.pk, stage_entered_at__lte=cutoff)
    return condition


def active_stages(kind: str) -> list[Stage]:
    """Every stage of the active pipelines of a kind (lead or deal), with its pipeline,
    in the lists' order: the stages the lists' filters offer."""
    return list(
        Stage.objects.filter(pipeline__kind=kind, pipeline__is_active=True)
        .select_related("pipeline")
        .order_by("pipeline__order", "pipeline_id", "order", "id")
    )


def over_time_limit(
    user,
    model: StagedModel,
    *,
    stages: Iterable[Stage] | None = None,
    now: datetime | None = None,
) -> QuerySet:
    """The leads or deals the user sees that stayed in their stage longer than its time
    limit. `stages` are the stages to consider; by default those of the active pipelines,
    as the lists' "over the time limit" filter has them."""
    if stages is None:
        stages = active_stages(model.record_type)
    return model.objects.visible_to(user).filter(over_time_limit_q(stages, now))


# --- Deals past their expected close --------------------------------------------------


def past_expected_close_q(today: date | None = None) -> Q:
    """Open deals whose expected close date lies before today (the local day)."""
    return Q(status=DealStatus.OPEN, expected_close_date__lt=today or timezone.localdate())


def past_expected_close(user, *, today: date | None = None) -> QuerySet[Deal]:
    """The open deals the user sees whose expected close date has passed."""
    return Deal.objects.visible_to(user).filter(past_expected_close_q(today))


# --- Vague lost reasons ------------------------------------------------------------------

# Lost reasons that say nothing ("other", "unknown"): the leads report counts how often
# they are picked. The seeded dictionary has none; an admin who adds one uses these codes.
VAGUE_LOST_REASONS = frozenset({"other", "others", "unknown", "misc", "not_specified"})


def vague_reason_q() -> Q:
    """No lost reason, or one of the vague ones (VAGUE_LOST_REASONS)."""
    return Q(lost_reason__isnull=True) | Q(lost_reason__code__in=VAGUE_LOST_REASONS)


def lost_vaguely(user, model: StagedModel) -> QuerySet:
    """The lost leads or deals the user sees whose lost reason says nothing (none, or a
    vague one): what the leads report counts and a manager asks the owners about."""
    lost = LeadStatus.LOST if model is Lead else DealStatus.LOST
    return model.objects.visible_to(user).filter(vague_reason_q(), status=lost)


# --- The board ---------------------------------------------------------------------------

# Cards a column shows at first, and per "load more".
CARDS_PER_COLUMN = 20
# Won and lost columns show what closed in the last days.
CLOSED_DAYS = 30
KIND_ORDER = {StageKind.OPEN: 0, StageKind.WON: 1, StageKind.LOST: 2}


def board_stages(pipeline: Pipeline) -> list[Stage]:
    """A board's columns in order: the open stages in their order, then won, then lost."""
    return sorted(pipeline.stages.all(), key=lambda s: (KIND_ORDER[s.kind], s.order, s.pk))


def board_records(user, pipeline: Pipeline) -> QuerySet:
    """The records of a pipeline the user sees (all statuses; the board shows the open
    ones and what closed recently)."""
    return model_of(pipeline).objects.visible_to(user).filter(pipeline=pipeline)


class BoardQuery:
    """What a pipeline's board shows a user, column by column: every record in an open
    stage, and in the won and lost stages what closed in the last CLOSED_DAYS days; the
    biggest deals (newest leads) first, the latest closed first in closed columns. A
    board costs the same queries for ten deals or fifty thousand: one aggregate for the
    totals, one query for every column's first cards.

    `records` narrows the board (its owner and department filters) and must lie within
    `board_records(user, pipeline)`, the default."""

    def __init__(
        self,
        user,
        pipeline: Pipeline,
        *,
        stages: list[Stage] | None = None,
        records: QuerySet | None = None,
        now: datetime | None = None,
    ):
        self.pipeline = pipeline
        self.model = model_of(pipeline)
        self.stages = board_stages(pipeline) if stages is None else stages
        self.records = board_records(user, pipeline) if records is None else records
        self.since = (now or timezone.now()) - timedelta(days=CLOSED_DAYS)
        # Deal columns put the biggest first, unless the amount is hidden from the user:
        # then, like leads, the newest (the order would reveal the amounts).
        self.by_amount = staged_type(pipeline).has_amount and "amount" not in access.hidden_fields(
            user, self.model.record_type
        )

    def shown(self) -> QuerySet:
        """Records shown on the board: all in open stages, recently closed in the others."""
        open_ids = [s.pk for s in self.stages if s.kind == StageKind.OPEN]
        closed_ids = [s.pk for s in self.stages if s.kind != StageKind.OPEN]
        return self.records.filter(
            Q(stage_id__in=open_ids) | Q(stage_id__in=closed_ids, closed_at__gte=self.since)
        )

    def ordering(self, stage: Stage | None = None) -> list:
        """Open columns: the biggest deals (newest leads) first; closed ones: the latest
        closed. Without a stage, the order of every column at once (window function)."""
        second = F("amount").desc() if self.by_amount else F("created_at").desc()
        if stage is None:
            return [F("closed_at").desc(nulls_last=True), second, F("pk").desc()]
        if stage.kind == StageKind.OPEN:
            return [second, F("pk").desc()]
        return [F("closed_at").desc(), second, F("pk").desc()]

    def sort_key(self, card) -> tuple:
        """The key of ordering() in Python (closed_at desc nulls last, then ...)."""
        second = card.amount if self.by_amount else card.created_at.timestamp()
        closed = -card.closed_at.timestamp() if card.closed_at else float("inf")
        return (closed, -second, -card.pk)

    def stage_records(self, stage: Stage) -> QuerySet:
        """One column's records, filtered so an index on (stage, status, ...) serves them."""
        if stage.kind == StageKind.OPEN:
            return self.records.filter(stage_id=stage.pk, status="open")
        return self.records.filter(stage_id=stage.pk, closed_at__gte=self.since)

    def with_card_relations(self, queryset: QuerySet) -> QuerySet:
        """What a card shows besides the record: its owner, and a deal's customer; only
        the columns a card uses (a customer row with its custom fields and address is
        ~10x a card's data: 160 cards read 2 MB less)."""
        related = ["owner", "customer"] if self.model is Deal else ["owner"]
        return queryset.select_related(*related).only(
            *CARD_COLUMNS[self.model], "owner__name", "owner__username"
        )

    def columns(
        self, stages: list[Stage] | None = None, *, cards: bool = True
    ) -> list[tuple[Column, list]]:
        """Each column's totals and, with `cards`, its first cards in order: two queries
        however many records (one without the cards)."""
        stages = self.stages if stages is None else stages
        shown = self.shown().filter(stage_id__in=[s.pk for s in stages])
        in_stages = self.records.filter(stage_id__in=[s.pk for s in stages])
        totals = board_totals(in_stages, stages, since=self.since)
        found: dict[int, list] = {s.pk: [] for s in stages}
        if cards:
            for card in self.first_cards(stages, shown):
                found[card.stage_id].append(card)
            for column_cards in found.values():
                # A UNION's rows come in no promised order: each column sorts its own.
                column_cards.sort(key=self.sort_key)
        return [(totals[s.pk], found[s.pk]) for s in stages]

    def first_cards(self, stages: list[Stage], shown: QuerySet) -> Iterable:
        """The first cards of each column in one query. Where the database takes ordered,
        limited queries in a UNION (PostgreSQL), one LIMIT query per column: each reads
        only its cards from the (stage, status, amount) index, however many deals there
        are. Elsewhere (SQLite) ROW_NUMBER() OVER (PARTITION BY stage_id ...) <= n."""
        if not stages:
            return []
        if connection.features.supports_slicing_ordering_in_compound:
            parts = [
                self.with_card_relations(self.stage_records(stage)).order_by(*self.ordering(stage))[
                    :CARDS_PER_COLUMN
                ]
                for stage in stages
            ]
            return parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        window = Window(RowNumber(), partition_by=[F("stage_id")], order_by=self.ordering())
        return (
            self.with_card_relations(shown)
            .annotate(board_row=window)
            .filter(board_row__lte=CARDS_PER_COLUMN)
            .order_by("stage_id", "board_row")
        )

    def page(self, stage: Stage, offset: int) -> tuple[list, bool]:
        """The cards of one column after the first `offset`, and whether more follow."""
        rows = list(
            self.with_card_relations(self.stage_records(stage)).order_by(*self.ordering(stage))[
                offset : offset + CARDS_PER_COLUMN + 1
            ]
        )
        return rows[:CARDS_PER_COLUMN], len(rows) > CARDS_PER_COLUMN


# --- The board's totals ----------------------------------------------------------------


# What a board card reads of its record (the template, the order of a column, whether
# the user may move it); with_card_relations adds the owner's and a deal's customer's name.
_STAGED_COLUMNS = ("pipeline_id", "stage_id", "status", "stage_entered_at", "closed_at")
_STAGED_COLUMNS += ("created_at", "owner_id")
CARD_COLUMNS = {
    Deal: (*_STAGED_COLUMNS, "title", "amount", "customer_id", "customer__name"),
    Lead: (*_STAGED_COLUMNS, "person_name", "company_name", "title", "phone", "email"),
}


@dataclass
class Column:
    stage: Stage
    count: int
    amount: Decimal
    weighted: Decimal


def board_totals(records: models.QuerySet, stages: list[Stage], since=None) -> dict[int, Column]:
    """Count, amount and weighted amount per stage: one query.

    With `since`, the open stages count every record and the closed ones those closed
    since then, as two aggregates in a UNION ALL rather than one with an OR: each side
    is then an index-only scan of `deal_board_totals` / `lead_board_totals` (PostgreSQL).
    A deal's weighted amount is amount x probability / 100: the aggregate groups by stage
    and probability (a few values a stage) and sums the amounts only, and the weights are
    applied here, once a group: a numeric multiplication and a second sum for each of a
    manager's 25,000 open deals cost 2-7 ms of a 22-25 ms query (EXPLAIN ANALYZE medians
    of 25, two rounds: 24.5 -> 22.1, 22.4 -> 15.4 ms; the admin's, unfiltered, 9 ms either way).
    """
    from django.db.models import Count, DecimalField, Sum, Value
    from django.db.models.functions import Coalesce

    zero = Value(Decimal("0"), output_field=DecimalField(max_digits=16, decimal_places=2))
    aggregates = {"n": Count("*")}
    groups = ["stage_id"]
    if records.model is Deal:
        # Not named "amount": that is the column.
        aggregates["total"] = Coalesce(Sum("amount"), zero)
        groups.append("probability")

    def per_stage(queryset):
        return queryset.order_by().values(*groups).annotate(**aggregates)

    if since is None:
        query = per_stage(records)
    else:
        open_ids = [s.pk for s in stages if s.kind == StageKind.OPEN]
        closed_ids = [s.pk for s in stages if s.kind != StageKind.OPEN]
        query = per_stage(records.filter(stage_id__in=open_ids)).union(
            per_stage(records.filter(stage_id__in=closed_ids, closed_at__gte=since)), all=True
        )
    sums: dict[int, list] = {}  # stage id: [count, amount, amount x probability]
    for row in query:
        total = Decimal(row.get("total") or 0)
        found = sums.setdefault(row["stage_id"], [0, Decimal(0), Decimal(0)])
        found[0] += row["n"]
        found[1] += total
        found[2] += total * row.get("probability", 0)
    cent = Decimal("0.01")
    columns = {}
    for stage in stages:
        count, amount, weighted = sums.get(stage.pk, (0, Decimal(0), Decimal(0)))
        columns[stage.pk] = Column(
            stage=stage,
            count=count,
            amount=amount.quantize(cent),
            weighted=(weighted / 100).quantize(cent),
        )
    return columns
