"""An API list page costs no more queries than the type's HTML list page: the rows' owner,
stage and customer come with them, dictionary items from the request's one load, tags
in one prefetch — and the count does not grow with the rows (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import DataScope

from .api_support import TYPES
from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TagFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    item,
)

PAGES = {
    "customer": ("customers", "customers:list"),
    "contact": ("contacts", "contacts:list"),
    "activity": ("activities", "activities:list"),
    "task": ("tasks", "tasks:list"),
    "lead": ("leads", "leads:list"),
    "deal": ("deals", "deals:list"),
}


def make_rows(record_type: str, user, count: int) -> None:
    tag = TagFactory(name="华东")
    for _ in range(count):
        if record_type == "customer":
            CustomerFactory(owner=user, level=item("customer_level", "a"), tags=[tag])
        elif record_type == "contact":
            ContactFactory(customer=CustomerFactory(owner=user))
        elif record_type == "activity":
            ActivityFactory(
                customer=CustomerFactory(owner=user), kind=item("activity_kind", "call")
            )
        elif record_type == "task":
            TaskFactory(assignee=user, customer=CustomerFactory(owner=user))
        elif record_type == "lead":
            LeadFactory(owner=user, source=item("lead_source", "website_form"))
        else:
            DealFactory(owner=user)


def queries(client, path, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params or {})
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("record_type", TYPES)
def test_an_api_list_page_reads_no_more_than_the_html_list(org, record_type):
    user = org.set_scope(
        org.owner, DataScope.ALL, crm_permissions(("view", "add", "change"), types=TYPES)
    )
    if record_type in ("customer", "contact", "lead", "deal"):
        custom_field("budget", "money", record_type=record_type)
    api_path, page = PAGES[record_type]
    client = APIClient()
    client.force_login(user)
    make_rows(record_type, user, 5)
    client.get(f"/api/v1/{api_path}/")  # the custom fields' definitions, cached from then on
    few = queries(client, f"/api/v1/{api_path}/")
    make_rows(record_type, user, 25)
    many = queries(client, f"/api/v1/{api_path}/")
    html = queries(client, reverse(page), {"status": "open"} if record_type == "lead" else None)
    assert many == few, "an API list's query count grows with its rows"
    assert many <= html, (many, html)
