"""The activity report on a known fortnight (Monday 3 to Sunday 16 March 2025): calls,
visits and meetings per rep and week, tasks done and overdue, customers with no follow-up
in N days and public-pool claims and returns — for a rep, a manager and an admin, every
figure exactly, and every figure's list holding exactly that many records."""

from datetime import date, datetime, timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Activity, Customer, DictionaryItem, PoolEvent, TaskStatus
from reports.library.activity import Weeks
from reports.periods import Period

from .factories import (
    ActivityFactory,
    CustomerFactory,
    TaskFactory,
    UserFactory,
    crm_permissions,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
URL = reverse("reports:report", args=["activity"])
FORTNIGHT = {"period": "custom", "first": "2025-03-03", "last": "2025-03-16"}


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return timezone.make_aware(datetime(2025, month, day, hour))


def kind(code: str) -> DictionaryItem:
    return DictionaryItem.objects.of("activity_kind").get(code=code)


@pytest.fixture
def crm(org):
    """owner (rep, own scope) and sub_member in 销售一部's tree, the manager of that tree,
    the outsider in 销售二部, the admin over everything."""
    permissions = crm_permissions(("view", "add", "change"), TYPES)
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, permissions)
    for name in ("owner", "sub_member", "outsider", "manager", "admin"):
        getattr(org, name).language = "en"  # the pages in English
        getattr(org, name).save(update_fields=["language"])
    return org


@pytest.fixture
def history(crm):
    owner, sub, outsider = crm.owner, crm.sub_member, crm.outsider
    mine = CustomerFactory(name="王芳的客户", owner=owner)
    subs = CustomerFactory(name="赵强的客户", owner=sub)
    theirs = CustomerFactory(name="刘洋的客户", owner=outsider)

    def log(author, customer, code, when):
        ActivityFactory(author=author, customer=customer, kind=kind(code), occurred_at=when)

    # The owner: week 1 two calls and a visit, week 2 a meeting and a call (late Sunday).
    log(owner, mine, "call", at(3, 9))
    log(owner, mine, "call", at(5))
    log(owner, mine, "visit", at(7))
    log(owner, mine, "meeting", at(11))
    log(owner, mine, "call", at(16, 23))
    log(owner, mine, "email", at(6))  # not a call, visit or meeting
    log(owner, mine, "call", at(2, 23))  # the Sunday before the period
    log(owner, mine, "call", at(17, 0))  # the Monday after
    # The sub-department's rep: one visit in week 1.
    log(sub, subs, "visit", at(4))
    # The outsider: two calls on their customer, one on the owner's customer (the owner
    # sees it on the customer, but it is not the owner's team's work).
    log(outsider, theirs, "call", at(4))
    log(outsider, theirs, "call", at(12))
    log(outsider, mine, "call", at(5))

    # Tasks: done in the week they were completed; overdue in the week they fell due.
    TaskFactory(assignee=owner, status=TaskStatus.DONE, due_at=at(4), completed_at=at(5))
    TaskFactory(assignee=owner, status=TaskStatus.DONE, completed_at=at(14))
    TaskFactory(assignee=owner, status=TaskStatus.DONE, completed_at=at(1))  # before
    TaskFactory(assignee=owner, status=TaskStatus.DONE, due_at=at(4), completed_at=at(20))
    TaskFactory(assignee=owner, due_at=at(4))  # overdue, week 1
    TaskFactory(assignee=owner, due_at=at(12))  # overdue, week 2
    TaskFactory(assignee=owner, due_at=at(4), status=TaskStatus.CANCELLED)
    TaskFactory(assignee=owner, due_at=at(20))  # overdue, but due after the period
    TaskFactory(assignee=sub, due_at=at(6))  # overdue, week 1
    TaskFactory(assignee=outsider, status=TaskStatus.DONE, completed_at=at(6))

    # Customers nobody followed up for more than 30 days (today, not the period).
    now = timezone.now()
    old = now - timedelta(days=45)
    stale = [
        CustomerFactory(name="王芳久未跟进", owner=owner),
        CustomerFactory(name="王芳从未跟进", owner=owner),
        CustomerFactory(name="公海久未跟进", owner=None),
        CustomerFactory(name="赵强久未跟进", owner=sub),
        CustomerFactory(name="刘洋久未跟进", owner=outsider),
    ]
    Customer.objects.filter(pk__in=[c.pk for c in stale]).update(created_at=old - timedelta(9))
    Customer.objects.filter(pk=stale[0].pk).update(last_activity_at=old)
    Customer.objects.filter(pk=stale[1].pk).update(last_activity_at=None)
    fresh = CustomerFactory(name="王芳刚跟进", owner=owner)
    Customer.objects.filter(pk=fresh.pk).update(
        created_at=old, last_activity_at=now - timedelta(days=5)
    )
    # The three customers the activities were logged on were created just now: not stale.

    # The public pool: the owner claimed two customers and returned one, the sub-department
    # rep claimed one, the outsider one; one claim before the period.
    def event(user, action, day, customer):
        return PoolEvent.objects.create(
            customer=customer, user=user, action=action, created_at=at(day)
        )

    claim, release = PoolEvent.Action.CLAIM, PoolEvent.Action.RELEASE
    event(owner, claim, 5, CustomerFactory(name="认领甲", owner=owner))
    event(owner, claim, 10, CustomerFactory(name="认领乙", owner=owner))
    event(owner, release, 11, CustomerFactory(name="退回丙", owner=None))
    event(owner, claim, 1, CustomerFactory(name="更早认领", owner=owner))
    event(sub, claim, 6, CustomerFactory(name="赵强认领", owner=sub))
    event(outsider, claim, 6, CustomerFactory(name="刘洋认领", owner=outsider))


