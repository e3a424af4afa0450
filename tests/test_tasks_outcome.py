"""Completing a follow-up task says how it went (跟进结果): ticking it in place (the task
list, the dashboard) opens a short form — what happened, its kind, the next follow-up —
that logs the activity and plans the next task in one step; skipping it just completes.
The task's page offers the same form as a page of its own."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Activity, Change, EventKind, Task, TaskStatus
from crm.services import tasks as services
from crm.services.activities import log_activity

from .factories import (
    ContactFactory,
    CustomerFactory,
    TaskFactory,
    crm_permissions,
    give_crm_roles,
    item,
)

HTMX = {"HTTP_HX_REQUEST": "true"}
NOTES = "客户确认下周签约，需要先发合同草稿。"


def url(name, task):
    return reverse(f"tasks:{name}", args=[task.pk])


def local_input(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


@pytest.fixture
def customer(crm):
    return CustomerFactory(name="华东精密机械有限公司", owner=crm.owner)


@pytest.fixture
def follow_up(crm, customer):
    """The open task a logged call planned for today: 跟进：华东精密机械有限公司."""
    activity = log_activity(
        customer=customer,
        by=crm.owner,
        kind=item("activity_kind", "call"),
        content="第一次电话沟通",
        occurred_at=timezone.now() - timedelta(days=2),
        next_follow_up_at=timezone.now() + timedelta(hours=1),
    )
    return activity.follow_up_tasks.get()


def outcome_data(task, **values):
    data = {
        "kind": item("activity_kind", "visit").pk,
        "content": NOTES,
        "next_follow_up_at": local_input(timezone.now() + timedelta(days=3)),
    }
    data.update(values)
    return {f"outcome-{task.pk}-{key}": value for key, value in data.items()}


# --- The service ------------------------------------------------------------------------


def test_completing_a_follow_up_logs_how_it_went_and_plans_the_next(crm, customer, follow_up):
    next_at = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)

    activity = services.complete_follow_up(
        task=follow_up,
        by=crm.owner,
        kind=item("activity_kind", "visit"),
        content=NOTES,
        next_follow_up_at=next_at,
    )

    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.DONE and follow_up.completed_at is not None
    assert activity.customer == customer and activity.content == NOTES
    assert activity.kind.code == "visit" and activity.author == crm.owner
    planned = Task.objects.get(activity=activity)
    assert planned.status == TaskStatus.OPEN and planned.due_at == next_at
    assert planned.assignee == crm.owner and planned.customer == customer
    customer.refresh_from_db()
    assert customer.next_follow_up_at == next_at
    assert customer.last_activity_at == activity.occurred_at
    kinds = set(Change.objects.values_list("kind", flat=True))
    assert {EventKind.TASK_COMPLETED, EventKind.ACTIVITY_LOGGED, EventKind.CREATED} <= kinds


def test_an_outcome_without_a_next_follow_up_clears_the_plan(crm, customer, follow_up):
    services.complete_follow_up(
        task=follow_up, by=crm.owner, kind=item("activity_kind", "call"), content=NOTES
    )
    customer.refresh_from_db()
    assert customer.next_follow_up_at is None
    assert Task.objects.filter(customer=customer, status=TaskStatus.OPEN).count() == 0


def test_a_refused_outcome_changes_nothing(crm, customer, follow_up):
    """One transaction: a next follow-up in the past is refused, and the task stays open."""
    with pytest.raises(ValidationError):
        services.complete_follow_up(
            task=follow_up,
            by=crm.owner,
            kind=item("activity_kind", "call"),
            content=NOTES,
            next_follow_up_at=timezone.now() - timedelta(days=1),
        )
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.OPEN
    assert not Activity.objects.filter(content=NOTES).exists()
    assert not Change.objects.filter(kind=EventKind.TASK_COMPLETED).exists()


def test_the_outcome_of_a_task_about_a_contact_is_logged_with_the_contact(crm, customer):
    contact = ContactFactory(customer=customer, name="陈经理")
    task = TaskFactory(assignee=crm.owner, customer=customer, subject=contact, title="回访陈经理")
    activity = services.complete_follow_up(
        task=task, by=crm.owner, kind=item("activity_kind", "call"), content=NOTES
    )
    assert activity.contact == contact and activity.customer == customer


def test_only_who_may_change_the_task_logs_its_outcome(crm, follow_up):
    with pytest.raises(PermissionDenied):
        services.complete_follow_up(
            task=follow_up, by=crm.outsider, kind=item("activity_kind", "call"), content=NOTES
        )
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.OPEN


def test_a_task_about_nothing_is_no_follow_up(crm):
    task = TaskFactory(assignee=crm.owner, title="整理名片")
    assert not services.is_follow_up(task)
    with pytest.raises(ValidationError):
        services.complete_follow_up(
            task=task, by=crm.owner, kind=item("activity_kind", "call"), content=NOTES
        )
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


# --- Ticking it in place ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["row", "item"])
def test_ticking_a_follow_up_completes_it_and_asks_how_it_went(client, crm, follow_up, variant):
    client.force_login(crm.owner)
    response = client.post(url("complete", follow_up), {"variant": variant}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.DONE  # skipping the form is just completing
    assert 'data-testid="task-outcome"' in html
    assert 'hx-swap-oob="beforeend:body"' in html
    assert f'hx-post="{url("outcome", follow_up)}"' in html
    assert f'name="outcome-{follow_up.pk}-content"' in html
    assert f'name="outcome-{follow_up.pk}-next_follow_up_at"' in html
    assert f'value="{variant}"' in html


def test_ticking_a_task_about_nothing_asks_nothing(client, crm):
    task = TaskFactory(assignee=crm.owner, title="整理名片")
    client.force_login(crm.owner)
    html = client.post(url("complete", task), {"variant": "row"}, **HTMX).content.decode()
    assert 'data-testid="task-outcome"' not in html
    assert 'data-testid="reopen"' in html


def test_the_form_logs_the_outcome_and_shows_the_next_task(client, crm, customer, follow_up):
    client.force_login(crm.owner)
    client.post(url("complete", follow_up), {"variant": "row"}, **HTMX)
    response = client.post(
        url("outcome", follow_up), {"variant": "row", **outcome_data(follow_up)}, **HTMX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="outcome-saved"' in html
    activity = Activity.objects.get(content=NOTES)
    assert activity.customer == customer and activity.kind.code == "visit"
    planned = Task.objects.get(activity=activity)
    assert planned.status == TaskStatus.OPEN
    assert reverse("tasks:detail", args=[planned.pk]) in html


def test_from_the_dashboard_the_counts_follow(client, crm, follow_up):
    client.force_login(crm.owner)
    client.post(url("complete", follow_up), {"variant": "item", "next": "/"}, **HTMX)
    data = outcome_data(
        follow_up, next_follow_up_at=local_input(timezone.now() + timedelta(minutes=30))
    )
    html = client.post(
        url("outcome", follow_up), {"variant": "item", **data}, **HTMX
    ).content.decode()
    assert 'id="count-today" hx-swap-oob="true"' in html
    assert "follow-ups-card" not in html  # the home lists tasks, not the customers again


def test_a_bad_outcome_is_shown_on_the_form_and_logs_nothing(client, crm, follow_up):
    client.force_login(crm.owner)
    for bad in (
        {"content": "   "},
        {"next_follow_up_at": local_input(timezone.now() - timedelta(days=1))},
        {"next_follow_up_at": "0001-01-01T00:00"},
        {"next_follow_up_at": "9999-12-31T23:59"},
        {"kind": "999999999"},
    ):
        response = client.post(
            url("outcome", follow_up), {"variant": "row", **outcome_data(follow_up, **bad)}, **HTMX
        )
        assert response.status_code == 200, bad
        html = response.content.decode()
        assert 'data-testid="outcome-form"' in html
        assert "invalid-feedback d-block" in html, bad
    assert not Activity.objects.filter(content=NOTES).exists()
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.OPEN


def test_an_outsider_cannot_reach_the_outcome(client, crm, follow_up):
    client.force_login(crm.outsider)
    assert client.get(url("outcome", follow_up)).status_code == 404
    assert client.post(url("outcome", follow_up), outcome_data(follow_up)).status_code == 404
    assert not Activity.objects.filter(content=NOTES).exists()


def test_who_may_not_log_follow_ups_is_not_asked(client, org, follow_up):
    """A role that may change tasks but not log follow-ups ticks them off, no more."""
    actions = crm_permissions(("view", "change"), types=("task", "customer"))
    clerk = org.set_scope(org.colleague, DataScope.ALL, actions)
    client.force_login(clerk)
    html = client.post(url("complete", follow_up), {"variant": "row"}, **HTMX).content.decode()
    assert 'data-testid="task-outcome"' not in html
    assert client.post(url("outcome", follow_up), outcome_data(follow_up)).status_code == 403


# --- The task's page ------------------------------------------------------------------------


def test_the_task_page_completes_and_logs_in_one_step(client, crm, customer, follow_up):
    client.force_login(crm.owner)
    detail = client.get(url("detail", follow_up)).content.decode()
    assert url("outcome", follow_up) in detail

    page = client.get(url("outcome", follow_up))
    assert page.status_code == 200
    assert 'data-testid="outcome-skip"' in page.content.decode()  # "just complete"

    response = client.post(url("outcome", follow_up), outcome_data(follow_up))
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    follow_up.refresh_from_db()
    assert follow_up.status == TaskStatus.DONE
    activity = Activity.objects.get(content=NOTES)
    assert Task.objects.filter(activity=activity, status=TaskStatus.OPEN).exists()
    timeline = client.get(response["Location"]).content.decode()
    assert NOTES in timeline
