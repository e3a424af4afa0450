"""Filters of the lead and deal lists (django-filter), built like the customer list's:
choices limited to what the user may see, relative values ("me", "this month", "over
the time limit") so saved views stay meaningful."""

from __future__ import annotations

from datetime import date

import django_filters as filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import access
from crm.dates import DateFromToRangeFilter
from crm.filters import (
    DateRangeWidget,
    DepartmentFilter,
    DictionaryFilter,
    OwnerFilter,
    PresetModelChoiceFilter,
    RecordFilterSet,
    SearchFilter,
    dictionary_filter,
    owner_choices,
)

from .models import (
    LOST_REASON,
    Deal,
    DealStatus,
    Lead,
    LeadStatus,
    Pipeline,
    PipelineKind,
    Stage,
    StageHistory,
    StageKind,
)
from .selectors import active_stages, over_time_limit_q, past_expected_close_q, vague_reason_q

ALL = "all"


def pipelines_of(request, kind: str) -> list[Pipeline]:
    """The active pipelines of a kind, loaded once per request."""
    cache = getattr(request, "_pipelines", None)
    if cache is None:
        cache = request._pipelines = {}
    if kind not in cache:
        cache[kind] = list(Pipeline.objects.filter(kind=kind, is_active=True))
    return cache[kind]


def stages_of(request, kind: str) -> list[Stage]:
    """Every stage of the active pipelines of a kind (with its pipeline), once per request."""
    cache = getattr(request, "_stages", None)
    if cache is None:
        cache = request._stages = {}
    if kind not in cache:
        cache[kind] = active_stages(kind)
    return cache[kind]


class StageFilter(PresetModelChoiceFilter):
    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        kwargs.setdefault("queryset", Stage.objects.filter(pipeline__kind=kind))
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        stages = stages_of(request, self.kind)
        several = len({s.pipeline_id for s in stages}) > 1
        return [
            (s, f"{s.pipeline.display_name} · {s.display_name}" if several else s.display_name)
            for s in stages
        ]


class PipelineFilter(PresetModelChoiceFilter):
    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        kwargs.setdefault("queryset", Pipeline.objects.filter(kind=kind))
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        return [(p, p.display_name) for p in pipelines_of(request, self.kind)]


class StatusFilter(filters.ChoiceFilter):
    """A status, or "all"; the lead list shows open leads when no status is asked for
    (the view applies that default)."""

    def filter(self, qs, value):
        if value in ("", None, ALL):
            return qs
        return qs.filter(status=value)


class OverTimeLimitFilter(filters.BooleanFilter):
    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        stages = stages_of(self.parent.request, self.kind)
        condition = over_time_limit_q(stages)
        return qs.filter(condition) if value else qs.exclude(condition)


class LeadFilter(RecordFilterSet):
    q = SearchFilter(
        label=_("Search"),
        fields=("person_name", "company_name", "email", "wechat"),
        phone_fields=("phone",),
        widget=forms.TextInput(attrs={"placeholder": _("Name, company, phone or email")}),
    )
    owner = OwnerFilter(label=_("Owner"), choices=())
    department = DepartmentFilter(label=_("Department"))
    source = dictionary_filter("lead_source", _("Source"))
    stage = StageFilter(label=_("Stage"), kind=PipelineKind.LEAD)
    status = StatusFilter(
        label=_("Status"),
        choices=[*LeadStatus.choices, (ALL, _("All statuses"))],
        empty_label=_("Open (default)"),
    )
    overdue = OverTimeLimitFilter(label=_("Over the stage's time limit"), kind=PipelineKind.LEAD)
    created = DateFromToRangeFilter(
        label=_("Created"), field_name="created_at", widget=DateRangeWidget
    )
    # What the leads report drills into: lost reasons, converted deals' outcome.
    lost_reason = dictionary_filter("lost_reason", LOST_REASON["lead"])
    vague_reason = filters.BooleanFilter(
        label=_("Vague or no lost reason"), method="filter_vague_reason"
    )
    lost_note = filters.BooleanFilter(label=_("Lost note given"), method="filter_lost_note")
    deal = filters.ChoiceFilter(
        label=_("Converted deal"),
        choices=DealStatus.choices,
        field_name="converted_deal__status",
    )
    missing = filters.MultipleChoiceFilter(
        label=_("Not filled in"),
        choices=[("source", _("Source")), ("lost_reason", LOST_REASON["lead"])],
        method="filter_missing",
    )
    field_filters = {
        "source": "source",
        "lost_reason": "lost_reason",
        "vague_reason": "lost_reason",
        "lost_note": "lost_note",
    }

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=True)

    def filter_vague_reason(self, qs, name, value):
        if value is None:
            return qs
        return qs.filter(vague_reason_q()) if value else qs.exclude(vague_reason_q())

    def filter_lost_note(self, qs, name, value):
        if value is None:
            return qs
        return qs.exclude(lost_note="") if value else qs.filter(lost_note="")

    def filter_missing(self, qs, name, value):
        hidden = access.hidden_fields(self.request.user, "lead") if self.request else ()
        for field in value or ():
            if field in ("source", "lost_reason") and field not in hidden:
                qs = qs.filter(**{f"{field}__isnull": True})
        return qs