def report(client, user, **params):
    client.force_login(user)
    response = client.get(URL, {**FORTNIGHT, **params})
    assert response.status_code == 200
    return response.context["result"]


def figures(table) -> list[list]:
    rows = [[cell.value for cell in row] for row in table.rows]
    return [*rows, [cell.value for cell in table.totals]]


def extra(result, index: int) -> list[list]:
    table = result.extra_tables[index][1]
    return figures(table) if table.totals else [[c.value for c in row] for row in table.rows]


def assert_drill_downs(client, result) -> int:
    """Each linked number equals the count of the list it links to (as the same user)."""
    checked = 0
    cells = [cell for _label, cell in result.headline]
    for table in [result.table] + [t for _title, t in result.extra_tables]:
        for row in [*table.rows, *([table.totals] if table.totals else [])]:
            cells += [cell for cell in row if cell.numeric]
    for cell in cells:
        assert cell.url, cell
        response = client.get(cell.url)
        assert response.status_code == 200, cell.url
        filterset = response.context["filterset"]
        assert filterset.is_valid(), (cell.url, filterset.errors)
        assert response.context["paginator"].count == cell.value, cell.url
        checked += 1
    return checked


# Columns: rep, calls, visits, meetings, tasks done, tasks overdue.


def test_the_rep_sees_their_own_work(client, crm, history):
    result = report(client, crm.owner)
    assert figures(result.table) == [["王芳", 3, 1, 1, 2, 2], ["Total", 3, 1, 1, 2, 2]]
    assert result.extra_tables[0][0] == "Week by week: the team"
    assert extra(result, 0) == [
        ["03-03 – 03-09", 2, 1, 0, 1, 1],
        ["03-10 – 03-16", 1, 0, 1, 1, 1],
    ]
    # Stale: the owner's two and the public pool's one.
    assert extra(result, 1) == [["王芳", 2], ["Public pool", 1], ["Total", 3]]
    assert extra(result, 2) == [["王芳", 2, 1], ["Total", 2, 1]]
    assert [(label, cell.value) for label, cell in result.headline] == [
        ("Calls", 3),
        ("Visits", 1),
        ("Meetings", 1),
        ("Tasks overdue", 2),
        ("No follow-up in 30 days", 3),
    ]
    assert assert_drill_downs(client, result) > 20


def test_the_manager_sees_the_department_tree(client, crm, history):
    result = report(client, crm.manager)
    assert figures(result.table) == [
        ["王芳", 3, 1, 1, 2, 2],
        ["赵强", 0, 1, 0, 0, 1],
        ["Total", 3, 2, 1, 2, 3],
    ]
    assert extra(result, 1) == [["王芳", 2], ["赵强", 1], ["Public pool", 1], ["Total", 4]]
    assert extra(result, 2) == [["王芳", 2, 1], ["赵强", 1, 0], ["Total", 3, 1]]
    assert assert_drill_downs(client, result) > 30


def test_the_admin_sees_everyone(client, crm, history):
    result = report(client, crm.admin)
    assert figures(result.table) == [
        ["刘洋", 3, 0, 0, 1, 0],
        ["王芳", 3, 1, 1, 2, 2],
        ["赵强", 0, 1, 0, 0, 1],
        ["Total", 6, 2, 1, 3, 3],
    ]
    assert extra(result, 1)[-1] == ["Total", 5]
    assert extra(result, 2) == [["刘洋", 1, 0], ["王芳", 2, 1], ["赵强", 1, 0], ["Total", 4, 1]]
    assert assert_drill_downs(client, result) > 30


def test_week_rows_for_the_manager(client, crm, history):
    result = report(client, crm.manager)
    # The team's weeks on the page; every rep's weeks in the export only.
    assert extra(result, 0) == [
        ["03-03 – 03-09", 2, 2, 0, 1, 2],
        ["03-10 – 03-16", 1, 0, 1, 1, 1],
    ]
    [(title, make)] = result.export_tables
    assert title == "Per rep and week"
    assert [[cell.value for cell in row] for row in make().rows] == [
        ["王芳", "03-03 – 03-09", 2, 1, 0, 1, 1],
        ["王芳", "03-10 – 03-16", 1, 0, 1, 1, 1],
        ["赵强", "03-03 – 03-09", 0, 1, 0, 0, 1],
    ]
    chart = result.chart
    # A week by its range; every legend entry is a bar of real figures.
    assert chart["data"]["labels"] == ["03-03 – 03-09", "03-10 – 03-16"]
    assert all(d.get("type", "bar") == "bar" for d in chart["data"]["datasets"])
    stacks = {d["label"]: d["stack"] for d in chart["data"]["datasets"]}
    assert stacks["Calls"] == stacks["Visits"] == stacks["Meetings"]
    assert len({stacks["Calls"], stacks["Tasks done"], stacks["Tasks overdue"]}) == 3
    series = {d["label"]: d["data"] for d in chart["data"]["datasets"]}
    assert series == {
        "Calls": [2, 1],
        "Visits": [2, 0],
        "Meetings": [0, 1],
        "Tasks done": [1, 1],
        "Tasks overdue": [2, 1],
    }


