"""The card of a customer's deals on the customer's page (crm.record_cards), named by the
deal spec (pipelines/record_types.py): crm shows it without knowing deals."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from accounts import access
from crm.models import Customer
from crm.money import format_money
from crm.record_cards import RecordCard

from .models import Deal

DEALS_LIMIT = 10


def customer_deals(user, customer: Customer) -> dict[str, Any] | None:
    """The customer's deals the user may see, open ones first, then the newest: one
    query. None (no card) for a role that may not view deals."""
    if not access.has_permission(user, "deal", "view"):
        return None
    deals = list(
        Deal.objects.visible_to(user)
        .filter(customer=customer)
        .select_related("stage")
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at", "-pk")[:DEALS_LIMIT]
    )
    for deal in deals:
        deal.amount_text = format_money(deal.amount)
    return {"deals": deals, "can_add": access.has_permission(user, "deal", "add")}


CUSTOMER_DEALS_CARD = RecordCard(
    key="deals",
    page="customer",
    template="pipelines/partials/customer_deals_card.html",
    build=customer_deals,
    order=40,
)
