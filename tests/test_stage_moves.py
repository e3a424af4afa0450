"""One stage-move request path (pipelines.moves): the board's move endpoint and a record
page's "Move to" give the same outcome for the same request. Each test runs through both
doors: the board (htmx) and the deal or lead page.

The outcomes: moved (and what was filled in stored), asks (the form, with the fields the
stage still needs, the ones the user's role may not fill, and errors), refused (a
message), not found (an outsider)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib.messages import constants, get_messages
from django.urls import reverse

from accounts.models import DataScope, FieldAccess
from crm.models import Customer
from pipelines import services
from pipelines.forms import contact_choices
from pipelines.models import Deal, DealStatus, LeadStatus, StageHistory
from pipelines.moves import StageMoveForm, request_move

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    crm_permissions,
    item,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def team(org):
    """Reps (owner, colleague, outsider) who see and change their own leads and deals."""
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    return org


@dataclass
class Seen:
    """What a door answered, reduced to what both doors must agree on."""

    status: str  # "moved", "asks", "refused", "not found", "bad request" (a NUL byte...)
    fields: tuple[str, ...] = ()  # the form's fields, in order
    disabled: tuple[str, ...] = ()  # shown, but the role may not fill them in
    blocked: tuple[str, ...] = ()  # labels of required fields the role may not fill in
    errors: tuple[str, ...] = ()  # fields with an error ("__all__": the form's own)
    message: str = ""  # a refusal's or a move's message
    form: StageMoveForm | None = field(default=None, compare=False, repr=False)


def _asks(form: StageMoveForm) -> Seen:
    return Seen(
        "asks",
        fields=tuple(form.fields),
        disabled=tuple(name for name, f in form.fields.items() if f.disabled),
        blocked=tuple(form.blocked),
        errors=tuple(sorted(form.errors)) if form.is_bound else (),
        form=form,
    )


def via_board(client, record, target, data) -> Seen:
    response = client.post(
        reverse("board:move", args=[record.pipeline_id]),
        {"record": record.pk, "stage": target.pk, "expected_stage": record.stage_id, **data},
        HTTP_HX_REQUEST="true",
    )
    if response.status_code in (400, 404):
        return Seen("not found" if response.status_code == 404 else "bad request")
    assert response.status_code == 200
    context = response.context
    if context.get("form") is not None:
        return _asks(context["form"])
    if context.get("moved"):
        return Seen("moved", message=context["message"])
    return Seen("refused", message=context["message"])


def via_page(client, record, target, data) -> Seen:
    namespace = f"{record.record_type}s"
    response = client.post(
        reverse(f"{namespace}:move", args=[record.pk]),
        {"stage": target.pk, "expected_stage": record.stage_id, **data},
    )
    if response.status_code in (400, 404):
        return Seen("not found" if response.status_code == 404 else "bad request")
    if response.status_code == 200:
        return _asks(response.context["pending"]["form"])
    assert response.status_code == 302
    (message,) = get_messages(response.wsgi_request)
    status = "refused" if message.level == constants.ERROR else "moved"
    return Seen(status, message=message.message)


DOORS = {"board": via_board, "page": via_page}


@pytest.fixture(params=list(DOORS))
def door(request):
    """Ask for a move through the board or through the record's page."""
    return DOORS[request.param]


def refreshed(record):
    record.refresh_from_db()
    return record


# --- Required fields ------------------------------------------------------------------------


def test_a_stage_with_required_fields_asks_for_them_then_moves_and_stores_them(client, team, door):
    quote = stage("零售", "报价")  # needs a contact and an amount
    deal = DealFactory(owner=team.owner)
    contact = ContactFactory(customer=deal.customer, name="王总")
    client.force_login(team.owner)

    seen = door(client, deal, quote, {})
    assert seen == Seen("asks", fields=("contact", "amount"))
    assert list(seen.form.fields["contact"].queryset) == [contact]
    assert refreshed(deal).stage.name == "意向"

    seen = door(client, deal, quote, {"move_form": "1", "contact": contact.pk, "amount": "abc"})
    assert seen == Seen("asks", fields=("contact", "amount"), errors=("amount",))
    assert refreshed(deal).stage.name == "意向" and deal.contact is None

    seen = door(client, deal, quote, {"move_form": "1", "contact": contact.pk, "amount": "45000"})
    assert seen.status == "moved" and "报价" in seen.message
    deal = refreshed(deal)
    assert deal.stage == quote and deal.contact == contact and deal.amount == Decimal("45000")
    assert StageHistory.objects.filter(record_id=deal.pk, to_stage=quote).count() == 1


