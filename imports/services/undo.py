"""Undoing an import: its new records removed, its updates given their previous values.

What the import wrote is read from its record events (crm.models.Change rows whose actor
is the import), the same rows its history shows: a "created" event is a record to
delete, an "updated" event holds each field's value before the import. A record changed
since by anyone else — its own later event, or for a customer a later entry in its
history (a contact added, a deal opened) — is a conflict: listed, and left alone unless
the user forces the undo. The undo is itself recorded: "deleted" and "updated" events by
the import's actor with a note, and the job's status, time and summary.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import access
from accounts.actors import ActorKind, acting, quiet
from accounts.models import User
from crm.models import Change, Customer, EventKind
from crm.services.history import diff, record_change, record_deletions, snapshot

from ..models import ImportJob, ImportStatus
from .engine import put_custom

logger = logging.getLogger(__name__)

CHUNK = 1000
NEW = (EventKind.CREATED, EventKind.ACTIVITY_LOGGED)


@dataclass
class Entry:
    model: type[models.Model]
    record_id: int
    event_id: int
    kind: str
    fields: dict[str, Any]


@dataclass
class UndoPlan:
    created: list[Entry] = field(default_factory=list)
    updated: list[Entry] = field(default_factory=list)
    conflicts: list[Entry] = field(default_factory=list)

    @property
    def conflict_ids(self) -> set[tuple[type, int]]:
        return {(e.model, e.record_id) for e in self.conflicts}


def may_undo(job: ImportJob, user) -> bool:
    """The importer (while she may still import the type) or an admin, once it is done."""
    if job.status not in (ImportStatus.DONE,) or job.created_count + job.updated_count == 0:
        return False
    if user.is_superuser:
        return True
    return job.created_by_id == user.pk and access.has_permission(user, job.record_type, "import")


def plan_undo(job: ImportJob) -> UndoPlan:
    """What an undo would do, and the records changed since the import (read only)."""
    events = (
        Change.objects.filter(actor_type=ActorKind.IMPORT, actor_id=job.pk)
        .exclude(kind=EventKind.DELETED)
        .order_by("id")
        .values_list("id", "record_type_id", "record_id", "kind", "fields")
    )
    entries: dict[tuple[int, int], Entry] = {}
    for event_id, type_id, record_id, kind, fields in events.iterator(chunk_size=5000):
        model = ContentType.objects.get_for_id(type_id).model_class()
        key = (type_id, record_id)
        if key in entries:
            # A record the import touched twice (created, then its follow-up's task...):
            # the first event says what it was before.
            continue
        entries[key] = Entry(model, record_id, event_id, kind, fields or {})
    plan = UndoPlan()
    if not entries:
        return plan
    first = min(e.event_id for e in entries.values())
    later: dict[tuple[int, int], int] = {}
    by_type: dict[int, list[int]] = defaultdict(list)
    for type_id, record_id in entries:
        by_type[type_id].append(record_id)
    others = Change.objects.filter(id__gt=first).exclude(
        actor_type=ActorKind.IMPORT, actor_id=job.pk
    )
    customer_type = ContentType.objects.get_for_model(Customer).pk
    for type_id, ids in by_type.items():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for record_id, event_id in others.filter(
                record_type_id=type_id, record_id__in=chunk
            ).values_list("record_id", "id"):
                key = (type_id, record_id)
                later[key] = max(later.get(key, 0), event_id)
            if type_id == customer_type:
                for record_id, event_id in others.filter(customer_id__in=chunk).values_list(
                    "customer_id", "id"
                ):
                    key = (type_id, record_id)
                    later[key] = max(later.get(key, 0), event_id)
    for key, entry in entries.items():
        if later.get(key, 0) > entry.event_id:
            plan.conflicts.append(entry)
        elif entry.kind in NEW:
            plan.created.append(entry)
        else:
            plan.updated.append(entry)
    return plan


def request_undo(job: ImportJob, *, by, force: bool = False) -> bool:
    """Undo in the background (an import of a hundred thousand rows takes a while to
    take back): the job shows "undoing" until a worker has done it (`run_undo`)."""
    from .. import tasks

    if not may_undo(job, by):
        raise PermissionDenied
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DONE).update(
        status=ImportStatus.UNDOING,
        undo_summary={"requested_by": by.pk, "force": force},
        heartbeat_at=timezone.now(),
        language=translation.get_language() or job.language,
    )
    if claimed:
        transaction.on_commit(lambda: tasks.undo_import.delay(job.pk))
    return bool(claimed)


def run_undo(job_id: int) -> None:
    """The worker's part of `request_undo`: one transaction, so a worker that dies leaves
    the import as it was, still "undoing", and the periodic resume sends it again."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status != ImportStatus.UNDOING:
        return
    asked = job.undo_summary or {}
    by = User.objects.filter(pk=asked.get("requested_by")).first() or job.created_by
    language = job.language or by.language or settings.LANGUAGE_CODE
    with translation.override(language):
        try:
            summary = _undo(job, by=by, force=bool(asked.get("force")))
        except Exception:
            logger.exception("undo of import %s failed", job.pk)
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportStatus.DONE,
                heartbeat_at=None,
                message=_("The undo stopped on an unexpected error; nothing was undone."),
            )
            return
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.UNDONE,
        undone_at=timezone.now(),
        undone_by=by,
        undo_summary=summary,
        heartbeat_at=None,
    )


