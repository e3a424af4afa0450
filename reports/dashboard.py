"""The manager's headline figures on the dashboard (/), registered into crm's dashboard
cards (crm does not import reports): deals won this month, the weighted open pipeline
closing this month, open deals past their expected close date and the team's calls,
visits and meetings this week — each linking to the list or report behind it. Two
queries: one over the deals, one over the activities."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import DataScope
from crm import dashboard_cards
from crm.dashboard_cards import Card
from crm.money import format_money_compact
from pipelines.models import Deal, DealStatus
from pipelines.selectors import past_expected_close_q

from .base import list_url, money
from .library.activity import team_activity_total
from .library.forecast import WEIGHTED
from .periods import period_for


def is_manager(user) -> bool:
    """A manager sees a team (a data scope beyond their own records) and the deals."""
    return access.data_scope(user) != DataScope.OWN and access.has_permission(user, "deal", "view")


def deal_figures(user, month) -> dict:
    """One query over the deals the user sees."""
    today = timezone.localdate()
    won = Q(status=DealStatus.WON, closed_at__gte=month.start, closed_at__lt=month.end)
    closing = Q(
        status=DealStatus.OPEN,
        expected_close_date__gte=month.first,
        expected_close_date__lte=month.last,
    )
    figures = Deal.objects.visible_to(user).aggregate(
        won=Count("pk", filter=won),
        won_amount=Sum("amount", filter=won),
        closing=Count("pk", filter=closing),
        weighted=Sum(WEIGHTED, filter=closing),
        past=Count("pk", filter=past_expected_close_q(today)),
    )
    for key in ("won_amount", "weighted"):
        figures[key] = Decimal(figures[key] or 0).quantize(Decimal("0.01"))
    return figures


def _won_url(month) -> str:
    from pipelines.filters import DealFilter

    if "closed" in DealFilter.base_filters:
        return list_url("deals:list", status=DealStatus.WON, **month.list_params("closed"))
    return list_url("reports:report", slug="win-rate", period="month")


# The team's figures are a manager's (and an admin's, over the company): not a rep's,
# nor customer service's, who see every customer but sell nothing.
@dashboard_cards.register(roles=(dashboard_cards.MANAGER, dashboard_cards.ADMIN))
def team_cards(user) -> list[Card]:
    if not is_manager(user):
        return []
    month, week = period_for("month"), period_for("week")
    figures = deal_figures(user, month)
    amounts = "amount" not in access.hidden_fields(user, "deal")
    cards = [
        Card(
            "won",
            _("Deals won this month"),
            str(figures["won"]),
            url=_won_url(month),
            note=format_money_compact(figures["won_amount"]) if amounts else "",
            note_title=money(figures["won_amount"]) if amounts else "",
            icon="trophy",
        ),
    ]
    if amounts:
        cards.append(
            Card(
                "weighted",
                _("Weighted pipeline closing this month"),
                format_money_compact(figures["weighted"]),
                value_title=money(figures["weighted"]),
                url=reverse("reports:report", args=["forecast"]) + "?period=month",
                note=_("%(count)s open deals") % {"count": figures["closing"]},
                icon="target",
            )
        )
    cards.append(
        Card(
            "past",
            _("Open deals past their expected close"),
            str(figures["past"]),
            url=list_url("deals:list", closing="overdue"),
            icon="alert-triangle",
        )
    )
    if access.has_permission(user, "activity", "view"):
        cards.append(
            Card(
                "activities",
                _("Team calls, visits and meetings this week"),
                str(team_activity_total(user, week)),
                url=reverse("reports:report", args=["activity"]) + "?period=week",
                icon="activity",
            )
        )
    return cards
