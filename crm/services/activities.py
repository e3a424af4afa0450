"""Logging follow-ups (跟进记录) and the tasks they plan."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import User

from ..models import Activity, Contact, Customer, DictionaryItem, EventKind, Task
from .history import record_change


@transaction.atomic
def log_activity(
    *,
    customer: Customer | None,
    by: User,
    kind: DictionaryItem | None,
    content: str,
    occurred_at: datetime | None = None,
    contact: Contact | None = None,
    next_follow_up_at: datetime | None = None,
    subject: models.Model | None = None,
    author: User | None = None,
) -> Activity:
    """Record a follow-up on a customer (optionally with one of its contacts), or on a
    record of another app (`subject`: a lead, a deal) that belongs to `customer` or, like
    a lead not yet converted, to no customer.

    The customer's last activity moves forward; its next follow-up becomes the one
    planned here (a follow-up done without a new plan clears it), and a planned
    follow-up becomes a task for the owner of the subject, else of the customer (or the
    author, for the pool). `author`: who made the follow-up when it is not `by` (an
    import of an old CRM's history names each entry's rep).
    """
    if customer is None and subject is None:
        raise ValueError("log_activity needs a customer or a subject")
    if not access.has_permission(by, "activity", "add"):
        raise PermissionDenied
    if customer is not None and not access.can(by, customer, "view"):
        raise PermissionDenied
    if subject is not None and not access.can(by, subject, "view"):
        raise PermissionDenied
    if contact is not None and (customer is None or contact.customer_id != customer.pk):
        raise PermissionDenied
    if next_follow_up_at is not None and not access.has_permission(by, "task", "add"):
        raise PermissionDenied  # the planned follow-up would be a task
    activity = Activity(
        customer=customer,
        contact=contact,
        kind=kind,
        content=content,
        occurred_at=occurred_at or timezone.now(),
        author=author if author is not None else by,
        next_follow_up_at=next_follow_up_at,
    )
    if subject is not None:
        activity.subject = subject
    elif contact is not None:
        activity.subject = contact
    activity.full_clean()
    activity.save()
    # Its event: the follow-up shows in the timeline, not in the history tab.
    record_change(activity, by=by, kind=EventKind.ACTIVITY_LOGGED, in_history=False)
    if customer is not None:
        # A back-dated entry never moves last_activity_at backwards nor drops the plan.
        updates = {}
        if _is_latest(customer, activity):
            updates = {
                "last_activity_at": activity.occurred_at,
                "next_follow_up_at": next_follow_up_at,
            }
        elif next_follow_up_at is not None:
            updates = {"next_follow_up_at": next_follow_up_at}
        if updates:
            Customer.objects.filter(pk=customer.pk).update(**updates)
    if next_follow_up_at is not None:
        if subject is not None:
            name = str(subject)
            assignee = getattr(subject, "owner", None) or by
        else:
            name = customer.name
            assignee = customer.owner or by
        task = Task(
            title=(_("Follow up with %(name)s") % {"name": name})[:200],
            due_at=next_follow_up_at,
            assignee=assignee,
            customer=customer,
            activity=activity,
            created_by=by,
        )
        if subject is not None:
            task.subject = subject
        task.save()
        record_change(task, by=by, kind=EventKind.CREATED)
    if customer is not None:
        customer.refresh_from_db(fields=["last_activity_at", "next_follow_up_at"])
    return activity


def _is_latest(customer: Customer, activity: Activity) -> bool:
    return not Customer.objects.filter(
        Q(last_activity_at__gt=activity.occurred_at), pk=customer.pk
    ).exists()
