"""Customer service (客服): sees every customer's whole history and logs the service calls
it makes (a follow-up), and changes nothing else: no edits, no tasks, no transfers, no
stage moves. The README's table says the same of the demo role."""

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.demo import seed_organisation
from accounts.models import User
from crm.models import Activity, DictionaryItem, Task

from .factories import ActivityFactory, CustomerFactory, TaskFactory

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def zhaomin(db):
    seed_organisation()
    return User.objects.select_related("role").get(username="zhaomin")


@pytest.fixture
def customer(db):
    owner = User.objects.get(username="wangfang")
    customer = CustomerFactory(owner=owner, name="华东精密机械")
    ActivityFactory(customer=customer, content="上周电话：设备报修")
    TaskFactory(assignee=owner, customer=customer, title="回访报修")
    return customer


def call(**overrides):
    data = {
        "kind": DictionaryItem.objects.get(dictionary__code="activity_kind", code="call").pk,
        "content": "客户来电询问保修期，已告知两年。",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
    }
    data.update(overrides)
    return data


def test_customer_service_reads_the_whole_history_and_logs_a_call(client, zhaomin, customer):
    client.force_login(zhaomin)
    page = client.get(reverse("customers:detail", args=[customer.pk]))
    assert page.status_code == 200
    assert "上周电话：设备报修" in page.text
    form = page.context["activity_form"]
    assert "next_follow_up_at" not in form.fields  # a plan would be a task for the owner
    later = (timezone.localtime() + timezone.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("customers:log_activity", args=[customer.pk]), call(next_follow_up_at=later)
    )
    assert response.status_code == 302
    logged = Activity.objects.get(author=zhaomin)
    assert logged.customer == customer and logged.next_follow_up_at is None
    assert not Task.objects.filter(created_by=zhaomin).exists()


def test_customer_service_changes_nothing_else(client, zhaomin, customer):
    client.force_login(zhaomin)
    task = Task.objects.get(customer=customer)
    refused = [
        client.get(reverse("customers:edit", args=[customer.pk])),
        client.post(reverse("customers:release", args=[customer.pk])),
        client.post(reverse("customers:transfer", args=[customer.pk]), {"to_owner": zhaomin.pk}),
        client.get(reverse("customers:create")),
        client.get(reverse("tasks:create")),
        client.post(reverse("tasks:complete", args=[task.pk])),
        client.get(reverse("contacts:create")),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    customer.refresh_from_db()
    task.refresh_from_db()
    assert customer.owner.username == "wangfang" and task.is_open


def test_the_readme_says_what_the_demo_role_does(zhaomin):
    granted = set(zhaomin.role.permissions)
    assert "activity.add" in granted
    assert not {p for p in granted if not p.endswith(".view")} - {"activity.add"}
    row = next(line for line in README.read_text().splitlines() if "`zhaomin`" in line)
    assert "logs follow-ups" in row and "changes nothing else" in row