@pytest.mark.parametrize("level", [FieldAccess.HIDDEN, FieldAccess.READONLY])
def test_a_required_field_the_role_may_not_fill_in_blocks_the_move(client, team, door, level):
    """As on the deal's edit form: a hidden field is left out, a read-only one shown
    disabled; either is named as one the role may not fill in, and a value posted for it
    anyway is not stored."""
    role = team.owner.role
    role.field_permissions = {"deal": {"amount": level}}
    role.save()
    quote = stage("零售", "报价")
    deal = DealFactory(owner=team.owner)
    contact = ContactFactory(customer=deal.customer)
    client.force_login(team.owner)

    seen = door(client, deal, quote, {})
    fields = ("contact", "amount") if level == FieldAccess.READONLY else ("contact",)
    disabled = ("amount",) if level == FieldAccess.READONLY else ()
    blocked = (services.field_label("deal", "amount"),)
    assert seen == Seen("asks", fields=fields, disabled=disabled, blocked=blocked)

    seen = door(client, deal, quote, {"move_form": "1", "contact": contact.pk, "amount": "9"})
    assert seen == Seen(
        "asks", fields=fields, disabled=disabled, blocked=blocked, errors=("__all__",)
    )
    deal = refreshed(deal)
    assert deal.stage.name == "意向" and deal.amount == 0 and deal.contact is None


def test_the_blocked_field_is_named_on_both_pages(client, team):
    role = team.owner.role
    role.field_permissions = {"deal": {"amount": FieldAccess.HIDDEN}}
    role.save()
    quote = stage("零售", "报价")
    deal = DealFactory(owner=team.owner)
    client.force_login(team.owner)
    for answer in (
        client.post(
            reverse("board:move", args=[deal.pipeline_id]),
            {"record": deal.pk, "stage": quote.pk, "expected_stage": deal.stage_id},
            HTTP_HX_REQUEST="true",
        ),
        client.post(
            reverse("deals:move", args=[deal.pk]),
            {"stage": quote.pk, "expected_stage": deal.stage_id},
        ),
    ):
        html = answer.content.decode()
        assert 'data-testid="move-form-blocked"' in html
        assert 'name="amount"' not in html
        # The customer has no contact: its new contact's fields are asked instead.
        assert 'name="new_contact-name"' in html


# --- Lost -----------------------------------------------------------------------------------


def test_a_lost_stage_asks_for_the_reason_then_moves_with_it(client, team, door):
    lost = stage("零售", "输单")
    deal = DealFactory(owner=team.owner)
    reason = item("lost_reason", "price")
    client.force_login(team.owner)

    assert door(client, deal, lost, {}) == Seen("asks", fields=("lost_reason", "lost_note"))
    seen = door(client, deal, lost, {"move_form": "1", "lost_note": "太贵"})
    assert seen == Seen("asks", fields=("lost_reason", "lost_note"), errors=("lost_reason",))
    assert refreshed(deal).status == DealStatus.OPEN

    seen = door(
        client, deal, lost, {"move_form": "1", "lost_reason": reason.pk, "lost_note": "太贵"}
    )
    assert seen.status == "moved"
    deal = refreshed(deal)
    assert deal.stage == lost and deal.status == DealStatus.LOST
    assert deal.lost_reason == reason and deal.lost_note == "太贵"


# --- Contacts -------------------------------------------------------------------------------


def test_a_contact_outside_the_users_scope_is_refused(client, team, door):
    """The deal's customer went to a colleague: its contacts are out of the rep's sight,
    so none is offered and one posted anyway is refused; nothing is stored."""
    quote = stage("零售", "报价")
    deal = DealFactory(owner=team.owner, amount=Decimal("5000"))
    hidden = ContactFactory(customer=deal.customer, name="李经理")
    Customer.objects.filter(pk=deal.customer_id).update(owner=team.colleague)
    someone_elses = ContactFactory(customer=CustomerFactory(owner=team.owner))
    client.force_login(team.owner)

    seen = door(client, deal, quote, {})
    assert seen == Seen("asks", fields=("contact",))
    assert list(seen.form.fields["contact"].queryset) == []

    for contact in (hidden, someone_elses):
        seen = door(client, deal, quote, {"move_form": "1", "contact": contact.pk})
        assert seen == Seen("asks", fields=("contact",), errors=("contact",))
        deal = refreshed(deal)
        assert deal.stage.name == "意向" and deal.contact is None


def test_the_deals_current_contact_stays_valid_after_its_customer_was_transferred(
    client, team, door
):
    quote = stage("零售", "报价")
    deal = DealFactory(owner=team.owner)
    contact = ContactFactory(customer=deal.customer, name="陈经理")
    Deal.objects.filter(pk=deal.pk).update(contact=contact)
    Customer.objects.filter(pk=deal.customer_id).update(owner=team.colleague)
    deal = refreshed(deal)
    client.force_login(team.owner)

    assert door(client, deal, quote, {}) == Seen("asks", fields=("amount",))
    seen = door(client, deal, quote, {"move_form": "1", "amount": "30000"})
    assert seen.status == "moved"
    deal = refreshed(deal)
    assert deal.stage == quote and deal.contact == contact and deal.amount == Decimal("30000")


