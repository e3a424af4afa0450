"""crm's pages show what the higher apps register — menu entries, cards on a customer's
page — without crm naming pipelines or reports. These pin the pages as they were when
crm still named them: the menu of each demo role (labels, links, order) and the deal
card of a customer's page (its rows, amounts, links and the add button) read the same."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.test.html import parse_html
from django.urls import reverse
from django.utils import translation

from accounts.demo import seed_organisation
from accounts.models import DataScope, User
from crm.navigation import navigation
from crm.templatetags.crm_ui import icon

from .factories import (
    CustomerFactory,
    DealFactory,
    RoleFactory,
    UserFactory,
    crm_permissions,
    stage,
)

# The menu before the registries (imports came later, for who may import): (label, URL)
# per demo user, in order.
FULL_MENU = [
    ("Dashboard", "/"),
    ("Customers", "/customers/"),
    ("Contacts", "/contacts/"),
    ("Leads", "/leads/"),
    ("Deals", "/deals/"),
    ("Board", "/pipelines/"),
    ("Tasks", "/tasks/"),
    ("Reports", "/reports/"),
]
MENUS = {
    "admin": [*FULL_MENU, ("Imports", "/imports/"), ("Administration", "/admin/")],
    "zhangwei": [*FULL_MENU, ("Imports", "/imports/")],
    "wangfang": FULL_MENU,
    "zhaomin": FULL_MENU,
}


def menu(user, path="/") -> list[tuple[str, str]]:
    request = RequestFactory().get(path)
    request.user = user
    with translation.override("en"):
        return [(str(item["label"]), item["url"]) for item in navigation(request)["nav_items"]]


@pytest.mark.django_db
def test_each_demo_role_has_the_menu_it_had():
    seed_organisation()
    for username, expected in MENUS.items():
        assert menu(User.objects.get(username=username)) == expected, username


@pytest.mark.django_db
def test_each_entry_shows_only_with_its_permission():
    role = RoleFactory(
        name="只看客户和商机", data_scope=DataScope.OWN, permissions=["customer.view", "deal.view"]
    )
    role_user = UserFactory(username="partial", role=role)
    assert menu(role_user) == [
        ("Dashboard", "/"),
        ("Customers", "/customers/"),
        ("Deals", "/deals/"),
        ("Board", "/pipelines/"),
        ("Reports", "/reports/"),
    ]
    no_role = UserFactory(username="norole", role=None)
    assert menu(no_role) == [("Dashboard", "/")]


@pytest.mark.django_db
def test_the_entry_of_the_page_shown_is_active():
    seed_organisation()
    request = RequestFactory().get("/deals/12/")
    request.user = User.objects.get(username="wangfang")
    active = [item["url"] for item in navigation(request)["nav_items"] if item["active"]]
    assert active == ["/deals/"]


def test_anonymous_visitors_get_no_menu(db):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert navigation(request)["nav_items"] == []


# --- The deal card on a customer's page ---------------------------------------------------

DEAL_TYPES = ("customer", "contact", "activity", "task", "deal")


@pytest.fixture
def seller(org):
    user = org.set_scope(
        org.owner,
        DataScope.OWN,
        crm_permissions(("view", "add", "change"), types=DEAL_TYPES),
    )
    user.language = "en"
    user.save(update_fields=["language"])
    return user


@pytest.fixture
def customer_with_deals(seller):
    customer = CustomerFactory(owner=seller, name="上海恒信机械设备有限公司")
    won = DealFactory(
        owner=seller,
        customer=customer,
        title="年度框架协议",
        stage=stage("零售", "赢单"),
        amount=Decimal("1280000.50"),
        expected_close_date=date(2025, 3, 31),
    )
    open_deal = DealFactory(
        owner=seller,
        customer=customer,
        title="数控机床采购",
        stage=stage("零售", "报价"),
        amount=Decimal("356000"),
        expected_close_date=date(2026, 6, 30),
    )
    bare = DealFactory(owner=seller, customer=customer, title="备件", amount=Decimal("0"))
    return customer, [open_deal, bare, won]


def deal_card(client, customer) -> str:
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    start = html.find('<div class="card" data-testid="deals-card">')
    assert start != -1, "no deal card"
    # The card ends where its column does: the next column of the page.
    end = html.index('<div class="col-lg-8">', start)
    fragment = html[start:end].rstrip()
    # Up to the card's own closing tags (the column's and the row's follow).
    for _closing in range(3):
        fragment = fragment[: fragment.rstrip().rfind("</div>")]
    return fragment.rstrip()


def expected_card(customer, deals, *, add: bool, amounts: bool = True) -> str:
    """The card as crm's customer page rendered it before the registry."""
    open_deal, bare, won = deals
    add_html = (
        f'<a href="/deals/new/?customer={customer.pk}" class="btn btn-sm" data-testid="add-deal">'
        f"{icon('plus')}Add</a>"
        if add
        else '<span class="badge bg-secondary-lt">3</span>'
    )

    def amount(text: str) -> str:
        return f'<div class="small text-secondary">{text}</div>' if amounts else ""

    rows = [
        # Open ones first, the newest first; then the closed ones.
        (bare, "Interest", "azure", amount("¥0.00")),
        (open_deal, "Quotation", "purple", amount("¥356,000.00 · 2026-06-30")),
        (won, "Won", "green", amount("¥1,280,000.50 · 2025-03-31")),
    ]
    items = "".join(
        f'<div class="list-group-item"><div class="d-flex align-items-center gap-2">'
        f'<a href="/deals/{deal.pk}/" class="fw-medium text-truncate flex-fill">{deal.title}</a>'
        f'<span class="badge bg-{color}-lt text-nowrap">{stage_name}</span></div>{line}</div>'
        for deal, stage_name, color, line in rows
    )
    return (
        '<div class="card" data-testid="deals-card"><div class="card-header">'
        f'<h2 class="card-title">{icon("briefcase", "me-2 text-primary")}Deals</h2>'
        f'<div class="card-actions">{add_html}</div></div>'
        f'<div class="list-group list-group-flush" data-testid="deals">{items}</div></div>'
    )


