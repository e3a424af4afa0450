"""Dates stay within 1900-01-01 … 2099-12-31 (crm.dates), wherever they come from.

A follow-up dated 0001-01-01 00:00 in Asia/Shanghai is year 0 in UTC: PostgreSQL stored
it and every page showing it then failed for everyone ("year -1 is out of range"). Now
forms, filters, report periods and services say what range they take and store nothing;
the database refuses such values too, and a migration repaired rows stored before.
"""

import importlib
from datetime import UTC, date, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Activity, Contact, Customer, DictionaryItem, Task
from crm.services import activities as activity_services

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    TaskFactory,
    UserFactory,
    crm_permissions,
    custom_field,
    give_crm_roles,
)
from .test_customers import activity_data

EDGE_MOMENTS = ["0001-01-01T00:00", "1899-12-31T23:59", "9999-12-31T23:59", "2100-01-01T00:00"]
EDGE_DAYS = ["0001-01-01", "1899-12-31", "2100-01-01", "9999-12-31"]
MESSAGE = "1900-01-01"  # the message names the range, in either language


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=("view", "add", "change", "delete"))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(
        manager, DataScope.DEPARTMENT_TREE, crm_permissions(("view", "add", "change"))
    )
    return org


def kind(code="call") -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code="activity_kind", code=code)


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
@pytest.mark.parametrize("field", ["occurred_at", "next_follow_up_at"])
def test_a_follow_up_at_the_edge_of_the_calendar_is_refused_and_pages_keep_working(
    client, crm, field, moment
):
    pool = CustomerFactory(name="公海客户", owner=None)
    client.force_login(crm.owner)
    response = client.post(
        reverse("customers:log_activity", args=[pool.pk]), activity_data(**{field: moment})
    )
    assert response.status_code == 200
    errors = response.context["activity_form"].errors
    assert field in errors and MESSAGE in errors[field][0]
    assert not Activity.objects.exists() and not Task.objects.exists()
    # The pages that broke for everyone.
    for user in (crm.owner, crm.manager, crm.colleague):
        client.force_login(user)
        assert client.get(reverse("customers:detail", args=[pool.pk])).status_code == 200
        assert client.get(reverse("customers:timeline", args=[pool.pk])).status_code == 200
        assert client.get(reverse("tasks:list")).status_code == 200
        assert client.get(reverse("dashboard")).status_code == 200


def test_a_follow_up_inside_the_range_is_logged(client, crm):
    customer = CustomerFactory(owner=crm.owner)
    client.force_login(crm.owner)
    response = client.post(
        reverse("customers:log_activity", args=[customer.pk]),
        activity_data(occurred_at="1900-01-01T00:00", next_follow_up_at="2099-12-31T23:59"),
    )
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert timezone.localtime(activity.occurred_at).date() == date(1900, 1, 1)
    assert client.get(reverse("customers:detail", args=[customer.pk])).status_code == 200
    assert client.get(reverse("tasks:list")).status_code == 200


@pytest.mark.parametrize("moment", EDGE_MOMENTS)
def test_a_task_due_at_the_edge_of_the_calendar_is_refused(client, crm, moment):
    client.force_login(crm.owner)
    response = client.post(
        reverse("tasks:create"), {"title": "寄样品", "due_at": moment, "assignee": crm.owner.pk}
    )
    assert response.status_code == 200
    assert MESSAGE in response.context["form"].errors["due_at"][0]
    assert not Task.objects.exists()


