"""What the lead and deal pages share: the detail page's context (the stage guide, the
stage path with the time spent in each stage, moving, activities, tasks, history), the
stage-move views and the bulk transfer. Every record comes through the access module."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from crm import record_cards, selectors
from crm.filters import dictionary_items, people_in_scope
from crm.forms import ACTIVITY_KINDS, ActivityForm
from crm.history_entries import history_entries
from crm.params import id_param
from crm.services import activities as activity_services
from crm.views.base import RecordDetailView
from crm.views.bulk import Tally
from crm.widgets import speed_up_selects

from .. import services
from ..kinds import StagedType, staged_type
from ..models import Stage, StageHistory, StageKind
from ..moves import MoveOutcome, request_move

HISTORY_LIMIT = 30
ACTIVITY_LIMIT = 50


def duration(seconds: int) -> str:
    """Time spent in a stage as people read it: 3天 4小时 / 3 d 4 h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    if days:
        return _("%(days)s d %(hours)s h") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)s h") % {"hours": hours}
    return _("< 1 h")


@dataclass
class PathStep:
    stage: Stage
    current: bool
    passed: bool
    seconds: int

    @property
    def spent(self) -> str:
        return duration(self.seconds) if self.seconds else ""


def stage_path(record, stages: list[Stage], history: list[StageHistory]) -> list[PathStep]:
    """All stages of the record's pipeline as steps: open ones in order, then the won
    stage (and the lost one when the record is there), with the time spent in each
    summed over the stage history (the current stage counts until now)."""
    spent: dict[int, int] = {}
    for move in history:
        if move.from_stage_id:
            spent[move.from_stage_id] = spent.get(move.from_stage_id, 0) + move.seconds_in_previous
    if record.stage.kind == StageKind.OPEN:
        now_seconds = int((timezone.now() - record.stage_entered_at).total_seconds())
        spent[record.stage_id] = spent.get(record.stage_id, 0) + max(0, now_seconds)
    current_order = (record.stage.order, record.stage_id)
    closed = record.stage.kind != StageKind.OPEN
    steps = []
    for stage in stages:
        if stage.kind == StageKind.LOST and stage.pk != record.stage_id:
            continue
        if stage.kind == StageKind.WON and record.stage.kind == StageKind.LOST:
            continue
        steps.append(
            PathStep(
                stage=stage,
                current=stage.pk == record.stage_id,
                passed=stage.kind == StageKind.OPEN
                and (closed or (stage.order, stage.pk) < current_order),
                seconds=spent.get(stage.pk, 0),
            )
        )
    return steps


class StagedRecordDetailView(RecordDetailView):
    """The detail page of a lead or a deal. Subclasses name the model and the template;
    the rest that differs comes from the model's staged type (pipelines.kinds)."""

    select_related: tuple[str, ...] = ("stage", "pipeline", "owner", "created_by")

    @property
    def staged_type(self) -> StagedType:
        return staged_type(self.model)

    @property
    def url_namespace(self) -> str:
        return self.staged_type.url_namespace

    def get_queryset(self):
        return self.model.objects.select_related(*self.select_related)

    def get_object(self, queryset=None):
        record = super().get_object(queryset)
        items = dictionary_items(self.request)
        for name in self.dictionary_fields():
            item_id = getattr(record, f"{name}_id")
            if item_id in items:
                setattr(record, name, items[item_id])
        return record

    def dictionary_fields(self) -> tuple[str, ...]:
        return ("lost_reason",)

    # --- pieces of the page ---------------------------------------------------------
    def activity_customer(self):
        return None

    def activity_kinds(self) -> list:
        return [
            item
            for item in dictionary_items(self.request).values()
            if item.dictionary.code == ACTIVITY_KINDS and item.is_active
        ]

    def move_targets(self, record) -> list[Stage]:
        return [
            s
            for s in self.stages
            if s.pk != record.stage_id
            and not (self.staged_type.won_by_conversion and s.kind == StageKind.WON)
        ]

    def get_context_data(self, activity_form=None, pending=None, lose_form=None, **kwargs):
        context = {"object": self.object, "record": self.object, "view": self, **kwargs}
        user, record = self.request.user, self.object
        record_type = record.record_type
        can_change = access.can(user, record, "change")
        self.stages = list(record.pipeline.stages.order_by("order", "id"))
        history = list(
            StageHistory.objects.filter(record_type=record_type, record_id=record.pk)
            .select_related("from_stage", "to_stage", "user")
            .order_by("moved_at", "id")
        )
        for move in history:
            move.spent = duration(move.seconds_in_previous)
        activities = list(selectors.timeline(user, record)[: ACTIVITY_LIMIT + 1])
        items = dictionary_items(self.request)
        for activity in activities:
            if activity.kind_id in items:
                activity.kind = items[activity.kind_id]
        tasks = list(selectors.open_tasks_about(user, record))
        changes = list(selectors.record_history(user, record)[:HISTORY_LIMIT])
        entries = history_entries(changes, user, subject=type(record))
        can_log = access.has_permission(user, "activity", "add")
        if can_log and activity_form is None:
            activity_form = ActivityForm(
                customer=self.activity_customer(),
                user=user,
                contacts=[],
                kinds=self.activity_kinds(),
            )
        if activity_form is not None:
            speed_up_selects(activity_form)
        is_open = record.stage.kind == StageKind.OPEN and record.status == "open"
        context.update(
            record_type=record_type,
            url_namespace=self.url_namespace,
            can_change=can_change,
            is_open=is_open,
            stage_steps=stage_path(record, self.stages, history),
            stage_history=list(reversed(history)),
            move_targets=self.move_targets(record) if can_change else [],
            pending=pending,
            activities=activities[:ACTIVITY_LIMIT],
            more_activities=len(activities) > ACTIVITY_LIMIT,
            tasks=tasks,
            history=entries,
            first_page=True,
            can_log=can_log,
            activity_form=activity_form,
            contacts=[],
            lose_form=lose_form,
            # Cards of other apps (automation: the record's runs), crm/record_cards.py.
            record_cards=record_cards.cards_for(user, record),
        )
        return context


