"""Tasks (待办): create, edit, complete (a follow-up with how it went), reopen."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import User

from .. import bulk
from ..models import Activity, Contact, Customer, DictionaryItem, EventKind, Task, TaskStatus
from .activities import log_activity
from .history import Changes, diff, record_change, record_changes, snapshot


def create_task(*, task: Task, by: User) -> Task:
    # In a unit of work that inserts its rows at its end (crm.bulk.deferring: a worker's
    # message of events), nothing is written here, so no savepoint is taken.
    with transaction.atomic(savepoint=not bulk.is_deferring()):
        return _create_task(task, by)


def _create_task(task: Task, by: User) -> Task:
    if not access.has_permission(by, "task", "add"):
        raise PermissionDenied
    if task.customer_id and not access.can(by, task.customer, "view"):
        raise PermissionDenied
    if not access.user_in_scope(by, task.assignee):
        raise PermissionDenied
    task.created_by = by
    task.full_clean(exclude=loaded_relations(task))
    # In a worker's message of events (rules making tasks), inserted with the message's
    # other tasks; it has its id now.
    if not bulk.defer(task, pk=True):
        task.save()
    record_change(task, by=by, kind=EventKind.CREATED)
    return task


def loaded_relations(instance) -> list[str]:
    """The foreign keys whose row was handed over loaded (a saved instance, with no
    `limit_choices_to` to check): `full_clean` need not query that it exists (the
    database's key checks it again when the transaction commits). A rule making a
    task hands over the assignee, customer and creator it has just read."""
    names = []
    for field in instance._meta.concrete_fields:
        if not field.many_to_one or field.remote_field.limit_choices_to:
            continue
        related = instance._state.fields_cache.get(field.name)
        if (
            related is not None
            and related.pk is not None
            and not related._state.adding
            and related.pk == getattr(instance, field.attname)
        ):
            names.append(field.name)
    return names


@transaction.atomic
def update_task(*, task: Task, by: User) -> Task:
    stored = Task.objects.select_related("assignee", "customer").get(pk=task.pk)
    if not access.can(by, stored, "change"):
        raise PermissionDenied
    if task.assignee_id != stored.assignee_id and not (
        access.users_in_scope(by).filter(pk=task.assignee_id).exists()
    ):
        raise PermissionDenied
    before = snapshot(stored)
    task.full_clean()
    task.save()
    record_change(task, by=by, changes=diff(before, snapshot(task, like=stored)))
    return task


@transaction.atomic
def complete_task(*, task: Task, by: User) -> Task:
    """Mark a task done. Completing a planned follow-up clears the customer's plan."""
    if not access.can(by, task, "change"):
        raise PermissionDenied
    now = timezone.now()
    done = Task.objects.filter(pk=task.pk, status=TaskStatus.OPEN).update(
        status=TaskStatus.DONE, completed_at=now
    )
    task.refresh_from_db()
    if done:
        if task.activity_id and task.customer_id and task.due_at:
            Customer.objects.filter(pk=task.customer_id, next_follow_up_at=task.due_at).update(
                next_follow_up_at=None
            )
        _record_status(task, by=by, old=TaskStatus.OPEN, kind=EventKind.TASK_COMPLETED)
    return task


@transaction.atomic
def reopen_task(*, task: Task, by: User) -> Task:
    if not access.can(by, task, "change"):
        raise PermissionDenied
    reopened = (
        Task.objects.filter(pk=task.pk)
        .exclude(status=TaskStatus.OPEN)
        .update(status=TaskStatus.OPEN, completed_at=None)
    )
    task.refresh_from_db()
    if reopened:
        # Undoing a planned follow-up puts the plan back on the customer (unless a newer
        # plan has been made since).
        if task.activity_id and task.customer_id and task.due_at:
            Customer.objects.filter(pk=task.customer_id, next_follow_up_at__isnull=True).update(
                next_follow_up_at=task.due_at
            )
        _record_status(task, by=by, old=TaskStatus.DONE, kind=EventKind.TASK_REOPENED)
    return task


def _record_status(task: Task, *, by: User, old: TaskStatus, kind: str) -> None:
    change = Changes.one(
        "status",
        old.value,
        task.status,
        old_text=str(old.label),
        new_text=task.get_status_display(),
    )
    record_change(task, by=by, kind=kind, changes=change)


@transaction.atomic
def complete_tasks(*, tasks: QuerySet[Task], by: User) -> int:
    """Complete the open tasks among `tasks` that the user may change; returns how many."""
    rows = tasks.editable_by(by).filter(status=TaskStatus.OPEN).select_related("customer")
    return sum(1 for task in rows if complete_task(task=task, by=by).status == TaskStatus.DONE)


@transaction.atomic
def reassign_tasks(*, tasks: QuerySet[Task], to: User, by: User) -> int:
    """Give tasks to another person in the user's scope; returns how many moved."""
    if not access.users_in_scope(by).filter(pk=to.pk).exists():
        raise PermissionDenied
    rows = list(tasks.editable_by(by).exclude(assignee=to).select_related("assignee", "customer"))
    if not rows:
        return 0
    Task.objects.filter(pk__in=[t.pk for t in rows]).update(assignee=to)
    record_changes(
        rows,
        by=by,
        kind=EventKind.TASK_REASSIGNED,
        changes=[
            Changes.one(
                "assignee", t.assignee_id, to.pk, old_text=str(t.assignee), new_text=str(to)
            )
            for t in rows
        ],
    )
    return len(rows)


# --- Follow-up tasks: completing one says how it went -------------------------------------


def is_follow_up(task: Task) -> bool:
    """A follow-up task is one about a customer, or a record of another app (a lead, a
    deal) or a contact: completing it may log how it went (an activity) there. Tasks a
    follow-up planned (`task.activity`) are the usual ones; a rule's "跟进" task on a deal
    or a task someone set on a customer are follow-ups too."""
    return task.customer_id is not None or task.subject_id is not None


@transaction.atomic
def complete_follow_up(
    *,
    task: Task,
    by: User,
    kind: DictionaryItem | None,
    content: str,
    next_follow_up_at: datetime | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Complete a follow-up task and log how it went, in one transaction: the task is done
    (if it was still open: ticking it may have done that already), the outcome is logged
    as an activity on what the task is about (its contact, its lead or deal, its
    customer) and a planned next follow-up becomes the next task — through
    `complete_task` and `log_activity`, so their checks, history and events hold. Any
    refusal leaves the task as it was."""
    if not access.can(by, task, "change"):
        raise PermissionDenied
    if not is_follow_up(task):
        raise ValidationError(_("This task is not about a customer or a record."))
    if task.status == TaskStatus.CANCELLED:
        raise ValidationError(_("A cancelled task cannot be completed."))
    task = complete_task(task=task, by=by)
    customer = task.customer
    subject = task.subject if task.subject_id else None
    contact = None
    if isinstance(subject, Contact):
        contact, subject = subject, None
        customer = customer or contact.customer
    elif isinstance(subject, Customer):
        customer, subject = customer or subject, None
    if customer is None and subject is None:
        # What the task was about has been deleted since.
        raise ValidationError(_("What this task was about no longer exists."))
    return log_activity(
        customer=customer,
        by=by,
        kind=kind,
        content=content,
        occurred_at=occurred_at,
        contact=contact,
        subject=subject,
        next_follow_up_at=next_follow_up_at,
    )