@pytest.mark.parametrize("day", EDGE_DAYS)
def test_a_contact_birthday_at_the_edge_of_the_calendar_is_refused(client, crm, day):
    customer = CustomerFactory(owner=crm.owner)
    client.force_login(crm.owner)
    response = client.post(
        reverse("contacts:create"), {"customer": customer.pk, "name": "李雷", "birthday": day}
    )
    assert response.status_code == 200
    assert MESSAGE in response.context["form"].errors["birthday"][0]
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("field_type", "value"),
    [
        ("date", "0001-01-01"),
        ("date", "9999-12-31"),
        ("datetime", "0001-01-01 00:00"),
        ("datetime", "9999-12-31 23:59"),
    ],
)
def test_a_custom_date_field_at_the_edge_of_the_calendar_is_refused(client, crm, field_type, value):
    custom_field("signed", field_type, label="签约日期")
    customer = CustomerFactory(owner=crm.owner, name="华东机械")
    client.force_login(crm.owner)
    response = client.post(
        reverse("customers:edit", args=[customer.pk]),
        {"name": "华东机械", "cf_signed": value},
    )
    assert response.status_code == 200
    assert MESSAGE in response.context["form"].errors["cf_signed"][0]
    customer.refresh_from_db()
    assert customer.custom == {}


@pytest.mark.parametrize(
    "query",
    [
        "created_after=0001-01-01",
        "created_before=9999-12-31",
        "last_activity_after=0001-01-01&last_activity_before=9999-12-31",
    ],
)
def test_a_list_filter_at_the_edge_of_the_calendar_says_what_it_takes(client, crm, query):
    CustomerFactory(owner=crm.owner)
    client.force_login(crm.manager)
    response = client.get(f"{reverse('customers:list')}?{query}")
    assert response.status_code == 200
    assert MESSAGE in response.text


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("tasks:list", "due_on_after=0001-01-01"),
        ("tasks:list", "completed_before=9999-12-31"),
        ("activities:list", "occurred_after=0001-01-01&occurred_before=9999-12-31"),
        ("contacts:list", "created_before=9999-12-31"),
        ("deals:list", "expected_close_before=9999-12-31&closed_after=0001-01-01"),
        ("deals:list", "entered_after=0001-01-01"),
        ("leads:list", "created_after=0001-01-01"),
    ],
)
def test_other_lists_filter_at_the_edge_of_the_calendar_without_failing(client, crm, url, query):
    client.force_login(crm.admin)
    response = client.get(f"{reverse(url)}?{query}")
    assert response.status_code == 200
    assert MESSAGE in response.text


@pytest.mark.parametrize(
    ("first", "last"), [("0001-01-01", "2026-01-31"), ("2026-01-01", "9999-12-31")]
)
def test_a_report_period_at_the_edge_of_the_calendar_says_what_it_takes(client, crm, first, last):
    client.force_login(crm.admin)
    response = client.get(
        reverse("reports:report", args=["activity"]),
        {"period": "custom", "first": first, "last": last},
    )
    assert response.status_code == 200
    assert MESSAGE in response.text