class StageMoveView(StagedRecordDetailView):
    """POST a move from the detail page ("Move to"), through pipelines.moves like the
    board. When the move needs fields or a lost reason, the page comes back with the
    small form that completes it."""

    http_method_names = ["post"]

    def target_stage(self, stage_id) -> Stage | None:
        return Stage.objects.filter(pk=stage_id, pipeline_id=self.object.pipeline_id).first()

    def request_move(self, stage: Stage) -> MoveOutcome:
        return request_move(
            record=self.object, stage=stage, user=self.request.user, data=self.request.POST
        )

    def action_url(self) -> str:
        return reverse(f"{self.url_namespace}:move", args=[self.object.pk])

    def post(self, request, *args, **kwargs):
        self.object = record = self.get_object()
        if not access.can(request.user, record, "change"):
            raise PermissionDenied
        stage_id = id_param(request.POST, "stage")
        stage = self.target_stage(stage_id) if stage_id else None
        detail = reverse(f"{self.url_namespace}:detail", args=[record.pk])
        if stage is None:
            messages.error(request, _("Choose the stage to move it to."))
            return HttpResponseRedirect(detail)
        outcome = self.request_move(stage)
        if outcome.needs_input:
            pending = {
                "stage": stage,
                "action": self.action_url(),
                "message": outcome.message,
                "form": outcome.form,
            }
            return self.render_to_response(self.get_context_data(pending=pending))
        if outcome.refused:
            messages.error(request, outcome.message)
            return HttpResponseRedirect(detail)
        if outcome.history is None:
            messages.info(request, outcome.message)
        else:
            messages.success(request, outcome.message)
        if not access.can(request.user, record, "view"):
            return HttpResponseRedirect(reverse(f"{self.url_namespace}:list"))
        return HttpResponseRedirect(detail)


class LogActivityView(StagedRecordDetailView):
    """POST a follow-up on the lead or deal; its planned next follow-up becomes a task
    for the record's owner."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.object = record = self.get_object()
        user = request.user
        if not access.has_permission(user, "activity", "add"):
            raise PermissionDenied
        customer = self.activity_customer()
        form = ActivityForm(request.POST, customer=customer, user=user)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(activity_form=form))
        data = form.cleaned_data
        activity_services.log_activity(
            customer=customer,
            subject=record,
            by=user,
            kind=data["kind"],
            content=data["content"],
            occurred_at=data["occurred_at"],
            contact=data.get("contact"),
            next_follow_up_at=data.get("next_follow_up_at"),
        )
        messages.success(request, _("Follow-up logged."))
        return HttpResponseRedirect(reverse(f"{self.url_namespace}:detail", args=[record.pk]))


# --- Bulk transfer ------------------------------------------------------------------------


def transfer(queryset, user, request):
    target = access.users_in_scope(user).filter(pk=id_param(request.POST, "to_owner")).first()
    if target is None:
        return messages.ERROR, _("Choose the new owner.")
    tally = Tally(request, queryset)
    editable = queryset.editable_by(user)
    tally.add_not_editable(queryset, editable, unowned=_("unassigned: claim them first"))
    tally.add(_("already %(name)s's") % {"name": target}, editable.filter(owner=target).count())
    count = services.transfer_records(queryset, to=target, by=user)
    return tally.message(
        count,
        done_text=_("%(count)s records transferred to %(name)s.")
        % {"count": count, "name": target},
        not_done=_("%(count)s not transferred"),
    )


def owners_context(request, bulk_actions) -> list:
    return people_in_scope(request) if bulk_actions else []
