"""Every stage change goes through here (DESIGN rule 3): moves on the board, from a
record's page, pipeline switches, losing and converting leads. Each service re-checks
access, locks the record, refuses stale moves, checks required fields and lost reasons,
writes StageHistory and emits `stage_changed` once the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import User
from crm.fields import schema, types
from crm.fields import values as field_values
from crm.models import Activity, Contact, Customer, DictionaryItem, EventKind, Task
from crm.services.contacts import create_contact
from crm.services.customers import create_customer
from crm.services.history import Changes, diff, record_change, record_changes, snapshot

from .kinds import staged_type
from .models import (
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
from .signals import lead_converted, stage_changed

StagedRecord = Lead | Deal


class StageMoveRefused(ValidationError):
    """A move the service refuses; `code` says why: stale, pipeline, required,
    lost_reason, converted, closed. `missing` lists (name, label) of required fields."""

    def __init__(self, message, code: str, missing: list[tuple[str, str]] | None = None):
        super().__init__(message, code=code)
        self.missing = missing or []


def record_type_of(record: StagedRecord) -> str:
    return staged_type(record).key


def _kind_for(record: StagedRecord) -> str:
    return staged_type(record).kind


# --- Required fields ------------------------------------------------------------------


def field_label(record_type: str, name: str) -> str:
    if name.startswith("cf_"):
        for cf in schema.custom_fields(record_type, active=False):
            if cf.name == name:
                return cf.display_label
        return name
    model = staged_type(record_type).model
    try:
        return str(model._meta.get_field(name).verbose_name)
    except Exception:
        return name


def _is_empty(record: StagedRecord, name: str) -> bool:
    if name.startswith("cf_"):
        value = (record.custom or {}).get(name.removeprefix("cf_"))
        return value is None or value == "" or value == []
    field = record._meta.get_field(name)
    value = getattr(record, field.attname)
    if name == "amount":
        return not value  # a zero amount is not a quotation
    return value is None or value == ""


def missing_fields(record: StagedRecord, stage: Stage) -> list[tuple[str, str]]:
    """(name, label) of the stage's required fields the record has not filled."""
    record_type = record_type_of(record)
    return [
        (name, field_label(record_type, name))
        for name in stage.required_fields or []
        if _is_empty(record, name)
    ]


def apply_values(record: StagedRecord, values: dict[str, Any], *, by: User) -> None:
    """Fill fields (e.g. a stage's required ones, from the board's small form): each
    value validated as everywhere else; fields the user may not edit are refused."""
    record_type = record_type_of(record)
    restricted = access.hidden_fields(by, record_type) | access.readonly_fields(by, record_type)
    errors: dict[str, list[str]] = {}
    custom = dict(record.custom or {})
    for name, raw in values.items():
        if name in restricted:
            errors[name] = [_("Your role may not change this field.")]
            continue
        try:
            if name.startswith("cf_"):
                cf = next(c for c in schema.custom_fields(record_type) if c.name == name)
                value = types.clean_value(cf, raw, required=True, current=custom.get(cf.key))
                custom[cf.key] = value
                continue
            if name in ("stage", "pipeline", "status", "owner", "customer"):
                raise KeyError(name)
            field = record._meta.get_field(name)
            form_field = field.formfield()
            if name == "contact" and isinstance(record, Deal):
                form_field.queryset = Contact.objects.filter(customer_id=record.customer_id)
            form_field.required = True
            value = form_field.clean(raw)
            field.run_validators(value)  # the model's own too (crm.dates' range)
            if (
                isinstance(value, models.Model)
                and value.pk != getattr(record, field.attname)
                and access.is_registered(value)
                and not access.can(by, value, "view")
            ):
                # A record the user cannot see is not theirs to link (the current one
                # stays valid: its customer may have gone to a colleague).
                raise ValidationError(form_field.error_messages["invalid_choice"])
            setattr(record, name, value)
        except (KeyError, StopIteration):
            errors[name] = [_("Unknown field.")]
        except ValidationError as exc:
            errors[name] = exc.messages
    record.custom = custom
    if errors:
        raise ValidationError(errors)


# --- Moves ----------------------------------------------------------------------------


# What a move changes (and so what its history entry compares), besides filled fields.
MOVED_FIELDS = ("pipeline", "stage", "status", "lost_reason", "lost_note", "closed_at")


def _lock(record: StagedRecord) -> StagedRecord:
    # FOR UPDATE OF the record's own row only (the joined stage and pipeline are read).
    return (
        type(record)
        .objects.select_for_update(of=("self",))
        .select_related("stage", "pipeline")
        .get(pk=record.pk)
    )


