"""Tasks (待办): create, edit, complete, reopen."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.models import User

from ..models import Customer, EventKind, Task, TaskStatus
from .history import Changes, diff, record_change, record_changes, snapshot


@transaction.atomic
def create_task(*, task: Task, by: User) -> Task:
    if not access.has_permission(by, "task", "add"):
        raise PermissionDenied
    if task.customer_id and not access.can(by, task.customer, "view"):
        raise PermissionDenied
    if not access.users_in_scope(by).filter(pk=task.assignee_id).exists():
        raise PermissionDenied
    task.created_by = by
    task.full_clean()
    task.save()
    record_change(task, by=by, kind=EventKind.CREATED)
    return task


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
