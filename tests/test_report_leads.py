"""The leads report: leads created in the period by source and month, conversion to a
customer and to a won deal, median hours to the first follow-up, lost reasons (vague
ones and missing notes), for a rep, a manager and an admin; every linked number's list
holds exactly that many leads."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Customer, DictionaryItem
from pipelines import services
from pipelines.models import Deal, Lead, Stage
from reports.base import Cell, Context, get_report
from reports.periods import Period

from .factories import (
    ActivityFactory,
    DictionaryItemFactory,
    UserFactory,
    crm_permissions,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
PERIOD = Period("custom", date(2024, 3, 1), date(2024, 4, 30))


def at(day: str, hour: int = 9) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(day) + timedelta(hours=hour))


def item(code: str, dictionary: str) -> DictionaryItem:
    return DictionaryItem.objects.of(dictionary).get(code=code)


@pytest.fixture
def people(org):
    perms = crm_permissions(types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    manager = UserFactory(username="manager", name="陈经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, perms)
    return org


def follow_up(lead: Lead, when: datetime, by) -> None:
    ActivityFactory(customer=None, subject=lead, content="电话沟通", author=by, occurred_at=when)


@pytest.fixture
def history(people):
    """Nine leads; eight created in March–April 2024.

    | lead | owner     | source  | created    | outcome                       | 1st contact |
    | L1   | owner     | website | 03-05 09h  | converted, deal won           | +2 h        |
    | L2   | owner     | website | 03-20 09h  | converted, deal open          | +10 h       |
    | L3   | owner     | show    | 04-02 09h  | lost: price, with a note      | +4 h        |
    | L4   | colleague | show    | 04-10 09h  | lost: competitor, no note     | —           |
    | L5   | colleague | website | 04-15 09h  | open                          | +6 h        |
    | L6   | (pool)    | —       | 03-15 09h  | open                          | —           |
    | L7   | outsider  | website | 03-25 09h  | converted, no deal            | +20 h       |
    | L8   | owner     | website | 02-20 09h  | converted, deal won (outside) | +1 h        |
    | L9   | owner     | show    | 04-20 09h  | lost: "other" (vague), no note| —           |
    """
    other = DictionaryItemFactory(dictionary__code="lost_reason", code="other", label="其他")
    web, show = item("website_form", "lead_source"), item("exhibition", "lead_source")
    won_stage = Stage.objects.get(pipeline__name="零售", kind="won")

    def lead(name, by, source, created, owner="by"):
        record = services.create_lead(
            lead=Lead(
                person_name=name,
                company_name=f"{name}公司",
                phone="13912345678",
                source=source,
                owner=by if owner == "by" else owner,
            ),
            by=by,
        )
        Lead.objects.filter(pk=record.pk).update(created_at=at(created))
        record.refresh_from_db()
        return record

    def convert(record, by, deal_won=None):
        deal = None
        if deal_won is not None:
            deal = Deal(title=f"{record.person_name}的商机", amount=Decimal("50000"))
        services.convert_lead(
            lead=record, by=by, customer=Customer(name=f"{record.person_name}客户"), deal=deal
        )
        if deal_won:
            services.move_to_stage(record=deal, stage=won_stage, by=by)
        return record

    o, c, x = people.owner, people.colleague, people.outsider
    leads = {}
    leads["L1"] = convert(lead("甲", o, web, "2024-03-05"), o, deal_won=True)
    leads["L2"] = convert(lead("乙", o, web, "2024-03-20"), o, deal_won=False)
    leads["L3"] = lead("丙", o, show, "2024-04-02")
    services.lose_lead(lead=leads["L3"], by=o, reason=item("price", "lost_reason"), note="太贵")
    leads["L4"] = lead("丁", c, show, "2024-04-10")
    services.lose_lead(lead=leads["L4"], by=c, reason=item("competitor", "lost_reason"))
    leads["L5"] = lead("戊", c, web, "2024-04-15")
    leads["L6"] = lead("己", people.admin, None, "2024-03-15", owner=None)
    leads["L7"] = convert(lead("庚", x, web, "2024-03-25"), x)
    leads["L8"] = convert(lead("辛", o, web, "2024-02-20"), o, deal_won=True)
    leads["L9"] = lead("壬", o, show, "2024-04-20")
    services.lose_lead(lead=leads["L9"], by=o, reason=other)
    for name, hours in (("L1", 2), ("L2", 10), ("L3", 4), ("L5", 6), ("L7", 20), ("L8", 1)):
        record = leads[name]
        follow_up(record, record.created_at + timedelta(hours=hours), record.owner)
    # A later follow-up does not change the first contact.
    follow_up(leads["L1"], leads["L1"].created_at + timedelta(hours=30), o)
    return leads


def compute(user, **kwargs):
    return get_report("leads").compute(Context(user=user, period=PERIOD, **kwargs))


def figures(table) -> list[list]:
    rows = [*table.rows, *([table.totals] if table.totals else [])]
    return [[cell.value for cell in row] for row in rows]


def linked(result) -> list[Cell]:
    cells = [cell for _label, cell in result.headline]
    for table in [result.table, *(t for _title, t in result.extra_tables)]:
        for row in [*table.rows, *([table.totals] if table.totals else [])]:
            cells += row
    return [cell for cell in cells if cell.url]


def assert_drill_downs(client, user, result, expected_total: int) -> None:
    """Every linked count lists exactly that many leads (a rate lists its numerator)."""
    client.force_login(user)
    checked = 0
    for cell in linked(result):
        response = client.get(cell.url)
        assert response.status_code == 200, cell.url
        count = response.context["paginator"].count
        if isinstance(cell.value, int):
            assert count == cell.value, (cell.url, count, cell.value)
            checked += 1
    assert checked > 10
    assert result.table.totals[1].value == expected_total


SOURCES = ["Website form", "Trade show", "Not given"]


def test_admin_sees_every_lead_of_the_period(
    people, history, client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):  # sources x months, first contacts, lost, labels
        result = compute(people.admin)
    assert figures(result.table) == [
        ["Website form", 4, 3, 75.0, 1, 25.0, 0, 8.0],
        ["Trade show", 3, 0, 0.0, 0, 0.0, 3, 4.0],
        ["Not given", 1, 0, 0.0, 0, 0.0, 0, None],
        ["Total", 8, 3, 37.5, 1, 12.5, 3, 6.0],
    ]
    (_month_title, months), (_reason_title, reasons) = result.extra_tables
    assert figures(months) == [["2024-03", 4, 3, 1, 0], ["2024-04", 4, 0, 0, 3]]
    assert figures(reasons) == [
        ["Chose a competitor", "", 1, 33.3, 1],
        ["Price too high", "", 1, 33.3, 0],
        ["其他", "Yes", 1, 33.3, 1],
        ["Total", "", 3, 100.0, 2],
    ]
    assert [(label, cell.value) for label, cell in result.headline] == [
        ("New leads", 8),
        ("Conversion rate", 37.5),
        ("Won-deal rate", 12.5),
        ("Median hours to first contact", 6.0),
        ("Lost without a specific reason", 33.3),
        ("Lost without a note", 66.7),
    ]
    chart = result.chart
    assert chart["data"]["labels"] == ["2024-03", "2024-04"]
    assert [(d["label"], d["data"]) for d in chart["data"]["datasets"]] == [
        ("Website form", [3, 1]),
        ("Trade show", [0, 3]),
        ("Not given", [1, 0]),
    ]
    assert_drill_downs(client, people.admin, result, 8)


def test_manager_sees_the_team_and_the_pool(people, history, client):
    result = compute(people.manager)
    assert figures(result.table) == [
        ["Trade show", 3, 0, 0.0, 0, 0.0, 3, 4.0],
        ["Website form", 3, 2, 66.7, 1, 33.3, 0, 6.0],
        ["Not given", 1, 0, 0.0, 0, 0.0, 0, None],
        ["Total", 7, 2, 28.6, 1, 14.3, 3, 5.0],
    ]
    assert figures(result.extra_tables[1][1])[-1] == ["Total", "", 3, 100.0, 2]
    assert_drill_downs(client, people.manager, result, 7)


def test_rep_sees_own_leads_and_the_pool(people, history, client):
    result = compute(people.owner)
    assert figures(result.table) == [
        ["Trade show", 2, 0, 0.0, 0, 0.0, 2, 4.0],
        ["Website form", 2, 2, 100.0, 1, 50.0, 0, 6.0],
        ["Not given", 1, 0, 0.0, 0, 0.0, 0, None],
        ["Total", 5, 2, 40.0, 1, 20.0, 2, 4.0],
    ]
    assert figures(result.extra_tables[0][1])[:2] == [
        ["2024-03", 3, 2, 1, 0],
        ["2024-04", 2, 0, 0, 2],
    ]
    assert figures(result.extra_tables[1][1]) == [
        ["Price too high", "", 1, 50.0, 0],
        ["其他", "Yes", 1, 50.0, 1],
        ["Total", "", 1 + 1, 100.0, 1],
    ]
    headline = {label: cell.value for label, cell in result.headline}
    assert headline["Lost without a specific reason"] == 50.0
    assert headline["Lost without a note"] == 50.0
    assert_drill_downs(client, people.owner, result, 5)


def test_owner_filter_narrows_the_manager_view(people, history, client):
    result = compute(people.manager, owner=people.colleague)
    assert figures(result.table)[-1] == ["Total", 2, 0, 0.0, 0, 0.0, 1, 6.0]
    assert_drill_downs_loose = [c for c in linked(result) if isinstance(c.value, int)]
    client.force_login(people.manager)
    for cell in assert_drill_downs_loose:
        assert client.get(cell.url).context["paginator"].count == cell.value, cell.url


def test_the_page_renders_and_exports(people, history, client):
    client.force_login(people.manager)
    query = "?period=custom&first=2024-03-01&last=2024-04-30"
    response = client.get(f"/reports/leads/{query}")
    assert response.status_code == 200
    assert response.context["result"].table.totals[1].value == 7
    response = client.get(f"/reports/leads/{query}&format=csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert "Lost reasons" in text or "输单原因" in text or len(text.splitlines()) > 8


def test_a_role_without_leads_may_not_open_it(org, client):
    client.force_login(org.owner)  # the org's reps start without lead.view
    assert client.get("/reports/leads/").status_code == 403


def test_hidden_source_and_lost_reason(people, history):
    role = people.manager.role
    role.field_permissions = {"lead": {"source": "hidden", "lost_reason": "hidden"}}
    role.save(update_fields=["field_permissions"])
    manager = type(people.manager).objects.select_related("role").get(pk=people.manager.pk)
    result = compute(manager)
    assert figures(result.table) == [
        ["All sources", 7, 2, 28.6, 1, 14.3, 3, 5.0],
        ["Total", 7, 2, 28.6, 1, 14.3, 3, 5.0],
    ]
    assert [title for title, _table in result.extra_tables] == ["By month"]
    assert "Lost without a note" not in dict(result.headline)