def _check_lost_reason(stage: Stage, lost_reason: DictionaryItem | None) -> None:
    if stage.kind != StageKind.LOST:
        return
    if lost_reason is None:
        raise StageMoveRefused(_("Say why it was lost: choose a lost reason."), code="lost_reason")
    if lost_reason.dictionary.code != "lost_reason" or not lost_reason.is_active:
        raise StageMoveRefused(_("Choose one of the offered lost reasons."), code="lost_reason")


def _enter(
    record: StagedRecord,
    stage: Stage,
    *,
    by: User | None,
    now,
    lost_reason: DictionaryItem | None = None,
    lost_note: str = "",
    note: str = "",
) -> StageHistory:
    """Put the (locked) record into `stage`: status, closed time, probability, history."""
    previous = record.stage if record.stage_id else None
    history = StageHistory(
        record_type=record_type_of(record),
        record_id=record.pk,
        pipeline=stage.pipeline,
        from_stage=previous,
        to_stage=stage,
        user=by,
        moved_at=now,
        seconds_in_previous=(
            max(0, int((now - record.stage_entered_at).total_seconds())) if previous else 0
        ),
        note=note[:300],
    )
    record.pipeline = stage.pipeline
    record.stage = stage
    record.stage_entered_at = now
    if stage.kind == StageKind.LOST:
        record.lost_reason = lost_reason
        record.lost_note = lost_note[:300]
    else:
        record.lost_reason = None
        record.lost_note = ""
    record.closed_at = now if stage.kind != StageKind.OPEN else None
    if isinstance(record, Deal):
        record.probability = stage.probability
        record.status = {
            StageKind.OPEN: DealStatus.OPEN,
            StageKind.WON: DealStatus.WON,
            StageKind.LOST: DealStatus.LOST,
        }[stage.kind]
    else:
        record.status = {
            StageKind.OPEN: LeadStatus.OPEN,
            StageKind.WON: LeadStatus.CONVERTED,
            StageKind.LOST: LeadStatus.LOST,
        }[stage.kind]
    return history


def _after_commit(record: StagedRecord, history: StageHistory, by: User | None) -> None:
    def send():
        stage_changed.send(
            sender=type(record),
            record=record,
            from_stage=history.from_stage,
            to_stage=history.to_stage,
            by=by,
            history=history,
        )

    transaction.on_commit(send, robust=True)


@transaction.atomic
def move_to_stage(
    *,
    record: StagedRecord,
    stage: Stage,
    by: User,
    expected_stage_id: int | None = None,
    lost_reason: DictionaryItem | None = None,
    lost_note: str = "",
    values: dict[str, Any] | None = None,
    _conversion: bool = False,
) -> StageHistory | None:
    """Move a lead or deal to another stage of its pipeline (None: it is there already).

    `expected_stage_id` is the stage the user saw: a move made from a stale view is
    refused. `values` fills fields first (the board's form for required fields)."""
    locked = _lock(record)
    if not access.can(by, locked, "change"):
        raise PermissionDenied
    if expected_stage_id is not None and locked.stage_id != int(expected_stage_id):
        raise StageMoveRefused(
            _("Someone moved it to “%(stage)s” meanwhile. Reload to see where it is now.")
            % {"stage": locked.stage.display_name},
            code="stale",
        )
    if stage.pipeline_id != locked.pipeline_id:
        raise StageMoveRefused(_("That stage belongs to another pipeline."), code="pipeline")
    if stage.pk == locked.stage_id:
        return None
    return _move(
        locked,
        stage,
        by=by,
        lost_reason=lost_reason,
        lost_note=lost_note,
        values=values,
        conversion=_conversion,
        original=record,
        kind=EventKind.LOST if stage.kind == StageKind.LOST else EventKind.STAGE_MOVED,
    )