def test_a_reps_name_opens_the_report_narrowed_to_their_weeks(client, crm, history):
    result = report(client, crm.manager, days=20)
    sub_row = next(row for row in result.table.rows if row[0].value == "赵强")
    url = sub_row[0].url
    assert url.startswith(URL)
    response = client.get(url)
    assert response.status_code == 200
    narrowed = response.context["result"]
    assert response.context["ctx"].owner == crm.sub_member
    assert response.context["ctx"].period.first.isoformat() == FORTNIGHT["first"]
    assert response.context["ctx"].params["days"] == 20
    assert narrowed.extra_tables[0][0] == "Week by week: 赵强"
    assert extra(narrowed, 0) == [["03-03 – 03-09", 0, 1, 0, 0, 1]]
    # Narrowed to one rep, the name links nowhere further.
    assert [cell.url for cell in narrowed.table.rows[0][:1]] == [""]
    assert_drill_downs(client, narrowed)


def test_owner_and_department_filters_narrow_and_drill_with_them(client, crm, history):
    result = report(client, crm.manager, owner=crm.sub_member.pk)
    assert figures(result.table) == [["赵强", 0, 1, 0, 0, 1], ["Total", 0, 1, 0, 0, 1]]
    assert extra(result, 1) == [["赵强", 1], ["Total", 1]]
    assert extra(result, 2) == [["赵强", 1, 0], ["Total", 1, 0]]
    assert_drill_downs(client, result)
    result = report(client, crm.admin, department=crm.team2.pk)
    assert figures(result.table) == [["刘洋", 3, 0, 0, 1, 0], ["Total", 3, 0, 0, 1, 0]]
    assert extra(result, 2) == [["刘洋", 1, 0], ["Total", 1, 0]]
    assert_drill_downs(client, result)


def test_a_period_cut_mid_week_cuts_the_week_too(client, crm, history):
    result = report(client, crm.owner, first="2025-03-05", last="2025-03-11")
    assert extra(result, 0) == [
        ["03-05 – 03-09", 1, 1, 0, 1, 0],
        ["03-10 – 03-11", 0, 0, 1, 0, 0],
    ]
    # The chart names the cut weeks by their days in the period, not by their first day.
    assert result.chart["data"]["labels"] == ["03-05 – 03-09", "03-10 – 03-11"]
    assert_drill_downs(client, result)


def test_the_page_renders_and_exports(client, crm, history):
    client.force_login(crm.manager)
    response = client.get(URL, FORTNIGHT)
    assert response.status_code == 200
    assert 'data-testid="drill"' in response.content.decode()
    exported = client.get(URL, {**FORTNIGHT, "format": "csv"}).content.decode("utf-8-sig")
    assert "Per rep and week" in exported and "Public pool: claims and returns" in exported


def test_a_role_without_activities_may_not_open_it(client, crm):
    nobody = crm.set_scope(crm.outsider, DataScope.OWN, crm_permissions(("view",), ("deal",)))
    client.force_login(nobody)
    assert client.get(URL).status_code == 403


@override_settings(TIME_ZONE="Europe/Berlin")
def test_weeks_are_local_mondays_across_a_daylight_saving_change(db):
    """Summer time starts on Sunday 2025-03-30 in Berlin: the week of 03-31 starts at
    Monday 00:00 CEST, an hour earlier in UTC than a fixed offset would say."""
    weeks = Weeks(Period("custom", date(2025, 3, 24), date(2025, 4, 6)))
    assert weeks.mondays == [date(2025, 3, 24), date(2025, 3, 31)]
    when = [
        datetime(2025, 3, 24, 0, 10),  # Monday, week 1
        datetime(2025, 3, 30, 23, 30),  # Sunday night (CEST), week 1
        datetime(2025, 3, 31, 0, 30),  # Monday (CEST), week 2
        datetime(2025, 4, 6, 23, 59),  # Sunday, week 2
    ]
    for moment in when:
        ActivityFactory(occurred_at=timezone.make_aware(moment))
    found = Activity.objects.annotate(week=weeks.of("occurred_at")).order_by("occurred_at")
    assert [weeks.monday(w) for w in found.values_list("week", flat=True)] == [
        date(2025, 3, 24),
        date(2025, 3, 24),
        date(2025, 3, 31),
        date(2025, 3, 31),
    ]