def test_services_refuse_out_of_range_moments_too(crm):
    customer = CustomerFactory(owner=crm.owner)
    year_one = timezone.make_aware(datetime(1, 1, 1))
    with pytest.raises(ValidationError) as raised:
        activity_services.log_activity(
            customer=customer, by=crm.owner, kind=kind(), content="x", occurred_at=year_one
        )
    assert "occurred_at" in raised.value.message_dict
    with pytest.raises(ValidationError):
        activity_services.log_activity(
            customer=customer,
            by=crm.owner,
            kind=kind(),
            content="x",
            next_follow_up_at=timezone.make_aware(datetime(9999, 12, 31, 23, 59)),
        )
    assert not Activity.objects.exists() and not Task.objects.exists()


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Activity, "occurred_at", datetime(1, 1, 1, tzinfo=UTC)),
        (Activity, "next_follow_up_at", datetime(9999, 12, 31, tzinfo=UTC)),
        (Task, "due_at", datetime(1, 1, 2, tzinfo=UTC)),
        (Customer, "next_follow_up_at", datetime(1, 1, 2, tzinfo=UTC)),
        (Customer, "last_activity_at", datetime(9999, 1, 1, tzinfo=UTC)),
        (Contact, "birthday", date(1, 1, 1)),
    ],
)
def test_the_database_refuses_what_no_page_could_read_back(crm, model, field, value):
    customer = CustomerFactory(owner=crm.owner)
    record = {
        Activity: lambda: ActivityFactory(customer=customer),
        Task: lambda: TaskFactory(assignee=crm.owner),
        Customer: lambda: customer,
        Contact: lambda: ContactFactory(customer=customer),
    }[model]()
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=record.pk).update(**{field: value})


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL could store such rows"
)
def test_the_migration_repairs_rows_stored_before_dates_were_bounded(crm):
    """Without the constraints (dropped in this test's transaction), store year-1 rows
    as the old code did; the migration's repair makes the constraints hold again."""
    repair = importlib.import_module("crm.migrations.0012_repair_dates").repair_dates
    constrained = [
        (model, constraint)
        for model in (Activity, Contact, Customer, Task)
        for constraint in model._meta.constraints
        if constraint.name.endswith("_range")
    ]
    with connection.schema_editor() as editor:
        for model, constraint in constrained:
            editor.remove_constraint(model, constraint)
    owner = crm.owner
    logged = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    year_one = datetime(1, 1, 1, 12, tzinfo=UTC)
    customer = CustomerFactory(owner=owner, name="旧客户")
    Customer.objects.filter(pk=customer.pk).update(
        last_activity_at=year_one, next_follow_up_at=year_one
    )
    for occurred in (year_one, logged - timedelta(days=1)):
        activity = ActivityFactory(customer=customer)
        Activity.objects.filter(pk=activity.pk).update(
            occurred_at=occurred, next_follow_up_at=year_one, created_at=logged
        )
    task = TaskFactory(assignee=owner, customer=customer)
    Task.objects.filter(pk=task.pk).update(due_at=year_one)
    contact = ContactFactory(customer=customer)
    Contact.objects.filter(pk=contact.pk).update(birthday=date(1, 1, 1))

    repair(django_apps, None)
    connection.check_constraints()  # fire the deferred checks: the table may be altered
    with connection.schema_editor() as editor:
        for model, constraint in constrained:
            editor.add_constraint(model, constraint)  # fails if a row is still out of range

    customer.refresh_from_db()
    assert customer.next_follow_up_at is None
    assert customer.last_activity_at == logged  # the repaired follow-up's logged time
    occurred = Activity.objects.filter(customer=customer).values_list("occurred_at", flat=True)
    assert sorted(occurred) == [logged - timedelta(days=1), logged]
    assert not Activity.objects.filter(next_follow_up_at__isnull=False).exists()
    task.refresh_from_db()
    contact.refresh_from_db()
    assert task.due_at is None and contact.birthday is None
    client = Client()
    client.force_login(owner)
    assert client.get(reverse("customers:detail", args=[customer.pk])).status_code == 200


def test_a_stage_move_fills_a_date_only_within_the_range(crm):
    """The board's 'fill in to move' form: the service validates the value as the model
    field does (its validators included)."""
    from pipelines import services as pipeline_services
    from pipelines.models import Pipeline

    pipeline = Pipeline.objects.get(kind="deal", name="零售")
    first, quote = pipeline.stages.get(name="意向"), pipeline.stages.get(name="报价")
    quote.required_fields = ["expected_close_date"]
    quote.save()
    role = crm.owner.role
    role.permissions = [*role.permissions, "deal.view", "deal.change"]
    role.save()
    customer = CustomerFactory(owner=crm.owner)
    deal = DealFactory(title="展厅", customer=customer, owner=crm.owner, stage=first)
    with pytest.raises(ValidationError) as raised:
        pipeline_services.move_to_stage(
            record=deal, stage=quote, by=crm.owner, values={"expected_close_date": "9999-12-31"}
        )
    assert MESSAGE in raised.value.message_dict["expected_close_date"][0]
    deal.refresh_from_db()
    assert deal.stage == first and deal.expected_close_date is None
