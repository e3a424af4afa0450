"""One validation path: a service called directly (as an import, the API or an automation
rule will call it, with no form in front) refuses what the form refuses, on the same
field and in the same words, and stores nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import DataScope
from crm.forms import ActivityForm, ContactForm, CustomerForm, TaskForm
from crm.models import Activity, Contact, Customer, Task
from crm.services import activities, contacts, customers, tasks
from pipelines import services as pipeline_services
from pipelines.forms import DealForm, LeadForm
from pipelines.models import Deal, Lead

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    crm_permissions,
    custom_field,
    item,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def rep(org):
    perms = crm_permissions(actions=("view", "add", "change", "delete"), types=TYPES)
    return org.set_scope(org.owner, DataScope.OWN, perms)


@pytest.fixture
def customer(rep) -> Customer:
    return CustomerFactory(owner=rep, name="上海恒信机械设备有限公司")


def local(text: str) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(text))


def form_errors(form) -> dict[str, list[str]]:
    assert not form.is_valid()
    return {key: [str(m) for m in messages] for key, messages in form.errors.items()}


def service_errors(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        call()
    return refused.value.message_dict


def same_refusal(form_result, service_result, field: str, message: str | None = None):
    """Both refuse `field`; with `message`, both say exactly that."""
    assert field in form_result, form_result
    assert field in service_result, service_result
    if message is not None:
        assert message in form_result[field], form_result[field]
        assert message in service_result[field], service_result[field]
    else:
        assert set(form_result[field]) & set(service_result[field]), (form_result, service_result)


# --- Customers --------------------------------------------------------------------------------

CUSTOMER_CASES = [
    ("blank name", {"name": "   "}, "name", "Enter the customer's name."),
    ("bad phone", {"phone": "phone me"}, "phone", None),
    ("bad email", {"email": "not-an-email"}, "email", None),
    ("address too long", {"address": "路" * 301}, "address", None),
]


@pytest.mark.parametrize(
    ("case", "values", "field", "message"), CUSTOMER_CASES, ids=[c[0] for c in CUSTOMER_CASES]
)
def test_a_customer_is_refused_alike(rep, case, values, field, message):
    data = {"name": "杭州云帆科技", "owner": rep.pk, **values}
    by_form = form_errors(CustomerForm(data, user=rep))
    record = Customer(**{"name": "杭州云帆科技", "owner": rep, **values})
    by_service = service_errors(lambda: customers.create_customer(customer=record, by=rep))
    same_refusal(by_form, by_service, field, message)
    assert not Customer.objects.exists()


def test_a_tag_too_long_is_refused_alike(rep):
    long = "长" * 51
    message = f"“{long}” is too long for a tag (50 characters at most)."
    by_form = form_errors(CustomerForm({"name": "杭州云帆科技", "new_tags": long}, user=rep))
    assert by_form["new_tags"] == [message]
    record = Customer(name="杭州云帆科技", owner=rep)
    with pytest.raises(ValidationError) as refused:
        customers.create_customer(customer=record, by=rep, tags=[long])
    assert refused.value.messages == [message]
    assert not Customer.objects.exists()


def test_a_custom_field_value_is_refused_alike(rep):
    custom_field("staff_count", "integer", label="员工人数")
    by_form = form_errors(
        CustomerForm({"name": "杭州云帆科技", "owner": rep.pk, "cf_staff_count": "很多"}, user=rep)
    )
    record = Customer(name="杭州云帆科技", owner=rep, custom={"staff_count": "很多"})
    by_service = service_errors(lambda: customers.create_customer(customer=record, by=rep))
    same_refusal(by_form, by_service, "cf_staff_count")


# --- Contacts ---------------------------------------------------------------------------------

CONTACT_CASES = [
    ("blank name", {"name": "  "}, "name", "Enter the contact's name."),
    ("bad mobile", {"mobile": "12"}, "mobile", None),
    ("birthday in year 1", {"birthday": "0001-01-01"}, "birthday", None),
]


@pytest.mark.parametrize(
    ("case", "values", "field", "message"), CONTACT_CASES, ids=[c[0] for c in CONTACT_CASES]
)
def test_a_contact_is_refused_alike(rep, customer, case, values, field, message):
    data = {"customer": customer.pk, "name": "张伟", **values}
    by_form = form_errors(ContactForm(data, user=rep))
    fields = {"name": "张伟", **values}
    if "birthday" in values:
        fields["birthday"] = datetime(1, 1, 1).date()
    record = Contact(customer=customer, **fields)
    by_service = service_errors(lambda: contacts.create_contact(contact=record, by=rep))
    same_refusal(by_form, by_service, field, message)
    assert not Contact.objects.exists()


# --- Follow-ups and tasks ---------------------------------------------------------------------


def activity_cases():
    now = timezone.localtime().replace(second=0, microsecond=0)
    later = now + timedelta(days=1)
    return [
        (
            "in the future",
            {"occurred_at": later},
            "occurred_at",
            "A follow-up that has happened cannot be in the future.",
        ),
        (
            "next follow-up not after it",
            {"occurred_at": now, "next_follow_up_at": now - timedelta(hours=1)},
            "next_follow_up_at",
            "The next follow-up must be later than this one.",
        ),
        ("nothing written", {"content": ""}, "content", "Write what happened."),
        ("too long", {"content": "话" * 5001}, "content", None),
        ("in year 1", {"occurred_at": local("0001-01-02T10:00")}, "occurred_at", None),
    ]


@pytest.mark.parametrize("index", range(len(activity_cases())))
def test_a_follow_up_is_refused_alike(rep, customer, index):
    _case, values, field, message = activity_cases()[index]
    fields = {
        "kind": item("activity_kind", "call"),
        "content": "电话沟通",
        "occurred_at": timezone.localtime().replace(second=0, microsecond=0),
        "next_follow_up_at": None,
        **values,
    }
    data = {
        "kind": fields["kind"].pk,
        "content": fields["content"],
        "occurred_at": fields["occurred_at"].strftime("%Y-%m-%dT%H:%M"),
        "next_follow_up_at": (
            fields["next_follow_up_at"].strftime("%Y-%m-%dT%H:%M")
            if fields["next_follow_up_at"]
            else ""
        ),
    }
    if fields["occurred_at"].year == 1:
        data["occurred_at"] = "0001-01-02T10:00"
    by_form = form_errors(ActivityForm(data, customer=customer, user=rep))
    by_service = service_errors(
        lambda: activities.log_activity(customer=customer, by=rep, **fields)
    )
    same_refusal(by_form, by_service, field, message)
    assert not Activity.objects.exists()


def test_a_task_is_refused_alike(rep):
    data = {"title": "", "assignee": rep.pk, "due_at": "9999-12-31T10:00"}
    by_form = form_errors(TaskForm(data, user=rep))
    record = Task(title="", assignee=rep, due_at=local("9999-12-31T10:00"))
    by_service = service_errors(lambda: tasks.create_task(task=record, by=rep))
    assert "title" in by_form and "title" in by_service
    same_refusal(by_form, by_service, "due_at")
    assert not Task.objects.exists()


# --- Leads and deals --------------------------------------------------------------------------


def test_a_lead_nobody_can_reach_is_refused_alike(rep):
    message = "Give at least a name, a company, a phone number, an email or a WeChat id."
    by_form = form_errors(LeadForm({"owner": rep.pk}, user=rep))
    by_service = service_errors(lambda: pipeline_services.create_lead(lead=Lead(owner=rep), by=rep))
    same_refusal(by_form, by_service, "__all__", message)
    assert not Lead.objects.exists()


def deal_cases(customer):
    elsewhere = ContactFactory(customer=CustomerFactory(owner=customer.owner))
    return [
        (
            "contact of another customer",
            {"contact": elsewhere},
            "contact",
            "The contact must belong to the deal's customer.",
        ),
        ("negative amount", {"amount": Decimal("-1")}, "amount", None),
        (
            "closing in 1899",
            {"expected_close_date": datetime(1899, 12, 31).date()},
            "expected_close_date",
            None,
        ),
    ]


@pytest.mark.parametrize("index", range(3))
def test_a_deal_is_refused_alike(rep, customer, index):
    _case, values, field, message = deal_cases(customer)[index]
    fields = {"title": "数控机床采购", "customer": customer, "owner": rep, **values}
    data = {
        key: (
            value.pk
            if hasattr(value, "pk")
            else value.isoformat()
            if hasattr(value, "isoformat")
            else value
        )
        for key, value in fields.items()
    }
    data.setdefault("amount", "0")
    by_form = form_errors(DealForm(data, user=rep))
    by_service = service_errors(lambda: pipeline_services.create_deal(deal=Deal(**fields), by=rep))
    same_refusal(by_form, by_service, field, message)
    assert not Deal.objects.exists()


def test_a_stage_move_does_not_link_a_contact_the_mover_cannot_see(org, rep, customer):
    """The board's required-fields form offers only contacts the mover sees; the service
    (which the API and rules call) refuses another one too, and keeps the current one
    valid after the customer went to a colleague."""
    current, other = ContactFactory(customer=customer), ContactFactory(customer=customer)
    deal = DealFactory(owner=rep, customer=customer, contact=current, amount=Decimal("1000"))
    Customer.objects.filter(pk=customer.pk).update(owner=org.colleague)
    quote = stage("零售", "报价")
    with pytest.raises(ValidationError) as refused:
        pipeline_services.move_to_stage(
            record=deal, stage=quote, by=rep, values={"contact": other.pk}
        )
    assert list(refused.value.message_dict) == ["contact"]
    assert Deal.objects.get(pk=deal.pk).stage_id == deal.stage_id
    pipeline_services.move_to_stage(
        record=deal, stage=quote, by=rep, values={"contact": current.pk}
    )
    assert Deal.objects.get(pk=deal.pk).stage_id == quote.pk
