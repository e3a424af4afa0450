"""The API's record actions: a lead's or deal's stage changes only through `move`
(pipelines.services.move_to_stage: required fields, lost reasons and stale views
refused with the reason), leads are converted, claimed, released and transferred,
customers claimed from and returned to the public pool, tasks completed and reopened —
each through the service the pages use, so history and events are the same."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import DataScope
from crm.models import Change, Contact, Customer, EventKind, TaskStatus
from pipelines.models import Deal, DealStatus, LeadStatus, StageHistory

from .api_support import TYPES
from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    stage,
)


@pytest.fixture
def deal(rep):
    return DealFactory.created_by(rep, title="远景首单", customer=CustomerFactory(owner=rep))


def move(api, record, **body):
    kind = "deals" if isinstance(record, Deal) else "leads"
    return api.post(f"/api/v1/{kind}/{record.pk}/move/", body)


def errors(response) -> dict:
    return response.json().get("errors", {})


# --- Stage moves ------------------------------------------------------------------------------


def test_a_stage_is_not_writable_by_an_edit(api, deal):
    response = api.patch(f"/api/v1/deals/{deal.pk}/", {"stage": stage("零售", "报价").pk})
    assert response.status_code == 400
    assert set(errors(response)) == {"stage"}
    for field in ("status", "probability", "pipeline", "lost_reason"):
        assert field in errors(api.patch(f"/api/v1/deals/{deal.pk}/", {field: None}))
    deal.refresh_from_db()
    assert deal.stage.name == "意向"


def test_a_new_deal_starts_in_the_stage_given_as_on_the_page(api, rep):
    customer = CustomerFactory(owner=rep)
    response = api.post(
        "/api/v1/deals/",
        {"title": "新商机", "customer": customer.pk, "amount": "5万", "stage": "产品介绍"},
    )
    assert response.status_code == 400  # two pipelines have a stage of that name
    assert set(errors(response)) == {"stage"}
    response = api.post(
        "/api/v1/deals/",
        {
            "title": "新商机",
            "customer": customer.pk,
            "pipeline": "零售",
            "stage": "产品介绍",
        },
    )
    assert response.status_code == 400  # 产品介绍 needs a contact
    assert set(errors(response)) == {"contact"}
    contact = ContactFactory(customer=customer)
    response = api.post(
        "/api/v1/deals/",
        {
            "title": "新商机",
            "customer": customer.pk,
            "contact": contact.pk,
            "amount": "5万",
            "pipeline": stage("批发", "产品介绍").pipeline_id,
            "stage": "产品介绍",
        },
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["stage"] == stage("批发", "产品介绍").pk
    assert data["amount"] == "50000.00"
    assert data["owner"] == rep.pk
    assert StageHistory.objects.filter(record_id=data["id"]).count() == 1


def test_a_new_deal_cannot_start_closed(api, rep):
    customer = CustomerFactory(owner=rep)
    response = api.post(
        "/api/v1/deals/",
        {"title": "新商机", "customer": customer.pk, "stage": stage("零售", "输单").pk},
    )
    assert response.status_code == 400
    assert "stage" in errors(response)


def test_moving_a_deal_writes_its_stage_history_and_event(api, deal):
    response = move(
        api,
        deal,
        stage=stage("零售", "产品介绍").pk,
        expected_stage=deal.stage_id,
        values={"contact": ContactFactory(customer=deal.customer).pk},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["stage_name"] == stage("零售", "产品介绍").display_name
    deal.refresh_from_db()
    assert deal.stage.name == "产品介绍"
    assert deal.contact is not None
    event = Change.objects.filter(record_id=deal.pk).order_by("-pk").first()
    assert event.kind == EventKind.STAGE_MOVED
    assert StageHistory.objects.filter(record_id=deal.pk).count() == 2


def test_a_move_missing_required_fields_is_refused_and_names_them(api, deal):
    response = move(api, deal, stage="报价")
    assert response.status_code == 400
    assert errors(response)["missing_fields"] == ["contact", "amount"]
    assert "stage" in errors(response)
    deal.refresh_from_db()
    assert deal.stage.name == "意向"


def test_a_required_custom_field_can_be_filled_with_the_move(api, deal):
    custom_field("budget", "money", record_type="deal", label="预算")
    quote = stage("零售", "报价")
    quote.required_fields = ["cf_budget"]
    quote.save()
    assert errors(move(api, deal, stage=quote.pk))["missing_fields"] == ["cf_budget"]
    bad = move(api, deal, stage=quote.pk, values={"cf_budget": "很多"})
    assert bad.status_code == 400 and "cf_budget" in errors(bad)["values"]
    done = move(api, deal, stage=quote.pk, values={"cf_budget": "4.8万"})
    assert done.status_code == 200, done.json()
    assert done.json()["custom"] == {"budget": "48000.00"}


def test_losing_needs_a_lost_reason(api, deal):
    lost = stage("零售", "输单")
    response = move(api, deal, stage=lost.pk)
    assert response.status_code == 400
    assert "lost_reason" in errors(response)
    assert errors(move(api, deal, stage=lost.pk, lost_reason="nope"))["lost_reason"]
    done = move(api, deal, stage=lost.pk, lost_reason="price", lost_note="贵了")
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == DealStatus.LOST
    assert done.json()["lost_reason"]["code"] == "price"


def test_a_move_from_a_stale_view_is_a_conflict(api, deal):
    seen = deal.stage_id
    assert move(api, deal, stage=stage("零售", "输单").pk, lost_reason="price").status_code == 200
    response = move(api, deal, stage=stage("零售", "意向").pk, expected_stage=seen)
    assert response.status_code == 409
    assert response.json()["code"] == "stale"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"stage": None},
        {"stage": "no such stage"},
        {"stage": 10**30},
        {"stage": ["a"]},
        {"stage": "意向", "expected_stage": "abc"},
        {"stage": "意向", "expected_stage": 10**30},
        {"stage": "意向", "values": "x"},
        {"stage": "意向", "values": {"id": 1}},
        {"stage": "意向", "values": {"amount": {"a": 1}}},
        {"stage": "意向", "lost_note": 5},
        {"stage": "意向", "other": 1},
    ],
)
def test_bad_move_requests_are_400(api, deal, body):
    assert move(api, deal, **body).status_code == 400


def test_a_stage_of_another_pipeline_is_refused(api, deal):
    response = move(api, deal, stage=stage("批发", "报价").pk)
    assert response.status_code == 400


def test_a_lead_cannot_be_moved_to_converted_without_converting(api, rep):
    lead = LeadFactory.created_by(rep, company_name="远景")
    response = move(api, lead, stage=stage("线索", "已转化").pk)
    assert response.status_code == 400


# --- Leads: convert, claim, release, transfer -------------------------------------------------


def test_converting_a_lead_makes_customer_contact_and_deal(api, rep):
    lead = LeadFactory.created_by(
        rep, company_name="杭州远景科技", person_name="张伟", phone="+8613800138000"
    )
    response = api.post(
        f"/api/v1/leads/{lead.pk}/convert/",
        {"contact": True, "deal": {"title": "远景首单", "amount": "50000"}},
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["customer_created"] is True
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED
    customer = Customer.objects.get(pk=data["customer"])
    assert (customer.name, customer.owner) == ("杭州远景科技", rep)
    assert Contact.objects.get(pk=data["contact"]).name == "张伟"
    assert Deal.objects.get(pk=data["deal"]).customer == customer
    event = Change.objects.filter(record_id=lead.pk).order_by("-pk").first()
    assert event.kind == EventKind.CONVERTED
    again = api.post(f"/api/v1/leads/{lead.pk}/convert/", {})
    assert again.status_code == 400


def test_converting_into_an_existing_customer(api, rep):
    lead = LeadFactory.created_by(rep, company_name="远景")
    customer = CustomerFactory(owner=rep)
    response = api.post(f"/api/v1/leads/{lead.pk}/convert/", {"customer": customer.pk})
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "lead": lead.pk,
        "customer": customer.pk,
        "contact": None,
        "deal": None,
        "customer_created": False,
    }


def test_a_conversion_with_bad_values_converts_nothing(api, rep):
    lead = LeadFactory.created_by(rep, company_name="远景")
    response = api.post(
        f"/api/v1/leads/{lead.pk}/convert/",
        {"customer": {"email": "bad"}, "deal": {"amount": "many"}},
    )
    assert response.status_code == 400
    assert set(errors(response)) == {"customer"}
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN
    assert not Customer.objects.exclude(pk__in=[]).filter(name="远景").exists()


def test_claiming_an_unassigned_lead(api, rep, org):
    lead = LeadFactory(owner=None)
    response = api.post(f"/api/v1/leads/{lead.pk}/claim/")
    assert response.status_code == 200, response.json()
    assert response.json()["owner"] == rep.pk
    assert Change.objects.get(record_id=lead.pk).kind == EventKind.CLAIMED
    again = api.post(f"/api/v1/leads/{lead.pk}/claim/")
    assert again.status_code == 409


def test_releasing_and_transferring_a_lead(api, rep, org):
    lead = LeadFactory(owner=rep)
    colleague_lead = LeadFactory(owner=rep)
    released = api.post(f"/api/v1/leads/{lead.pk}/release/")
    assert released.status_code == 200 and released.json()["owner"] is None
    assert api.post(f"/api/v1/leads/{lead.pk}/release/").status_code == 409
    transferred = api.post(
        f"/api/v1/leads/{colleague_lead.pk}/transfer/", {"owner": org.colleague.pk}
    )
    # Own scope: the colleague is no one the rep may hand records to.
    assert transferred.status_code == 400
    assert "owner" in errors(transferred)


def test_a_manager_transfers_within_the_department(org):
    manager = org.set_scope(
        org.colleague,
        DataScope.DEPARTMENT,
        crm_permissions(("view", "add", "change"), types=TYPES),
    )
    lead = LeadFactory(owner=org.owner)
    client = APIClient()
    client.force_login(manager)
    response = client.post(f"/api/v1/leads/{lead.pk}/transfer/", {"owner": org.owner.pk})
    assert response.status_code == 200  # already the owner's: nothing changes
    response = client.post(f"/api/v1/leads/{lead.pk}/transfer/", {"owner": manager.pk})
    assert response.status_code == 200
    assert response.json()["owner"] == manager.pk
    assert Change.objects.filter(record_id=lead.pk, kind=EventKind.TRANSFERRED).count() == 1


# --- Customers: the public pool -----------------------------------------------------------------


def test_a_customer_is_released_to_the_pool_and_claimed_back(api, rep):
    customer = CustomerFactory(owner=rep)
    released = api.post(f"/api/v1/customers/{customer.pk}/release/", {"reason": "不再跟进"})
    assert released.status_code == 200, released.json()
    assert released.json()["owner"] is None
    assert api.post(f"/api/v1/customers/{customer.pk}/release/").status_code == 409
    claimed = api.post(f"/api/v1/customers/{customer.pk}/claim/")
    assert claimed.status_code == 200
    assert claimed.json()["owner"] == rep.pk
    kinds = list(
        Change.objects.filter(record_id=customer.pk).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == [EventKind.RELEASED, EventKind.CLAIMED]
    assert api.post(f"/api/v1/customers/{customer.pk}/claim/").status_code == 409


def test_claiming_over_the_roles_limit_is_a_conflict(api, rep):
    rep.role.max_customers = 1
    rep.role.save()
    CustomerFactory(owner=rep)
    pooled = CustomerFactory(owner=None)
    response = api.post(f"/api/v1/customers/{pooled.pk}/claim/")
    assert response.status_code == 409
    assert response.json()["code"] == "pool"


def test_a_release_reason_too_long_is_400(api, rep):
    customer = CustomerFactory(owner=rep)
    response = api.post(f"/api/v1/customers/{customer.pk}/release/", {"reason": "x" * 5000})
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.owner == rep


# --- Tasks ------------------------------------------------------------------------------------


def test_a_task_is_completed_and_reopened(api, rep):
    task = TaskFactory(assignee=rep)
    done = api.post(f"/api/v1/tasks/{task.pk}/complete/")
    assert done.status_code == 200 and done.json()["status"] == TaskStatus.DONE
    reopened = api.post(f"/api/v1/tasks/{task.pk}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["status"] == TaskStatus.OPEN
    kinds = list(
        Change.objects.filter(record_id=task.pk).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == [EventKind.TASK_COMPLETED, EventKind.TASK_REOPENED]
    assert "status" in errors(api.patch(f"/api/v1/tasks/{task.pk}/", {"status": "done"}))


def test_a_task_created_through_the_api_goes_to_its_creator(api, rep):
    response = api.post("/api/v1/tasks/", {"title": "回电话", "due_at": "2026-12-08 10:00"})
    assert response.status_code == 201, response.json()
    assert response.json()["assignee"] == rep.pk
    assert response.json()["due_at"].startswith("2026-12-08T10:00:00+08:00")


def test_an_activity_logged_through_the_api_plans_the_follow_up(api, rep):
    customer = CustomerFactory(owner=rep)
    response = api.post(
        "/api/v1/activities/",
        {
            "customer": customer.pk,
            "kind": "call",
            "content": "电话沟通报价",
            "occurred_at": "2026-12-07 09:00",
            "next_follow_up_at": "2026-12-09 09:00",
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"]["code"] == "call"
    customer.refresh_from_db()
    assert customer.next_follow_up_at is not None
    assert customer.tasks.count() == 1
    bad = api.post(
        "/api/v1/activities/",
        {
            "customer": customer.pk,
            "content": "x",
            "occurred_at": "2026-12-07 09:00",
            "next_follow_up_at": "2026-12-01 09:00",
        },
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"content": "没有客户"},
        {"customer": None, "content": "x"},
        {"customer": "9" * 30, "content": "x"},
        {"customer": 1, "kind": "no-such-kind", "content": "x"},
        {"customer": 1, "content": "x", "occurred_at": "0000-01-01"},
        {"customer": 1, "content": "x", "occurred_at": "10000-01-01 10:00"},
        {"customer": 1, "content": ""},
    ],
)
def test_bad_activities_are_400(api, rep, body):
    customer = CustomerFactory(owner=rep)
    if body.get("customer") == 1:
        body = {**body, "customer": customer.pk}
    assert api.post("/api/v1/activities/", body).status_code == 400
