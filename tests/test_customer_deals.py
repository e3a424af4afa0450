"""Customers and the records other apps hang on them (deals, converted leads), where crm
and pipelines meet: the customer's history shows a deal's or a task's changes only to
people who may see that deal or task, merging two customers moves their deals and
converted leads to the survivor, and a rep can still edit her deal after its customer
went to a colleague."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import DataScope
from crm.models import Change, ChangeAction, Customer, Task
from crm.services import customers as customer_services
from crm.services import tasks as task_services
from crm.services.history import record_change
from pipelines import services
from pipelines.models import Deal, Lead

from .conftest import edit
from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    UserFactory,
    crm_permissions,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
ACTIONS = ("view", "add", "change", "delete")


@pytest.fixture
def team(org):
    """Reps with every action on customers, contacts, tasks, leads and deals (scope own);
    a manager of 销售一部 (scope department) who sees the owner's and colleague's."""
    perms = crm_permissions(actions=ACTIONS, types=TYPES)
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT, perms)
    for user in (org.owner, org.colleague, org.sub_member, org.outsider, org.manager):
        user.language = "en"
        user.save(update_fields=["language"])
    return org


@pytest.fixture
def customer(team) -> Customer:
    return CustomerFactory(owner=team.owner, name="上海恒信机械设备有限公司")


def make_deal(by, customer, **fields) -> Deal:
    fields.setdefault("title", "数控机床采购")
    return DealFactory.created_by(by, customer=customer, **fields)


def login(client, user):
    client.force_login(user)
    return client


def history(client, customer):
    return client.get(reverse("customers:history", args=[customer.pk]))


def about(response) -> set[str]:
    """The record types the history entries on the page are about."""
    return {
        ContentType.objects.get_for_id(entry["change"].record_type_id).model
        for entry in response.context["history"]
    }


# --- 1. History obeys the visibility of the record it is about ---------------------------


@pytest.fixture
def busy_customer(team, customer):
    """The owner's customer with a contact, a deal (renamed, priced, moved a stage) and a
    done task (renamed), all the owner's, each with its history on the customer."""
    contact = ContactFactory(customer=customer, name="陈经理")
    record_change(contact, by=team.owner, changes=edit("title", "", "总监"))
    deal = make_deal(team.owner, customer, contact=contact)
    deal.title, deal.amount = "五轴加工中心采购", Decimal("880000")
    services.update_deal(deal=deal, by=team.owner)
    services.move_to_stage(record=deal, stage=stage("零售", "报价"), by=team.owner)
    task = task_services.create_task(
        task=Task(title="寄样品", customer=customer, assignee=team.owner), by=team.owner
    )
    task.title = "寄样品给恒信"
    task_services.update_task(task=task, by=team.owner)
    task_services.complete_task(task=task, by=team.owner)  # a done task stays the owner's
    return customer


DEAL_TEXTS = ("五轴加工中心采购", "880000", "Quotation")
TASK_TEXTS = ("寄样品给恒信",)


def test_history_hides_the_deal_from_the_colleague_the_customer_was_transferred_to(
    client, team, busy_customer
):
    customer_services.transfer_customers(
        customers=Customer.objects.filter(pk=busy_customer.pk), to=team.colleague, by=team.manager
    )
    response = history(login(client, team.colleague), busy_customer)
    assert response.status_code == 200
    # The task is hers to see (she owns its customer); the deal stays the owner's.
    assert about(response) == {"customer", "contact", "task"}
    for text in DEAL_TEXTS:
        assert text not in response.text
    assert "寄样品给恒信" in response.text
    # The manager of 销售一部 sees both people's records, so the deal too.
    response = history(login(client, team.manager), busy_customer)
    assert about(response) == {"customer", "contact", "task", "deal"}
    for text in DEAL_TEXTS + TASK_TEXTS:
        assert text in response.text


