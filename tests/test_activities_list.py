"""The activities list (/activities/) and the list filters the activity report drills down
to: who sees which activities, and each filter (author incl. "team", department, kind,
dates, customer search); tasks by completion and due dates; customers by pool events."""

from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import DictionaryItem, PoolEvent, TaskStatus

from .factories import (
    ActivityFactory,
    CustomerFactory,
    TaskFactory,
    UserFactory,
    crm_permissions,
)

URL = reverse("activities:list")


def at(day: int, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime(2025, 3, day, hour))


def kind(code: str) -> DictionaryItem:
    return DictionaryItem.objects.of("activity_kind").get(code=code)


@pytest.fixture
def crm(org):
    permissions = crm_permissions(("view", "add", "change"))
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, permissions)
    return org


@pytest.fixture
def logged(crm):
    mine = CustomerFactory(name="华东精密", owner=crm.owner)
    subs = CustomerFactory(name="赵强客户", owner=crm.sub_member)
    theirs = CustomerFactory(name="刘洋客户", owner=crm.outsider)
    return {
        "call": ActivityFactory(
            customer=mine, author=crm.owner, kind=kind("call"), occurred_at=at(3)
        ),
        "visit": ActivityFactory(
            customer=mine, author=crm.owner, kind=kind("visit"), occurred_at=at(10)
        ),
        # A lead's follow-up: no customer yet, seen through its author.
        "lead": ActivityFactory(
            customer=None, author=crm.owner, kind=kind("call"), occurred_at=at(5)
        ),
        "sub": ActivityFactory(
            customer=subs, author=crm.sub_member, kind=kind("call"), occurred_at=at(4)
        ),
        # The outsider on the owner's customer: the owner sees it with the customer.
        "on_mine": ActivityFactory(
            customer=mine, author=crm.outsider, kind=kind("meeting"), occurred_at=at(6)
        ),
        "theirs": ActivityFactory(
            customer=theirs, author=crm.outsider, kind=kind("call"), occurred_at=at(7)
        ),
    }


def listed(client, user, **params) -> set[int]:
    client.force_login(user)
    response = client.get(URL, params)
    assert response.status_code == 200
    filterset = response.context["filterset"]
    assert filterset is None or not filterset.is_bound or filterset.is_valid(), filterset.errors
    return {a.pk for a in response.context["object_list"]}


def ids(logged, *names) -> set[int]:
    return {logged[name].pk for name in names}


def test_each_sees_the_activities_of_their_scope(client, crm, logged):
    assert listed(client, crm.owner) == ids(logged, "call", "visit", "lead", "on_mine")
    assert listed(client, crm.outsider) == ids(logged, "on_mine", "theirs")
    assert listed(client, crm.manager) == ids(logged, "call", "visit", "lead", "sub", "on_mine")
    assert listed(client, crm.admin) == ids(logged, *logged)


def test_a_role_without_activities_may_not_open_the_list(client, crm):
    nobody = crm.set_scope(crm.colleague, DataScope.OWN, crm_permissions(("view",), ("task",)))
    client.force_login(nobody)
    assert client.get(URL).status_code == 403


def test_the_author_filter_takes_me_the_team_or_a_person(client, crm, logged):
    manager = crm.manager
    assert listed(client, crm.owner, author="me") == ids(logged, "call", "visit", "lead")
    assert listed(client, manager, author="team") == ids(logged, "call", "visit", "lead", "sub")
    assert listed(client, manager, author=crm.sub_member.pk) == ids(logged, "sub")
    assert listed(client, crm.admin, author="team") == ids(logged, *logged)


def test_department_kind_dates_and_search(client, crm, logged):
    admin = crm.admin
    assert listed(client, admin, department=crm.team1_east.pk) == ids(logged, "sub")
    assert listed(client, admin, department=crm.team2.pk) == ids(logged, "on_mine", "theirs")
    assert listed(client, admin, kind=kind("visit").pk) == ids(logged, "visit")
    assert listed(client, admin, occurred_after="2025-03-04", occurred_before="2025-03-06") == ids(
        logged, "lead", "sub", "on_mine"
    )
    assert listed(client, admin, q="华东") == ids(logged, "call", "visit", "on_mine")


def test_the_page_shows_the_rows(client, crm, logged):
    client.force_login(crm.owner)
    page = client.get(URL).content.decode()
    assert page.count('data-testid="activity-row"') == 4
    assert "华东精密" in page
    assert 'data-testid="add-record"' not in page


def test_tasks_by_completion_and_due_dates_and_the_team(client, crm):
    done = TaskFactory(assignee=crm.owner, status=TaskStatus.DONE, completed_at=at(5))
    TaskFactory(assignee=crm.owner, status=TaskStatus.DONE, completed_at=at(12))
    due = TaskFactory(assignee=crm.sub_member, due_at=at(6))
    TaskFactory(assignee=crm.sub_member, due_at=at(20))
    outsiders = TaskFactory(assignee=crm.outsider, due_at=at(6))
    client.force_login(crm.manager)
    url = reverse("tasks:list")

    def tasks(**params):
        response = client.get(url, params)
        assert response.context["filterset"].is_valid()
        return {t.pk for t in response.context["object_list"]}

    assert tasks(completed_after="2025-03-03", completed_before="2025-03-09") == {done.pk}
    assert tasks(due_on_after="2025-03-03", due_on_before="2025-03-09", due="overdue") == {due.pk}
    client.force_login(crm.admin)
    assert tasks(due_on_after="2025-03-06", due_on_before="2025-03-06") == {due.pk, outsiders.pk}
    client.force_login(crm.manager)
    assert outsiders.pk not in tasks(assignee="team")


def test_customers_by_pool_claims_and_returns(client, crm):
    claimed = CustomerFactory(name="认领的", owner=crm.owner)
    returned = CustomerFactory(name="退回的", owner=None)
    earlier = CustomerFactory(name="早认领的", owner=crm.owner)
    by_sub = CustomerFactory(name="赵强认领", owner=crm.sub_member)
    claim, release = PoolEvent.Action.CLAIM, PoolEvent.Action.RELEASE
    for customer, user, action, day in [
        (claimed, crm.owner, claim, 5),
        (returned, crm.owner, release, 6),
        (earlier, crm.owner, claim, 1),
        (by_sub, crm.sub_member, claim, 5),
    ]:
        PoolEvent.objects.create(customer=customer, user=user, action=action, created_at=at(day))
    url = reverse("customers:list")
    dates = {"pool_event_date_after": "2025-03-03", "pool_event_date_before": "2025-03-09"}

    def customers(user, **params):
        client.force_login(user)
        response = client.get(url, params)
        assert response.context["filterset"].is_valid(), response.context["filterset"].errors
        return {c.pk for c in response.context["object_list"]}

    assert customers(crm.owner, pool_event="claim", **dates) == {claimed.pk}
    assert customers(crm.owner, pool_event="claim") == {claimed.pk, earlier.pk}
    assert customers(crm.owner, pool_event="release", **dates) == {returned.pk}
    assert customers(crm.manager, pool_event="claim", pool_event_user="team", **dates) == {
        claimed.pk,
        by_sub.pk,
    }
    assert customers(
        crm.manager, pool_event="claim", pool_event_user=crm.sub_member.pk, **dates
    ) == {by_sub.pk}
    assert customers(
        crm.admin, pool_event="claim", pool_event_department=crm.team1_east.pk, **dates
    ) == {by_sub.pk}
