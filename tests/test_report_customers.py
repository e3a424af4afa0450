"""The customers report: new customers in the period by source × level (each cell lists
exactly its customers), and the RFM segments of customers with won deals — sizes, won
deals, amounts, recency — for a rep, a manager and an admin, each segment's page listing
exactly the segment's customers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import DataScope, User
from crm.models import Customer
from pipelines import services
from pipelines.models import Deal, Stage
from reports.base import Context, get_report
from reports.library import customers as report
from reports.periods import Period

from .factories import (
    CustomerFactory,
    UserFactory,
    crm_permissions,
    item,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
PERIOD = Period("custom", date(2024, 3, 1), date(2024, 4, 30))
QUERY = "period=custom&first=2024-03-01&last=2024-04-30"


def at(day: str, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(day) + timedelta(hours=hour))


@pytest.fixture
def people(org):
    perms = crm_permissions(types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    manager = UserFactory(username="manager", name="陈经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, perms)
    return org


@pytest.fixture
def history(people):
    """Customers (created) and their won deals (closed, amount in thousands, deal owner).

    | C1 | owner     | website  | A | 03-05 | 24-04-20 200, 24-03-01 200, 23-12-01 150 |
    | C2 | owner     | website  | B | 03-10 | 24-04-25 20; 24-04-28 500 (outsider's)   |
    | C3 | owner     | referral | A | 04-01 | 23-09-01 300, 23-08-01 100               |
    | C4 | colleague | referral | — | 04-05 | 23-06-01 50 (+ a lost and an open deal)  |
    | C5 | colleague | —        | B | 03-20 | —                                        |
    | C6 | outsider  | website  | A | 04-10 | 24-04-01 600                             |
    | C7 | (pool)    | show     | C | 03-15 | 24-02-01 80 (owner's)                    |
    | C8 | owner     | website  | A | 02-10 | 24-01-15 30; 24-05-10 40 (after the end) |
    """
    o, c, x = people.owner, people.colleague, people.outsider
    won = Stage.objects.get(pipeline__name="零售", kind="won")
    lost = Stage.objects.get(pipeline__name="零售", kind="lost")

    def customer(name, owner, source, level, created):
        record = CustomerFactory(
            name=name,
            owner=owner,
            source=item("customer_source", source) if source else None,
            level=item("customer_level", level) if level else None,
        )
        Customer.objects.filter(pk=record.pk).update(created_at=at(created))
        return record

    def deal(customer, owner, thousands, closed=None, stage=won):
        record = services.create_deal(
            deal=Deal(
                customer=customer,
                owner=owner,
                title=f"{customer.name} {thousands}",
                amount=Decimal(thousands * 1000),
            ),
            by=people.admin,
        )
        if stage is not None:
            reason = item("lost_reason", "price") if stage == lost else None
            services.move_to_stage(record=record, stage=stage, by=people.admin, lost_reason=reason)
        if closed:
            Deal.objects.filter(pk=record.pk).update(closed_at=at(closed))
        return record

    made = {
        "C1": customer("一号", o, "website", "a", "2024-03-05"),
        "C2": customer("二号", o, "website", "b", "2024-03-10"),
        "C3": customer("三号", o, "referral", "a", "2024-04-01"),
        "C4": customer("四号", c, "referral", None, "2024-04-05"),
        "C5": customer("五号", c, None, "b", "2024-03-20"),
        "C6": customer("六号", x, "website", "a", "2024-04-10"),
        "C7": customer("七号", None, "exhibition", "c", "2024-03-15"),
        "C8": customer("八号", o, "website", "a", "2024-02-10"),
    }
    for name, owner, thousands, closed in [
        ("C1", o, 200, "2024-04-20"),
        ("C1", o, 200, "2024-03-01"),
        ("C1", o, 150, "2023-12-01"),
        ("C2", o, 20, "2024-04-25"),
        ("C2", x, 500, "2024-04-28"),
        ("C3", o, 300, "2023-09-01"),
        ("C3", o, 100, "2023-08-01"),
        ("C4", c, 50, "2023-06-01"),
        ("C6", x, 600, "2024-04-01"),
        ("C7", o, 80, "2024-02-01"),
        ("C8", o, 30, "2024-01-15"),
        ("C8", o, 40, "2024-05-10"),
    ]:
        deal(made[name], owner, thousands, closed)
    deal(made["C4"], c, 70, "2024-04-02", stage=lost)
    deal(made["C4"], c, 90, stage=None)
    return made


def compute(user, **kwargs):
    return get_report("customers").compute(Context(user=user, period=PERIOD, **kwargs))


def figures(table) -> list[list]:
    rows = [*table.rows, *([table.totals] if table.totals else [])]
    return [[cell.value for cell in row] for row in rows]


def segments(result) -> dict[str, list]:
    table = dict(result.extra_tables)["RFM segments of customers with won deals"]
    return {
        key: [cell.value for cell in row[1:6]]
        for key, row in zip([*report.SEGMENTS, "total"], [*table.rows, table.totals], strict=True)
        if row[1].value
    }


def list_count(client, url) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["paginator"].count


def assert_drill_downs(client, user, result) -> None:
    """Every cross-table count lists exactly its customers; every segment's page lists
    exactly the segment's customers."""
    client.force_login(user)
    table = result.table
    for row in [*table.rows, table.totals]:
        for cell in row[1:]:
            assert list_count(client, cell.url) == cell.value, cell.url
    rfm = dict(result.extra_tables)["RFM segments of customers with won deals"]
    for row in [*rfm.rows, rfm.totals]:
        cell = row[1]
        response = client.get(cell.url)
        assert response.status_code == 200
        assert response.context["paginator"].count == cell.value, cell.url
        assert len(response.context["rows"]) == cell.value
        assert all(customer is not None for _s, customer in response.context["rows"])


def test_admin_sees_every_customer(people, history, client, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # cross table, labels, RFM
        result = compute(people.admin)
    assert [c.label for c in result.table.columns] == [
        "Source",
        "A – key account",
        "B – regular",
        "C – occasional",
        "Not given",
        "Total",
    ]
    assert figures(result.table) == [
        ["Website", 2, 1, 0, 0, 3],
        ["Referral", 1, 0, 0, 1, 2],
        ["Trade show", 0, 0, 1, 0, 1],
        ["Not given", 0, 1, 0, 0, 1],
        ["Total", 3, 2, 1, 1, 7],
    ]
    # segment: customers, share, won deals, won amount, median days since the last win
    assert segments(result) == {
        "key_value": [2, 28.6, 5, Decimal("1070000"), 6],
        "key_develop": [1, 14.3, 1, Decimal("600000"), 29],
        "key_keep": [1, 14.3, 2, Decimal("400000"), 242],
        "general_develop": [2, 28.6, 2, Decimal("110000"), 97.5],
        "at_risk": [1, 14.3, 1, Decimal("50000"), 334],
        "total": [7, 100.0, 11, Decimal("2230000"), None],
    }
    assert [(label, cell.value) for label, cell in result.headline] == [
        ("New customers", 7),
        ("Customers with won deals", 7),
        ("Key value", 2),
        ("At risk of churn", 1),
    ]
    chart = result.chart
    assert chart["data"]["labels"] == ["Website", "Referral", "Trade show", "Not given"]
    assert [(d["label"], d["data"]) for d in chart["data"]["datasets"]] == [
        ("A – key account", [2, 1, 0, 0]),
        ("B – regular", [1, 0, 0, 1]),
        ("C – occasional", [0, 0, 1, 0]),
        ("Not given", [0, 1, 0, 0]),
    ]
    assert_drill_downs(client, people.admin, result)


def test_segment_scores(people, history):
    scored = {s.customer_id: s for s in report.rfm(Context(user=people.admin, period=PERIOD))}
    c1, c3, c8 = (scored[history[n].pk] for n in ("C1", "C3", "C8"))
    assert (c1.days, c1.deals, c1.value, c1.r, c1.f, c1.v) == (10, 3, Decimal("550000"), 3, 3, 3)
    assert (c3.days, c3.r, c3.f, c3.v, c3.segment) == (242, 1, 2, 2, "key_keep")
    # The deal won after the period's end does not count; 106 days scores 2 (≤ 180).
    assert (c8.last_won, c8.deals, c8.r, c8.segment) == (
        date(2024, 1, 15),
        1,
        2,
        "general_develop",
    )
    assert history["C5"].pk not in scored  # no won deal


def test_manager_sees_the_team_and_the_pool(people, history, client):
    result = compute(people.manager)
    assert figures(result.table) == [
        ["Website", 1, 1, 0, 0, 2],
        ["Referral", 1, 0, 0, 1, 2],
        ["Trade show", 0, 0, 1, 0, 1],
        ["Not given", 0, 1, 0, 0, 1],
        ["Total", 2, 2, 1, 1, 6],
    ]
    # The outsider's deal with C2 is not the manager's to see: C2 is a small customer.
    assert segments(result) == {
        "key_value": [1, 16.7, 3, Decimal("550000"), 10],
        "key_keep": [1, 16.7, 2, Decimal("400000"), 242],
        "general_develop": [3, 50.0, 3, Decimal("130000"), 89],
        "at_risk": [1, 16.7, 1, Decimal("50000"), 334],
        "total": [6, 100.0, 9, Decimal("1130000"), None],
    }
    assert_drill_downs(client, people.manager, result)


def test_rep_sees_own_customers_and_the_pool(people, history, client):
    result = compute(people.owner)
    assert [c.label for c in result.table.columns][1:] == [
        "A – key account",
        "B – regular",
        "C – occasional",
        "Total",
    ]
    assert figures(result.table) == [
        ["Website", 1, 1, 0, 2],
        ["Referral", 1, 0, 0, 1],
        ["Trade show", 0, 0, 1, 1],
        ["Total", 2, 1, 1, 4],
    ]
    assert segments(result) == {
        "key_value": [1, 20.0, 3, Decimal("550000"), 10],
        "key_keep": [1, 20.0, 2, Decimal("400000"), 242],
        "general_develop": [3, 60.0, 3, Decimal("130000"), 89],
        "total": [5, 100.0, 8, Decimal("1080000"), None],
    }
    assert_drill_downs(client, people.owner, result)
    client.force_login(people.owner)
    response = client.get(f"/reports/customers/segment/general_develop/?{QUERY}")
    names = [customer.name for _s, customer in response.context["rows"]]
    assert names == ["七号", "八号", "二号"]  # by won amount
    assert f"/customers/{history['C7'].pk}/" in response.content.decode()


def test_owner_filter(people, history, client):
    result = compute(people.manager, owner=people.colleague)
    assert figures(result.table) == [
        ["Referral", 0, 1, 1],
        ["Not given", 1, 0, 1],
        ["Total", 1, 1, 2],
    ]
    assert segments(result) == {
        "at_risk": [1, 100.0, 1, Decimal("50000"), 334],
        "total": [1, 100.0, 1, Decimal("50000"), None],
    }
    assert_drill_downs(client, people.manager, result)
    assert f"owner={people.colleague.pk}" in result.extra_tables[0][1].rows[-1][1].url


def test_the_page_and_the_segment_page(people, history, client):
    client.force_login(people.manager)
    response = client.get(f"/reports/customers/?{QUERY}")
    assert response.status_code == 200
    assert response.context["result"].headline[0][1].value == 6
    assert client.get(f"/reports/customers/?{QUERY}&format=xlsx").status_code == 200
    assert client.get("/reports/customers/segment/nonsense/").status_code == 404


def test_without_deal_amounts_no_rfm(people, history, client):
    role = people.manager.role
    role.field_permissions = {"deal": {"amount": "hidden"}}
    role.save(update_fields=["field_permissions"])
    manager = User.objects.select_related("role").get(pk=people.manager.pk)
    result = compute(manager)
    assert result.extra_tables == []
    assert figures(result.table)[-1] == ["Total", 2, 2, 1, 1, 6]
    client.force_login(manager)
    response = client.get(f"/reports/customers/segment/at_risk/?{QUERY}")
    assert response.context["paginator"].count == 0


def test_hidden_level_collapses_the_columns(people, history, client):
    role = people.manager.role
    role.field_permissions = {"customer": {"level": "hidden"}}
    role.save(update_fields=["field_permissions"])
    manager = User.objects.select_related("role").get(pk=people.manager.pk)
    result = compute(manager)
    assert [c.label for c in result.table.columns] == ["Source", "Customers"]
    assert figures(result.table) == [
        ["Website", 2],
        ["Referral", 2],
        ["Trade show", 1],
        ["Not given", 1],
        ["Total", 6],
    ]
    assert_drill_downs(client, manager, result)


def test_a_role_without_customers_may_not_open_it(org, client):
    org.owner = org.set_scope(org.owner, DataScope.OWN, [])
    client.force_login(org.owner)
    assert client.get("/reports/customers/").status_code == 403
    assert client.get("/reports/customers/segment/at_risk/").status_code == 403
