"""The start page (/): the signed-in user's work first — tasks due today, overdue tasks,
customers to follow up — then their account, and for managers the team's overdue tasks."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from accounts import access
from accounts.models import DataScope

from .. import dashboard_cards, selectors
from ..params import BadParameter

TEAM_LIMIT = 50
# Each card lists at most this many rows; its header shows the full count.
CARD_LIMIT = 20
# The Today card also lists the first tasks due in the coming days.
COMING_UP_DAYS = 7
COMING_UP_LIMIT = 5
TEAM_OVERDUE_LIMIT = 10


def task_counts(user, now=None) -> dict:
    """How many of the user's open tasks are due later today and how many are overdue
    (due before now): one query."""
    counts = selectors.task_counts(user, now=now)
    return {"today_count": counts["today"], "overdue_count": counts["overdue"]}


def follow_ups(user) -> dict:
    """Customers the user owns whose next follow-up is due by the end of today."""
    due = selectors.follow_ups_due(user)
    rows = list(due[: CARD_LIMIT + 1])
    count = len(rows) if len(rows) <= CARD_LIMIT else due.count()
    return {"follow_ups": rows[:CARD_LIMIT], "follow_up_count": count, "now": timezone.now()}


def my_work(user) -> dict:
    now = timezone.now()
    return {
        **task_counts(user, now),
        "today_tasks": list(selectors.tasks_due_later_today(user, now=now)[:CARD_LIMIT]),
        "overdue_tasks": list(selectors.overdue_tasks(user, now=now)[:CARD_LIMIT]),
        "coming_up_tasks": list(
            selectors.tasks_coming_up(user, now=now, days=COMING_UP_DAYS)[:COMING_UP_LIMIT]
        ),
        "coming_up_days": COMING_UP_DAYS,
        **follow_ups(user),
        "card_limit": CARD_LIMIT,
    }


def team_overdue(user) -> list:
    """People in a manager's scope with their number of overdue open tasks: one query."""
    return list(selectors.team_overdue(user)[:TEAM_OVERDUE_LIMIT])


@login_required
def dashboard(request):
    """The signed-in user's start page: their work, who they are, what they see."""
    user = request.user
    scope = DataScope(access.data_scope(user))
    team = (
        access.users_in_scope(user).exclude(pk=user.pk).order_by("department__sort_order", "name")
    )
    can_view_tasks = access.has_permission(user, "task", "view")
    is_manager = scope != DataScope.OWN and can_view_tasks
    context = {
        "scope": scope,
        "team": team[:TEAM_LIMIT],
        "team_count": team.count(),
        "team_limit": TEAM_LIMIT,
        "can_view_tasks": can_view_tasks,
        "can_add_task": access.has_permission(user, "task", "add"),
        "can_change_tasks": access.has_permission(user, "task", "change"),
        "can_view_customers": access.has_permission(user, "customer", "view"),
        "is_manager": is_manager,
        "team_overdue": team_overdue(user) if is_manager else [],
        # Headline figures other apps add (reports: the team's deals and activities).
        "cards": dashboard_cards.cards_for(user),
        **my_work(user),
    }
    return render(request, "crm/dashboard.html", context)


@never_cache
def healthz(request):
    """For load balancers and docker-compose: the web process answers and the DB too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def bad_request(request, exception):
    """The 400 page, in the user's language, with what was wrong when we know it (a
    parameter crm.params refused); Django's own 400s get the general text."""
    message = str(exception) if isinstance(exception, BadParameter) else ""
    return render(request, "400.html", {"message": message}, status=400)