def _move(
    locked: StagedRecord,
    stage: Stage,
    *,
    by: User,
    lost_reason,
    lost_note,
    values,
    conversion: bool,
    original: StagedRecord,
    kind: str,
    note: str = "",
    also: dict[str, Any] | None = None,
) -> StageHistory:
    """The move itself, on the locked record; `also` sets fields that change with it
    (a conversion's links), tracked in the same event."""
    if isinstance(locked, Lead):
        if locked.status == LeadStatus.CONVERTED:
            raise StageMoveRefused(
                _("This lead has been converted; work on its customer and deal."),
                code="converted",
            )
        if stage.kind == StageKind.WON and not conversion:
            raise StageMoveRefused(
                _("Convert the lead to move it to “%(stage)s”.") % {"stage": stage.display_name},
                code="converted",
            )
    tracked = [
        *MOVED_FIELDS,
        *(["probability"] if isinstance(locked, Deal) else []),
        *(values or {}),
        *(also or {}),
    ]
    before = snapshot(locked, only=tracked)
    for name, value in (also or {}).items():
        setattr(locked, name, value)
    if values:
        apply_values(locked, values, by=by)
    missing = missing_fields(locked, stage)
    if missing:
        raise StageMoveRefused(
            _("Fill in %(fields)s before moving it to “%(stage)s”.")
            % {"fields": "、".join(label for _name, label in missing), "stage": stage.display_name},
            code="required",
            missing=missing,
        )
    _check_lost_reason(stage, lost_reason)
    now = timezone.now()
    history = _enter(
        locked, stage, by=by, now=now, lost_reason=lost_reason, lost_note=lost_note, note=note
    )
    if values:
        # Only what the move changed needs checking: the stage and lost reason are
        # checked above, filled fields here (the rest was valid when last saved).
        locked.full_clean(
            exclude=[f.name for f in locked._meta.fields if f.name not in values],
            validate_unique=False,
        )
    field_values.save_checking_unique(locked, record_type=record_type_of(locked))
    history.save()
    changes = diff(before, snapshot(locked, only=tracked))
    record_change(locked, by=by, kind=kind, changes=changes)
    # The caller's object shows the record as it is now (no second read).
    if original is not locked:
        for field in locked._meta.concrete_fields:
            setattr(original, field.attname, getattr(locked, field.attname))
            if field.is_relation and field.is_cached(locked):
                field.set_cached_value(original, field.get_cached_value(locked))
            elif field.is_relation and field.is_cached(original):
                field.delete_cached_value(original)
    _after_commit(locked, history, by)
    return history


@transaction.atomic
def change_pipeline(
    *,
    deal: Deal,
    stage: Stage,
    by: User,
    expected_stage_id: int | None = None,
    lost_reason: DictionaryItem | None = None,
    values: dict[str, Any] | None = None,
) -> StageHistory | None:
    """Move a deal to another deal pipeline, into the chosen stage of it."""
    locked = _lock(deal)
    if not access.can(by, locked, "change"):
        raise PermissionDenied
    if expected_stage_id is not None and locked.stage_id != int(expected_stage_id):
        raise StageMoveRefused(
            _("Someone moved it to “%(stage)s” meanwhile. Reload to see where it is now.")
            % {"stage": locked.stage.display_name},
            code="stale",
        )
    if stage.pipeline.kind != PipelineKind.DEAL or not stage.pipeline.is_active:
        raise StageMoveRefused(_("Choose a stage of an active deal pipeline."), code="pipeline")
    if stage.pk == locked.stage_id:
        return None
    switched = stage.pipeline_id != locked.pipeline_id
    return _move(
        locked,
        stage,
        by=by,
        lost_reason=lost_reason,
        lost_note="",
        values=values,
        conversion=False,
        original=deal,
        kind=EventKind.PIPELINE_CHANGED if switched else EventKind.STAGE_MOVED,
        note=_("Moved from the pipeline “%(name)s”.") % {"name": locked.pipeline.display_name}
        if switched
        else "",
    )


# --- Create and edit ------------------------------------------------------------------


def default_pipeline(kind: str) -> Pipeline:
    pipeline = (
        Pipeline.objects.active().filter(kind=kind).order_by("-is_default", "order", "id").first()
    )
    if pipeline is None:
        raise ValidationError(_("No active pipeline is configured for this record type."))
    return pipeline


def starting_point(
    kind: str, pipeline: Pipeline | None, stage: Stage | None
) -> tuple[Pipeline, Stage]:
    """The pipeline and stage a new record of `kind` starts in: the given ones, else the
    default pipeline and its first open stage; a ValidationError (by field) when they do
    not fit. The create services and an import's plan ask the same question."""
    if pipeline is None:
        pipeline = default_pipeline(kind)
    if pipeline.kind != kind:
        raise ValidationError({"pipeline": _("Choose a pipeline for this record type.")})
    stage = stage or pipeline.first_open_stage()
    if stage is None or stage.pipeline_id != pipeline.pk:
        raise ValidationError({"stage": _("Choose a stage of the chosen pipeline.")})
    if stage.kind != StageKind.OPEN:
        raise ValidationError({"stage": _("A new record starts in an open stage.")})
    return pipeline, stage