def undo(job: ImportJob, *, by, force: bool = False) -> dict[str, Any]:
    """Undo the import (records changed since stay as they are unless `force`)."""
    if not may_undo(job, by):
        raise PermissionDenied
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DONE).update(
        status=ImportStatus.UNDOING
    )
    if not claimed:
        raise PermissionDenied
    try:
        summary = _undo(job, by=by, force=force)
    except Exception:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.DONE)
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.UNDONE, undone_at=timezone.now(), undone_by=by, undo_summary=summary
    )
    job.refresh_from_db()
    return summary


def _undo(job: ImportJob, *, by, force: bool) -> dict[str, Any]:
    plan = plan_undo(job)
    actor = acting(by, kind=ActorKind.IMPORT, id=job.pk, name=job.file_name[:200])
    if not job.run_automation:
        # The undo is as quiet as the import was: its events fire no rules.
        actor = quiet(actor)
    note = _("Undo of import #%(id)s") % {"id": job.pk}
    created = plan.created + ([e for e in plan.conflicts if e.kind in NEW] if force else [])
    updated = plan.updated + ([e for e in plan.conflicts if e.kind not in NEW] if force else [])
    left = [] if force else plan.conflicts
    deleted = restored = 0
    kept: list[Entry] = list(left)
    with transaction.atomic():
        for entry in updated:
            if _restore(entry, actor, note):
                restored += 1
        by_model: dict[type, list[int]] = defaultdict(list)
        for entry in created:
            by_model[entry.model].append(entry.record_id)
        # Follow-ups and tasks before contacts before customers: dependants go first.
        for model in sorted(by_model, key=lambda m: m is Customer):
            ids = by_model[model]
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                count, refused = _delete(model, chunk, actor, note)
                deleted += count
                kept += [e for e in created if e.model is model and e.record_id in refused]
    return {
        "deleted": deleted,
        "restored": restored,
        "forced": force,
        "conflicts": describe(kept[:500]),
        "conflict_count": len(kept),
    }


def _delete(model: type[models.Model], ids: list[int], actor, note: str) -> tuple[int, set[int]]:
    """Delete records (with their "deleted" events); the ids the database protects (a
    deal now points at the customer) are kept and returned."""
    records = list(model.objects.filter(pk__in=ids))
    try:
        with transaction.atomic():
            record_deletions(records, by=actor, note=note)
            model.objects.filter(pk__in=[r.pk for r in records]).delete()
        return len(records), set()
    except ProtectedError:
        pass
    count, refused = 0, set()
    for record in records:
        try:
            with transaction.atomic():
                record_deletions([record], by=actor, note=note)
                model.objects.filter(pk=record.pk).delete()
            count += 1
        except ProtectedError:
            refused.add(record.pk)
    return count, refused


def _restore(entry: Entry, actor, note: str) -> bool:
    """Put back the values an update of the import replaced."""
    record = entry.model.objects.filter(pk=entry.record_id).first()
    if record is None:
        return False
    before = snapshot(record)
    custom = dict(getattr(record, "custom", None) or {})
    tags = None
    for name, (old, _new) in entry.fields.items():
        if name.startswith("cf_"):
            put_custom(custom, name, old)
            continue
        try:
            model_field = record._meta.get_field(name)
        except FieldDoesNotExist:  # a field removed since: nothing to put back
            continue
        if model_field.many_to_many:
            tags = old or []
            continue
        value = old if old is None else model_field.to_python(old)
        setattr(record, model_field.attname, value)
    if hasattr(record, "custom"):
        record.custom = custom
    record.save()
    if tags is not None:
        record.tags.set(tags)
    record_change(record, by=actor, changes=diff(before, snapshot(record)), note=note)
    return True


def describe(entries: list[Entry]) -> list[dict[str, Any]]:
    """What the page and the summary list of each entry's record (one query per type)."""
    by_model: dict[type, list[int]] = defaultdict(list)
    for entry in entries:
        by_model[entry.model].append(entry.record_id)
    found = {model: model.objects.in_bulk(ids) for model, ids in by_model.items()}
    described = []
    for entry in entries:
        record = found[entry.model].get(entry.record_id)
        described.append(
            {
                "type": entry.model._meta.model_name,
                "id": entry.record_id,
                "label": str(record) if record is not None else "",
                "created": entry.kind in NEW,
            }
        )
    return described
