"""The manager's headline figures on the dashboard (/): deals won this month, the weighted
open pipeline closing this month, open deals past their expected close date, the team's
calls, visits and meetings this week — over the deals and activities the manager sees,
each linking to the list or report behind it; none for a rep."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope, User
from crm.models import DictionaryItem
from reports.dashboard import team_cards

from .factories import (
    ActivityFactory,
    CustomerFactory,
    DealFactory,
    UserFactory,
    crm_permissions,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def crm(org):
    permissions = crm_permissions(("view", "add", "change"), TYPES)
    for name in ("owner", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, permissions)
    return org


def make_deal(owner, amount, *, close=None, won=False):
    """An open deal in the default pipeline's (零售) first stage, or one won now."""
    return DealFactory(
        title=f"{owner.username}-{amount}",
        owner=owner,
        amount=Decimal(amount),
        expected_close_date=close,
        stage=stage("零售", "赢单") if won else None,
    )


@pytest.fixture
def figures(crm):
    today = timezone.localdate()
    long_ago = today - timedelta(days=40)
    make_deal(crm.owner, "100000", won=True)
    make_deal(crm.sub_member, "50000", won=True)
    make_deal(crm.outsider, "999000", won=True)  # another team
    make_deal(crm.owner, "200000", close=today)  # 10%: ¥20,000 weighted
    make_deal(crm.sub_member, "30000", close=today)  # 10%: ¥3,000
    make_deal(crm.owner, "80000", close=long_ago)  # past its expected close
    make_deal(crm.outsider, "70000", close=long_ago)
    call = DictionaryItem.objects.of("activity_kind").get(code="call")
    note = DictionaryItem.objects.of("activity_kind").get(code="note")
    now = timezone.now()
    for author, kind, when in [
        (crm.owner, call, now),
        (crm.owner, call, now),
        (crm.sub_member, call, now),
        (crm.owner, note, now),  # not a call, visit or meeting
        (crm.owner, call, now - timedelta(days=8)),  # last week
        (crm.outsider, call, now),
    ]:
        customer = CustomerFactory(owner=author)
        ActivityFactory(customer=customer, author=author, kind=kind, occurred_at=when)


def cards(client, user) -> dict:
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    return {card.key: card for card in response.context["cards"]}


def test_the_manager_sees_the_team_figures(client, crm, figures):
    shown = cards(client, crm.manager)
    assert list(shown) == ["won", "weighted", "past", "activities"]
    # Amounts compact, as Chinese business software shows them, the exact one the title.
    assert (shown["won"].value, shown["won"].note) == ("2", "¥15万")
    assert shown["won"].note_title == "¥150,000.00"
    # The note reads in the manager's language (the demo company's: Chinese).
    assert (shown["weighted"].value, shown["weighted"].note) == ("¥2.3万", "2 个进行中的商机")
    assert shown["past"].value == "1"
    assert shown["activities"].value == "3"
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="team-figures"' in page
    assert 'title="¥23,000.00">¥2.3万</div>' in page


def test_the_admin_sees_everyone_and_a_rep_no_figures(client, crm, figures):
    shown = cards(client, crm.admin)
    assert (shown["won"].value, shown["won"].note) == ("3", "¥114.9万")
    assert shown["past"].value == "2"
    assert shown["activities"].value == "4"
    assert cards(client, crm.owner) == {}
    assert 'data-testid="team-figures"' not in client.get(reverse("dashboard")).content.decode()


def test_the_figures_link_to_lists_of_exactly_those_deals(client, crm, figures):
    shown = cards(client, crm.manager)
    for key in ("won", "past"):
        response = client.get(shown[key].url)
        assert response.context["paginator"].count == int(shown[key].value), shown[key].url
    report = client.get(shown["activities"].url).context["result"]
    totals = {
        c.key: cell.value for c, cell in zip(report.table.columns, report.table.totals, strict=True)
    }
    assert totals["call"] + totals["visit"] + totals["meeting"] == 3
    assert client.get(shown["weighted"].url).status_code == 200


def test_a_hidden_amount_hides_the_money(client, crm, figures):
    role = crm.manager.role
    role.field_permissions = {"deal": {"amount": "hidden"}}
    role.save()
    shown = cards(client, User.objects.get(pk=crm.manager.pk))
    assert "weighted" not in shown and shown["won"].note == ""


def test_two_queries(crm, figures):
    manager = User.objects.select_related("role", "department").get(pk=crm.manager.pk)
    with CaptureQueriesContext(connection) as queries:
        team_cards(manager)
    assert len(queries) <= 3  # the deals, the activities (+ the scope's departments)


def test_customer_service_sees_no_sales_figures(client, crm, figures):
    """Customer service sees every customer (scope: all) but sells nothing: the team's
    figures are a manager's and an admin's (declared where they are registered)."""
    service = UserFactory(username="service", name="赵客服")
    service = crm.set_scope(service, DataScope.ALL, crm_permissions(("view",), TYPES))
    assert cards(client, service) == {}
    assert 'data-testid="team-figures"' not in client.get(reverse("dashboard")).content.decode()