def _save_new(record: StagedRecord, *, by: User) -> StagedRecord:
    record_type = record_type_of(record)
    if not access.has_permission(by, record_type, "add"):
        raise PermissionDenied
    record.pipeline, stage = starting_point(
        _kind_for(record),
        record.pipeline if record.pipeline_id else None,
        record.stage if record.stage_id else None,
    )
    field_values.enforce_field_access(record, stored=None, by=by, record_type=record_type)
    field_values.check_custom(record, record_type=record_type, before={})
    record.created_by = by
    record.stage = None  # entered below, like any move
    record.stage_id = None
    now = timezone.now()
    history = _enter(record, stage, by=by, now=now)
    missing = missing_fields(record, stage)
    if missing:
        raise ValidationError(
            {
                name: _("Required at the stage “%(stage)s”.") % {"stage": stage.display_name}
                for name, _label in missing
            }
        )
    record.full_clean()
    field_values.save_checking_unique(record, record_type=record_type)
    history.record_id = record.pk
    history.save()
    record_change(record, by=by, kind=EventKind.CREATED)
    _after_commit(record, history, by)
    return record


@transaction.atomic
def create_lead(*, lead: Lead, by: User) -> Lead:
    return _save_new(lead, by=by)


@transaction.atomic
def create_deal(*, deal: Deal, by: User) -> Deal:
    if not access.can(by, deal.customer, "view"):
        raise PermissionDenied
    if deal.owner_id is None:
        deal.owner = by
    return _save_new(deal, by=by)


def _save_edit(record: StagedRecord, *, by: User) -> StagedRecord:
    record_type = record_type_of(record)
    stored = _lock(record)
    if not access.can(by, stored, "change"):
        raise PermissionDenied
    # A deal moves only to a customer the user sees; the one it has stays valid even
    # after it went to a colleague, so the deal's owner can still save her deal.
    if (
        isinstance(record, Deal)
        and record.customer_id is not None
        and record.customer_id != stored.customer_id
        and not access.can(by, record.customer, "view")
    ):
        raise PermissionDenied
    before = snapshot(stored)
    # Only the stage services assign a stage (DESIGN rule 3).
    for name in (
        "pipeline_id",
        "stage_id",
        "stage_entered_at",
        "status",
        "closed_at",
        "lost_reason_id",
        "lost_note",
    ):
        setattr(record, name, getattr(stored, name))
    if isinstance(record, Deal):
        record.probability = stored.probability
    field_values.enforce_field_access(record, stored=stored, by=by, record_type=record_type)
    field_values.check_custom(record, record_type=record_type, before=stored.custom or {})
    record.full_clean()
    field_values.save_checking_unique(record, record_type=record_type)
    record_change(record, by=by, changes=diff(before, snapshot(record, like=stored)))
    return record


@transaction.atomic
def update_lead(*, lead: Lead, by: User) -> Lead:
    return _save_edit(lead, by=by)


@transaction.atomic
def update_deal(*, deal: Deal, by: User) -> Deal:
    return _save_edit(deal, by=by)


# --- Leads: lose and convert ----------------------------------------------------------


def lost_stage(pipeline: Pipeline) -> Stage:
    stage = pipeline.stages.filter(kind=StageKind.LOST).order_by("order", "id").first()
    if stage is None:
        raise ValidationError(_("The pipeline has no lost stage."))
    return stage


@transaction.atomic
def lose_lead(*, lead: Lead, by: User, reason: DictionaryItem | None, note: str = "") -> None:
    """A lead that goes nowhere: it needs a reason (reports count them)."""
    move_to_stage(
        record=lead, stage=lost_stage(lead.pipeline), by=by, lost_reason=reason, lost_note=note
    )


@dataclass
class Conversion:
    customer: Customer
    contact: Contact | None
    deal: Deal | None
    customer_created: bool