def normal(html: str) -> str:
    """The HTML as a tree, printed: whitespace between tags does not count."""
    return str(parse_html(html))


def test_the_deal_card_reads_as_before(client, seller, customer_with_deals):
    customer, deals = customer_with_deals
    client.force_login(seller)
    card = deal_card(client, customer)
    assert normal(card) == normal(expected_card(customer, deals, add=True))


def test_without_adding_deals_the_card_counts_them(client, org, seller, customer_with_deals):
    customer, deals = customer_with_deals
    viewer = org.set_scope(
        seller,
        DataScope.OWN,
        [*crm_permissions(("view", "add", "change")), "deal.view"],
    )
    client.force_login(viewer)
    card = deal_card(client, customer)
    assert normal(card) == normal(expected_card(customer, deals, add=False))


def test_a_hidden_amount_leaves_out_the_amount_line(client, seller, customer_with_deals):
    customer, deals = customer_with_deals
    role = seller.role
    role.field_permissions = {"deal": {"amount": "hidden"}}
    role.save()
    client.force_login(seller)
    card = deal_card(client, customer)
    assert normal(card) == normal(expected_card(customer, deals, add=True, amounts=False))


def test_a_customer_without_deals_says_so(client, seller):
    customer = CustomerFactory(owner=seller, name="新客户")
    client.force_login(seller)
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="deals-card"' in html
    assert "No deals yet." in html


def test_without_seeing_deals_there_is_no_card(client, org, seller):
    customer = CustomerFactory(owner=seller, name="新客户")
    viewer = org.set_scope(seller, DataScope.OWN, crm_permissions(("view", "add", "change")))
    client.force_login(viewer)
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="deals-card"' not in html
