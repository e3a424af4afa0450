"""crm's own panels of the start page (/), registered into crm.dashboard_cards with the
home roles they suit (higher apps add theirs, e.g. pipelines' deals and leads):

- today's tasks and the overdue ones: for reps, managers and admins (an admin's only
  when there are some); a task appears in exactly one of them;
- the team: one row per person in the manager's (admin's) scope with their customers,
  tasks due today, overdue tasks and activities this week;
- for customer service: the search, and the service team's latest activities;
- for an admin: where the configuration is.

Customers whose next follow-up is due are not listed: each follow-up is a task (logging
an activity with a next follow-up plans one), already in Today or Overdue.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from accounts import access

from .. import selectors
from ..dashboard_cards import ADMIN, MANAGER, REP, SERVICE, Panel, home_role, register_panel
from ..models import Activity, Customer, Task, TaskStatus

# Each panel lists at most this many rows; its header shows the full count.
CARD_LIMIT = 20
# The Today panel also lists the first tasks due in the coming days.
COMING_UP_DAYS = 7
COMING_UP_LIMIT = 5
TEAM_LIMIT = 50
SERVICE_ACTIVITY_LIMIT = 10


def _now(request):
    # One moment per request, so that a task is either today's or overdue, never both.
    if not hasattr(request, "_home_now"):
        request._home_now = timezone.now()
    return request._home_now


def _counts(request) -> dict[str, int]:
    # Both cards show the two counts: one query per request.
    if not hasattr(request, "_home_task_counts"):
        request._home_task_counts = selectors.task_counts(request.user, now=_now(request))
    return request._home_task_counts


def today_context(request) -> dict | None:
    user, now = request.user, _now(request)
    counts = _counts(request)
    tasks = list(selectors.tasks_due_later_today(user, now=now)[:CARD_LIMIT])
    coming = list(selectors.tasks_coming_up(user, now=now, days=COMING_UP_DAYS)[:COMING_UP_LIMIT])
    if home_role(user) == ADMIN and not (counts["today"] or counts["overdue"] or coming):
        return None
    return {
        "today_count": counts["today"],
        "overdue_count": counts["overdue"],
        "today_tasks": tasks,
        "coming_up_tasks": coming,
        "coming_up_days": COMING_UP_DAYS,
        "card_limit": CARD_LIMIT,
        "can_change_tasks": access.has_permission(user, "task", "change"),
    }


def overdue_context(request) -> dict | None:
    user, now = request.user, _now(request)
    counts = _counts(request)
    if home_role(user) == ADMIN and not (counts["today"] or counts["overdue"]):
        return None
    return {
        "today_count": counts["today"],
        "overdue_count": counts["overdue"],
        "overdue_tasks": list(selectors.overdue_tasks(user, now=now)[:CARD_LIMIT]),
        "can_change_tasks": access.has_permission(user, "task", "change"),
    }


def team_rows(user, *, now=None) -> list:
    """The people in the user's scope (the user among them), each with `customers`,
    `due_today`, `overdue` and `activities` (this week): four queries."""
    now = now or timezone.now()
    people = list(
        access.users_in_scope(user)
        .filter(is_active=True)
        .select_related("department")
        .order_by("department__sort_order", "name", "pk")[:TEAM_LIMIT]
    )
    ids = [p.pk for p in people]
    tasks = {
        row["assignee"]: row
        for row in Task.objects.filter(assignee__in=ids, status=TaskStatus.OPEN)
        .values("assignee")
        .annotate(
            overdue=Count("pk", filter=selectors.overdue_q(now=now)),
            due_today=Count("pk", filter=selectors.due_later_today_q(now=now)),
        )
    }
    customers = dict(
        Customer.objects.filter(owner__in=ids)
        .values("owner")
        .annotate(n=Count("pk"))
        .values_list("owner", "n")
    )
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = today - timedelta(days=today.weekday())
    activities = dict(
        Activity.objects.filter(author__in=ids, occurred_at__gte=week_start, occurred_at__lt=now)
        .values("author")
        .annotate(n=Count("pk"))
        .values_list("author", "n")
    )
    for person in people:
        person.overdue = tasks.get(person.pk, {}).get("overdue", 0)
        person.due_today = tasks.get(person.pk, {}).get("due_today", 0)
        person.customer_count = customers.get(person.pk, 0)
        person.activity_count = activities.get(person.pk, 0)
    return people


def team_context(request) -> dict | None:
    user = request.user
    people = team_rows(user, now=_now(request))
    if len(people) <= 1:
        return None
    return {
        "people": people,
        "people_count": access.users_in_scope(user).filter(is_active=True).count(),
        "team_limit": TEAM_LIMIT,
        "team_overdue": sum(p.overdue for p in people),
    }


def search_context(request) -> dict | None:
    return {
        "can_view_contacts": access.has_permission(request.user, "contact", "view"),
    }


def service_activity_context(request) -> dict | None:
    """The latest activities logged by the user's department (customer service), or by
    the user alone when they have none; each with its customer."""
    user = request.user
    mine = Q(author=user)
    if user.department_id:
        mine |= Q(author__department_id=user.department_id)
    recent = (
        Activity.objects.visible_to(user)
        .filter(mine)
        .select_related("customer", "kind", "author", "contact")
        .order_by("-occurred_at", "-pk")
    )
    rows = list(recent[:SERVICE_ACTIVITY_LIMIT])
    since = timezone.now() - timedelta(days=7)
    return {
        "activities": rows,
        "week_count": recent.filter(occurred_at__gte=since).count(),
        "can_add_activity": access.has_permission(user, "activity", "add"),
    }


def admin_context(request) -> dict | None:
    return {}


register_panel(
    Panel(
        "today",
        "crm/dashboard/today.html",
        today_context,
        roles=(REP, MANAGER, ADMIN),
        permission="task.view",
        order=10,
    )
)
register_panel(
    Panel(
        "overdue",
        "crm/dashboard/overdue.html",
        overdue_context,
        roles=(REP, MANAGER, ADMIN),
        permission="task.view",
        order=11,
    )
)
register_panel(
    Panel(
        "search",
        "crm/dashboard/search.html",
        search_context,
        roles=(SERVICE,),
        order=5,
        wide=True,
    )
)
register_panel(
    Panel(
        "service-activity",
        "crm/dashboard/service_activity.html",
        service_activity_context,
        roles=(SERVICE,),
        permission="activity.view",
        order=20,
        wide=True,
    )
)
register_panel(
    Panel(
        "team",
        "crm/dashboard/team.html",
        team_context,
        roles=(MANAGER, ADMIN),
        permission="customer.view",
        order=40,
        wide=True,
    )
)
register_panel(Panel("setup", "crm/dashboard/setup.html", admin_context, roles=(ADMIN,), order=50))