def _month_bounds(today: date, months_ahead: int = 0) -> tuple[date, date]:
    month = today.month - 1 + months_ahead
    start = date(today.year + month // 12, month % 12 + 1, 1)
    following = start.month  # 1..12; next month's first day
    end = date(start.year + following // 12, following % 12 + 1, 1)
    return start, end


class DealFilter(RecordFilterSet):
    q = SearchFilter(
        label=_("Search"),
        fields=("title", "customer__name"),
        widget=forms.TextInput(attrs={"placeholder": _("Title or customer")}),
    )
    owner = OwnerFilter(label=_("Owner"), choices=())
    department = DepartmentFilter(label=_("Department"))
    pipeline = PipelineFilter(label=_("Pipeline"), kind=PipelineKind.DEAL)
    stage = StageFilter(label=_("Stage"), kind=PipelineKind.DEAL)
    status = StatusFilter(label=_("Status"), choices=DealStatus.choices, empty_label=_("Any"))
    amount = filters.RangeFilter(
        label=_("Amount (CNY)"),
        widget=filters.widgets.RangeWidget(attrs={"inputmode": "decimal"}),
    )
    expected_close = DateFromToRangeFilter(
        label=_("Expected close"), field_name="expected_close_date", widget=DateRangeWidget
    )
    closing = filters.ChoiceFilter(
        label=_("Closing"),
        choices=[
            ("month", _("This month")),
            ("next_month", _("Next month")),
            ("overdue", _("Expected date passed")),
            ("none", _("No expected date")),
        ],
        method="filter_closing",
    )
    overdue = OverTimeLimitFilter(label=_("Over the stage's time limit"), kind=PipelineKind.DEAL)
    # The customer's source (the win-rate report's drill-down by source).
    source = DictionaryFilter(
        label=_("Customer source"), code="customer_source", field_name="customer__source"
    )
    closed = DateFromToRangeFilter(
        label=_("Closed"), field_name="closed_at", widget=DateRangeWidget
    )
    lost_reason = dictionary_filter("lost_reason", _("Lost reason"))
    # Reports' drill-downs (the funnel): deals that entered a stage (within the "entered"
    # dates when given), and deals lost from a stage (within the "closed" dates).
    entered_stage = StageFilter(
        label=_("Entered the stage"), kind=PipelineKind.DEAL, method="filter_entered_stage"
    )
    entered = DateFromToRangeFilter(
        label=_("Entered a stage"), widget=DateRangeWidget, method="filter_entered"
    )
    lost_from = StageFilter(
        label=_("Lost from the stage"), kind=PipelineKind.DEAL, method="filter_lost_from"
    )
    # The reports' "no source", "no department" and "no reason given" rows.
    missing = filters.MultipleChoiceFilter(
        label=_("Not filled in"),
        choices=[
            ("source", _("Customer source")),
            ("department", _("Owner's department")),
            ("lost_reason", _("Lost reason")),
        ],
        method="filter_missing",
    )
    field_filters = {
        "amount": "amount",
        "expected_close": "expected_close_date",
        "closing": "expected_close_date",
        "lost_reason": "lost_reason",
    }

    class Meta:
        model = Deal
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=False)
        user = getattr(request, "user", None)
        if user is not None and "source" in access.hidden_fields(user, "customer"):
            self.filters.pop("source", None)

    def _range(self, name: str) -> slice | None:
        value = self.form.cleaned_data.get(name)
        return value if value and (value.start or value.stop) else None

    @staticmethod
    def _moves(stage_condition: Q, dates: slice | None):
        moves = StageHistory.objects.filter(stage_condition, record_type="deal")
        if dates is not None and dates.start:
            moves = moves.filter(moved_at__gte=dates.start)
        if dates is not None and dates.stop:
            moves = moves.filter(moved_at__lte=dates.stop)
        return moves.values("record_id")

    def filter_entered_stage(self, qs, name, value):
        if value is None:
            return qs
        return qs.filter(pk__in=self._moves(Q(to_stage=value), self._range("entered")))

    def filter_entered(self, qs, name, value):
        if not value or not (value.start or value.stop):
            return qs
        if self.form.cleaned_data.get("entered_stage") is not None:
            return qs  # the stage's filter reads the dates
        return qs.filter(pk__in=self._moves(Q(), value))

    def filter_lost_from(self, qs, name, value):
        if value is None:
            return qs
        lost_moves = Q(from_stage=value, to_stage__kind=StageKind.LOST)
        moves = self._moves(lost_moves, self._range("closed"))
        return qs.filter(status=DealStatus.LOST, pk__in=moves)

    def filter_missing(self, qs, name, value):
        """Empty fields; a field the role may not see filters nothing."""
        user = getattr(self.request, "user", None)
        hidden_deal = access.hidden_fields(user, "deal") if user else ()
        hidden_customer = access.hidden_fields(user, "customer") if user else ()
        for field in value or ():
            if field == "source" and "source" not in hidden_customer:
                qs = qs.filter(customer__source__isnull=True)
            elif field == "lost_reason" and "lost_reason" not in hidden_deal:
                qs = qs.filter(lost_reason__isnull=True)
            elif field == "department":
                qs = qs.filter(owner__department__isnull=True)
        return qs

    def filter_closing(self, qs, name, value):
        today = timezone.localdate()
        if value in ("month", "next_month"):
            start, end = _month_bounds(today, 1 if value == "next_month" else 0)
            return qs.filter(expected_close_date__gte=start, expected_close_date__lt=end)
        if value == "overdue":
            return qs.filter(past_expected_close_q(today))
        if value == "none":
            return qs.filter(expected_close_date__isnull=True)
        return qs
