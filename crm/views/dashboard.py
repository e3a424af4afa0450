"""The start page (/): the signed-in person's work, which depends on what they do here
(crm.dashboard_cards.home_role): a rep's today, overdue, deals closing soon and recent
leads; a manager's team figures and team; customer service's search and recent service
activity; an admin's company figures and configuration. Figures and panels come from
crm.dashboard_cards, where each declares the roles it suits (crm's own panels in
dashboard_panels, pipelines' and reports' from their apps). Nothing is listed twice."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts import access

from .. import dashboard_cards, selectors
from ..params import BadParameter
from . import dashboard_panels  # noqa: F401 - registers crm's panels


def task_counts(user, now=None) -> dict:
    """How many of the user's open tasks are due later today and how many are overdue
    (due before now): one query. (The task views send them back to the page's badges.)"""
    counts = selectors.task_counts(user, now=now)
    return {"today_count": counts["today"], "overdue_count": counts["overdue"]}


@login_required
def dashboard(request):
    """The signed-in user's home: figures, then panels, those their role is for."""
    user = request.user
    role = dashboard_cards.home_role(user)
    # Rendered by the page ({% dashboard_panel %}): the context processors run once, not
    # once a panel.
    panels = dashboard_cards.panels_for(request, role)
    context = {
        "home_role": role,
        "cards": dashboard_cards.cards_for(user, role),
        "panels": [p for p in panels if not p.panel.wide],
        "wide_panels": [p for p in panels if p.panel.wide],
        "panel_keys": [p.panel.key for p in panels],
        "can_add_task": access.has_permission(user, "task", "add"),
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
