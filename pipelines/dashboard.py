"""Pipelines' panels on the start page (/), registered into crm.dashboard_cards from
PipelinesConfig.ready(): a rep's open deals closing soon (or already past their expected
close) and their newest open leads; a manager's team deals closing soon."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts import access
from crm.dashboard_cards import MANAGER, REP, Panel, home_role, register_panel
from crm.money import money_html

from .models import Deal, DealStatus, Lead, LeadStatus

# "Closing soon": an expected close within this many days, or already past.
CLOSING_DAYS = 30
DEAL_LIMIT = 8
LEAD_LIMIT = 6


def closing_deals_context(request) -> dict | None:
    user = request.user
    today = timezone.localdate()
    team = home_role(user) == MANAGER
    deals = Deal.objects.visible_to(user).filter(
        status=DealStatus.OPEN, expected_close_date__lte=today + timedelta(days=CLOSING_DAYS)
    )
    if not team:
        deals = deals.filter(owner=user)
    deals = deals.select_related("customer", "stage", "owner").order_by("expected_close_date", "pk")
    rows = list(deals[: DEAL_LIMIT + 1])
    count = len(rows) if len(rows) <= DEAL_LIMIT else deals.count()
    hidden = access.hidden_fields(user, "deal")
    for deal in rows:
        deal.past_close = deal.expected_close_date < today
        deal.amount_html = "" if "amount" in hidden else money_html(deal.amount)
    return {
        "deals": rows[:DEAL_LIMIT],
        "deal_count": count,
        "team": team,
        "closing_days": CLOSING_DAYS,
        "list_query": ("" if team else "owner=me&") + "status=open&sort=expected_close",
    }


def recent_leads_context(request) -> dict | None:
    user = request.user
    leads = (
        Lead.objects.visible_to(user)
        .filter(Q(owner=user), status=LeadStatus.OPEN)
        .select_related("stage", "source")
        .order_by("-created_at", "-pk")
    )
    rows = list(leads[: LEAD_LIMIT + 1])
    count = len(rows) if len(rows) <= LEAD_LIMIT else leads.count()
    return {"leads": rows[:LEAD_LIMIT], "lead_count": count}


def register_panels() -> None:
    register_panel(
        Panel(
            "closing-deals",
            "pipelines/dashboard/closing_deals.html",
            closing_deals_context,
            roles=(REP, MANAGER),
            permission="deal.view",
            order=20,
        )
    )
    register_panel(
        Panel(
            "recent-leads",
            "pipelines/dashboard/recent_leads.html",
            recent_leads_context,
            roles=(REP,),
            permission="lead.view",
            order=30,
        )
    )