def test_history_of_a_pool_customer_hides_deals_and_tasks_of_others(client, team, busy_customer):
    customer_services.release_customers(
        customers=Customer.objects.filter(pk=busy_customer.pk), by=team.owner
    )
    response = history(login(client, team.colleague), busy_customer)
    assert response.status_code == 200  # everyone sees a pool customer...
    assert about(response) == {"customer", "contact"}  # ...not the owner's deal and task
    for text in DEAL_TEXTS + TASK_TEXTS:
        assert text not in response.text
    # The owner still sees the pool customer, and her deal and task in its history.
    response = history(login(client, team.owner), busy_customer)
    assert about(response) == {"customer", "contact", "task", "deal"}
    for text in DEAL_TEXTS + TASK_TEXTS:
        assert text in response.text
    response = history(login(client, team.manager), busy_customer)
    assert about(response) == {"customer", "contact", "task", "deal"}


def test_hidden_history_entries_do_not_thin_out_the_pages(client, team, customer):
    deal = make_deal(team.owner, customer)
    for n in range(40):
        record_change(deal, by=team.owner, changes=edit("title", "", n))
        if n < 31:
            record_change(customer, by=team.owner, changes=edit("address", "", n))
    customer_services.release_customers(
        customers=Customer.objects.filter(pk=customer.pk), by=team.owner
    )
    client = login(client, team.colleague)
    first = history(client, customer)
    assert len(first.context["history"]) == 30 and first.context["history_next"] == 2
    assert about(first) == {"customer"}
    second = client.get(reverse("customers:history", args=[customer.pk]), {"page": 2})
    # 31 address changes and the return to the pool.
    assert len(second.context["history"]) == 2 and second.context["history_next"] is None


def test_history_of_deleted_records_shows_only_to_readers_who_see_everything(
    client, team, customer
):
    contact = ContactFactory(customer=customer, name="离职的人")
    record_change(contact, by=team.owner, changes=edit("title", "", "总监"))
    contact.delete()
    assert about(history(login(client, team.owner), customer)) == set()
    everything = team.set_scope(
        team.colleague, DataScope.ALL, crm_permissions(actions=ACTIONS, types=TYPES)
    )
    assert about(history(login(client, everything), customer)) == {"contact"}


# --- 2. Merging moves deals and converted leads ------------------------------------------


def test_merge_moves_deals_with_history_and_repoints_converted_leads(team, customer):
    other = CustomerFactory(owner=team.owner, name="恒信机械")
    contact = ContactFactory(customer=other, name="陈经理")
    first = make_deal(team.owner, other, contact=contact)
    second = make_deal(team.owner, other, title="备件年度合同", owner=team.colleague)
    lead = LeadFactory(
        person_name="陈经理",
        company_name="恒信机械",
        owner=team.owner,
        stage=stage("线索", "已转化"),
        converted_customer=other,
        converted_contact=contact,
        converted_deal=first,
    )
    assert customer_services.merge_counts(other)["deals"] == 2

    customer_services.merge_customers(survivor=customer, others=[other], by=team.owner)

    assert not Customer.objects.filter(pk=other.pk).exists()
    for deal in (first, second):
        deal.refresh_from_db()
        assert deal.customer_id == customer.pk
    assert first.contact_id == contact.pk  # the contact moved along
    assert Deal.objects.count() == 2
    deal_type = ContentType.objects.get_for_model(Deal)
    moved = Change.objects.filter(
        record_type=deal_type, action=ChangeAction.UPDATED, changes__0__field="customer"
    )
    assert {c.record_id for c in moved} == {first.pk, second.pk}
    for change in moved:
        assert change.customer_id == customer.pk and change.user == team.owner
        assert change.changes == [
            {"field": "customer", "old": "恒信机械", "new": "上海恒信机械设备有限公司"}
        ]
    lead.refresh_from_db()
    assert lead.converted_customer_id == customer.pk
    relinked = Change.objects.get(record_type=ContentType.objects.get_for_model(Lead))
    assert relinked.record_id == lead.pk
    assert relinked.changes == [
        {"field": "converted_customer", "old": "恒信机械", "new": "上海恒信机械设备有限公司"}
    ]
    assert lead.converted_contact_id == contact.pk and lead.converted_deal_id == first.pk