@transaction.atomic
def convert_lead(
    *,
    lead: Lead,
    by: User,
    customer: Customer,
    contact: Contact | None = None,
    deal: Deal | None = None,
) -> Conversion:
    """Turn a lead into a customer (new when `customer` is unsaved, else an existing one
    the user may change), optionally a contact and a deal; the lead becomes converted,
    links to what it produced, and its activities and tasks join the customer."""
    locked = _lock(lead)
    if not access.can(by, locked, "change"):
        raise PermissionDenied
    if locked.status != LeadStatus.OPEN:
        raise StageMoveRefused(_("Only an open lead can be converted."), code="closed")
    won = locked.pipeline.stages.filter(kind=StageKind.WON).order_by("order", "id").first()
    if won is None:
        raise ValidationError(_("The lead pipeline has no converted stage."))
    created = customer.pk is None
    if created:
        create_customer(customer=customer, by=by)
    elif not access.can(by, customer, "change"):
        raise PermissionDenied
    if contact is not None:
        contact.customer = customer
        create_contact(contact=contact, by=by)
    if deal is not None:
        deal.customer = customer
        deal.contact = contact if contact is not None else deal.contact
        if deal.owner_id is None:
            deal.owner = locked.owner or by
        create_deal(deal=deal, by=by)
    _move(
        locked,
        won,
        by=by,
        lost_reason=None,
        lost_note="",
        values=None,
        conversion=True,
        original=lead,
        kind=EventKind.CONVERTED,
        also={"converted_customer": customer, "converted_contact": contact, "converted_deal": deal},
    )
    lead.converted_customer, lead.converted_contact, lead.converted_deal = customer, contact, deal
    subject = {"subject_type": ContentType.objects.get_for_model(Lead), "subject_id": lead.pk}
    Activity.objects.filter(customer__isnull=True, **subject).update(customer=customer)
    Task.objects.filter(customer__isnull=True, **subject).update(customer=customer)

    def send():
        lead_converted.send(
            sender=Lead, lead=lead, customer=customer, contact=contact, deal=deal, by=by
        )

    transaction.on_commit(send, robust=True)
    return Conversion(customer=customer, contact=contact, deal=deal, customer_created=created)


# --- Owners -------------------------------------------------------------------------------


@transaction.atomic
def transfer_records(records: models.QuerySet, to: User, by: User) -> int:
    """Give leads or deals (of one type) to another owner, each with a history entry;
    the old owner's open tasks on a record move with it. Only records `by` may change
    are transferred; returns how many changed hands."""
    model = records.model
    record_type = model.record_type
    if not access.has_permission(by, record_type, "change"):
        raise PermissionDenied
    if model is Deal and to is None:
        raise ValidationError(_("A deal needs an owner."))
    editable = model.objects.editable_by(by).filter(pk__in=records.values("pk"))
    content_type = ContentType.objects.get_for_model(model)
    moved, changes = [], []
    for record in editable.select_for_update(of=("self",)).select_related("owner"):
        if record.owner_id == (to.pk if to else None):
            continue
        old_owner = record.owner
        record.owner = to
        record.save(update_fields=["owner", "updated_at"])
        moved.append(record)
        changes.append(
            Changes.one(
                "owner",
                old_owner,
                to,
                old_text=str(old_owner) if old_owner else "",
                new_text=str(to) if to else "",
            )
        )
        if old_owner is not None and to is not None:
            Task.objects.filter(
                subject_type=content_type,
                subject_id=record.pk,
                assignee=old_owner,
                status="open",
            ).update(assignee=to)
    # One insert for the events of the whole batch, handed on together after commit.
    record_changes(moved, by=by, kind=EventKind.TRANSFERRED, changes=changes)
    return len(moved)


# --- Claiming unassigned leads ------------------------------------------------------------


@transaction.atomic
def claim_leads(leads: models.QuerySet, *, by: User) -> list[Lead]:
    """Take unassigned leads: those of `leads` without an owner that `by` may see become
    `by`'s, each with a history entry and a `claimed` event. Returns the leads claimed;
    one another person claimed first, or that has an owner, is left as it is.

    Race-safe: the unowned rows are locked (FOR UPDATE) and PostgreSQL checks the
    condition again on each row it waited for, so of two people claiming at once one
    gets the lead and the other's claim leaves it out."""
    if not access.has_permission(by, "lead", "change"):
        raise PermissionDenied
    ids = list(
        Lead.objects.visible_to(by)
        .filter(pk__in=leads.values("pk"), owner__isnull=True)
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    claimed = list(
        Lead.objects.select_for_update(of=("self",))
        .filter(pk__in=ids, owner__isnull=True)
        .order_by("pk")
    )
    if not claimed:
        return []
    now = timezone.now()
    Lead.objects.filter(pk__in=[lead.pk for lead in claimed], owner__isnull=True).update(
        owner=by, updated_at=now
    )
    for lead in claimed:
        lead.owner, lead.updated_at = by, now
    record_changes(
        claimed,
        by=by,
        kind=EventKind.CLAIMED,
        changes=[Changes.one("owner", None, by, old_text="", new_text=str(by)) for _ in claimed],
    )
    return claimed


def claim_lead(*, lead: Lead, by: User) -> Lead:
    """Take one unassigned lead `by` may see; a ValidationError when it has an owner
    (someone may just have claimed it)."""
    claimed = claim_leads(Lead.objects.filter(pk=lead.pk), by=by)
    if not claimed:
        raise ValidationError(_("This lead already has an owner."), code="owned")
    return claimed[0]