def test_contact_choices_keep_the_current_contact_as_the_deal_form_does(team):
    deal = DealFactory(owner=team.owner)
    contact = ContactFactory(customer=deal.customer)
    Customer.objects.filter(pk=deal.customer_id).update(owner=team.colleague)
    assert contact not in contact_choices(team.owner)
    assert contact in contact_choices(team.owner, current=contact)
    assert contact in contact_choices(team.owner, current=contact.pk)


# --- Refusals and outsiders -----------------------------------------------------------------


def test_a_stale_move_is_refused_with_the_same_message(client, team, door):
    deal = DealFactory(owner=team.owner, stage=stage("零售", "产品介绍"))
    client.force_login(team.owner)
    seen = door(
        client, deal, stage("零售", "产生兴趣"), {"expected_stage": stage("零售", "意向").pk}
    )
    assert seen.status == "refused" and "产品介绍" in seen.message
    assert refreshed(deal).stage.name == "产品介绍"


def test_a_lead_is_not_moved_to_converted_without_the_conversion(client, team, door):
    pipeline_stage = stage("线索", "收集线索信息")
    lead = LeadFactory(owner=team.owner, stage=pipeline_stage)
    won = lead.pipeline.stages.get(kind="won")
    client.force_login(team.owner)
    seen = door(client, lead, won, {})
    assert seen.status == "refused"
    assert refreshed(lead).status == LeadStatus.OPEN


def test_an_outsider_gets_404_and_nothing_changes(client, team, door):
    deal = DealFactory(owner=team.owner, amount=Decimal("5000"))
    client.force_login(team.outsider)
    assert door(client, deal, stage("零售", "产品介绍"), {}) == Seen("not found")
    assert door(client, deal, stage("零售", "输单"), {"lost_reason": 1}) == Seen("not found")
    assert refreshed(deal).stage.name == "意向"


def test_both_doors_give_equal_outcomes_for_the_same_requests(client, team):
    """The same sequence of requests, side by side: every answer is the same."""
    quote, lost = stage("零售", "报价"), stage("零售", "输单")
    deals = [DealFactory(owner=team.owner) for _door in DOORS]
    contacts = [ContactFactory(customer=d.customer) for d in deals]
    client.force_login(team.owner)
    steps = [
        (quote, lambda c: {}),
        (quote, lambda c: {"move_form": "1", "contact": c.pk, "amount": ""}),
        (quote, lambda c: {"move_form": "1", "contact": c.pk, "amount": "1200"}),
        (lost, lambda c: {}),
        (lost, lambda c: {"move_form": "1", "lost_reason": item("lost_reason", "price").pk}),
    ]
    for target, data in steps:
        answers = [
            via(client, refreshed(d), target, data(c))
            for via, d, c in zip(DOORS.values(), deals, contacts, strict=True)
        ]
        assert answers[0] == answers[1], target
    assert [refreshed(d).status for d in deals] == [DealStatus.LOST, DealStatus.LOST]


# --- The helper, without a page -------------------------------------------------------------


def test_request_move_takes_plain_data_as_the_api_will(team):
    quote = stage("零售", "报价")
    deal = DealFactory(owner=team.owner)
    contact = ContactFactory(customer=deal.customer)

    outcome = request_move(record=deal, stage=quote, user=team.owner, data={})
    assert outcome.needs_input and outcome.code == "required"
    assert list(outcome.form.fields) == ["contact", "amount"]

    data = {"expected_stage": deal.stage_id, "contact": contact.pk, "amount": "800"}
    outcome = request_move(record=deal, stage=quote, user=team.owner, data=data)
    assert outcome.moved and outcome.history.to_stage == quote
    assert services.missing_fields(refreshed(deal), quote) == []

    outcome = request_move(record=deal, stage=quote, user=team.owner, data={})
    assert outcome.moved and outcome.history is None  # it was there already


BAD_VALUES = [
    "²",
    "١٢٣",
    "99999999999999999999999",
    "-1",
    "1e400",
    "0001-01-01",
    "9999-12-31",
    "a\x00b",
    "x" * 5000,
    "",
    "🙂𝒳\u202e\ufeff",
    "' OR 1=1 --",
]


def test_bad_values_in_the_form_are_form_errors_never_a_500(client, team, door):
    """Every field of the form (a date, an amount, a contact, a custom field, the lost
    reason and note) and the expected stage given values no form should take: an answer
    each time, the deal where it was."""
    from .factories import custom_field

    custom_field("budget", "integer", label="预算", record_type="deal")
    quote, lost = stage("零售", "报价"), stage("零售", "输单")
    quote.required_fields = ["contact", "amount", "expected_close_date", "cf_budget"]
    quote.save()
    deal = DealFactory(owner=team.owner)
    client.force_login(team.owner)
    names = ("contact", "amount", "expected_close_date", "cf_budget", "expected_stage")
    for value in BAD_VALUES:
        for target, fields in ((quote, names), (lost, ("lost_reason", "lost_note"))):
            seen = door(client, deal, target, {"move_form": "1", **dict.fromkeys(fields, value)})
            assert seen.status in ("asks", "refused", "bad request"), (value, target)
    assert refreshed(deal).stage.name == "意向"