def test_merge_page_counts_the_deals_and_merging_them_is_no_error(client, team, customer):
    other = CustomerFactory(owner=team.owner, name=customer.name)  # a true duplicate
    deals = [make_deal(team.owner, other, title=f"商机{n}") for n in range(3)]
    client = login(client, team.owner)
    url = reverse("customers:merge", args=[customer.pk])
    response = client.get(url, {"other": other.pk})
    assert response.status_code == 200
    assert "3 deals move" in response.text
    response = client.post(url, {"other": other.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    assert not Customer.objects.filter(pk=other.pk).exists()
    assert set(Deal.objects.values_list("customer_id", flat=True)) == {customer.pk}
    assert Deal.objects.filter(pk__in=[d.pk for d in deals]).count() == 3
    # Each deal's history says its customer changed, though the names read the same.
    moved = Change.objects.filter(
        record_type=ContentType.objects.get_for_model(Deal), changes__0__field="customer"
    )
    assert {c.record_id for c in moved} == {d.pk for d in deals}
    assert all(c.note and c.customer_id == customer.pk for c in moved)


# --- 3. A rep edits her deal whose customer went to a colleague ---------------------------


def test_owner_saves_her_deal_after_its_customer_was_transferred(client, team, customer):
    contact = ContactFactory(customer=customer, name="陈经理")
    deal = make_deal(team.owner, customer, contact=contact, amount=Decimal("1000"))
    customer_services.transfer_customers(
        customers=Customer.objects.filter(pk=customer.pk), to=team.colleague, by=team.manager
    )
    client = login(client, team.owner)
    url = reverse("deals:edit", args=[deal.pk])
    form = client.get(url).context["form"]
    # The current customer and contact are offered, so the browser posts them back.
    assert (customer.pk, customer.name) in list(form.fields["customer"].widget.choices)
    assert (contact.pk, "陈经理") in list(form.fields["contact"].widget.choices)
    data = {
        "title": "数控机床采购（二期）",
        "customer": customer.pk,
        "contact": contact.pk,
        "amount": "1000",
        "owner": team.owner.pk,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    deal.refresh_from_db()
    assert deal.title == "数控机床采购（二期）"
    assert deal.customer_id == customer.pk and deal.contact_id == contact.pk

    # Another contact of that customer, or another customer, is still refused.
    other_contact = ContactFactory(customer=customer, name="王助理")
    response = client.post(url, {**data, "title": "x", "contact": other_contact.pk})
    assert response.status_code == 200 and "contact" in response.context["form"].errors
    theirs = CustomerFactory(owner=team.colleague)
    response = client.post(url, {**data, "title": "x", "customer": theirs.pk, "contact": ""})
    assert response.status_code == 200 and "customer" in response.context["form"].errors
    deal.refresh_from_db()
    assert deal.title == "数控机床采购（二期）" and deal.contact_id == contact.pk


def test_the_deal_service_still_refuses_a_customer_the_user_may_not_see(team, customer):
    deal = make_deal(team.owner, customer)
    customer_services.transfer_customers(
        customers=Customer.objects.filter(pk=customer.pk), to=team.colleague, by=team.manager
    )
    deal = Deal.objects.get(pk=deal.pk)  # as a page loads it, its customer now the colleague's
    deal.title = "改名"
    services.update_deal(deal=deal, by=team.owner)  # her deal's own customer: fine
    deal.customer = CustomerFactory(owner=team.outsider)
    with pytest.raises(PermissionDenied):
        services.update_deal(deal=deal, by=team.owner)
    deal.refresh_from_db()
    assert deal.customer_id == customer.pk and deal.title == "改名"
