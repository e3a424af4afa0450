from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts import access
from accounts.models import DataScope

TEAM_LIMIT = 50


@login_required
def dashboard(request):
    """The signed-in user's start page: who they are, what they see, their team."""
    user = request.user
    team = (
        access.users_in_scope(user).exclude(pk=user.pk).order_by("department__sort_order", "name")
    )
    context = {
        "scope": DataScope(access.data_scope(user)),
        "team": team[:TEAM_LIMIT],
        "team_count": team.count(),
        "team_limit": TEAM_LIMIT,
    }
    return render(request, "crm/dashboard.html", context)


@never_cache
def healthz(request):
    """For load balancers and docker-compose: the web process answers and the DB too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
