"""pipelines.services: every refusal of a stage move, the history it writes, status,
closed time and probability, the after-commit event, pipeline switches, creating and
editing without touching stages, lead conversion and losing, board totals over what a
user may see (DESIGN rules 1 and 3)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Activity, Contact, Customer, DictionaryItem, Task
from pipelines import selectors, services
from pipelines.models import (
    Deal,
    DealStatus,
    Lead,
    LeadStatus,
    Pipeline,
    StageHistory,
)
from pipelines.services import StageMoveRefused
from pipelines.signals import lead_converted, stage_changed

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


def reason(code: str = "price") -> DictionaryItem:
    return DictionaryItem.objects.of("lost_reason").get(code=code)


@pytest.fixture
def team(org):
    """The org's reps may view, add and change every record type in their own scope;
    sub_member's role sees the whole department tree (a manager)."""
    perms = crm_permissions(types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    org.sub_member = org.set_scope(org.sub_member, DataScope.ALL, perms)
    return org


@pytest.fixture
def customer(team) -> Customer:
    return CustomerFactory(owner=team.owner, name="上海恒信机械设备有限公司")


@pytest.fixture
def contact(customer) -> Contact:
    return ContactFactory(customer=customer, name="张经理")


def new_deal(by, customer, **fields) -> Deal:
    fields.setdefault("title", "年度设备采购")
    return DealFactory.created_by(by, customer=customer, **fields)


def new_lead(by, **fields) -> Lead:
    fields.setdefault("person_name", "王先生")
    fields.setdefault("phone", "13912345678")
    return LeadFactory.created_by(by, **fields)


@pytest.fixture
def deal(team, customer) -> Deal:
    return new_deal(team.owner, customer)


@pytest.fixture
def ready_deal(team, customer, contact) -> Deal:
    """A deal with everything the later stages need."""
    return new_deal(
        team.owner,
        customer,
        contact=contact,
        amount=Decimal("120000"),
        expected_close_date=timezone.localdate() + timedelta(days=30),
    )


def refused(code, **kwargs) -> StageMoveRefused:
    with pytest.raises(StageMoveRefused) as info:
        services.move_to_stage(**kwargs)
    assert info.value.code == code
    return info.value


def history(record) -> list[StageHistory]:
    record_type = "lead" if isinstance(record, Lead) else "deal"
    return list(
        StageHistory.objects.filter(record_type=record_type, record_id=record.pk)
        .select_related("from_stage", "to_stage", "user")
        .order_by("moved_at", "id")
    )


# --- Refusals -------------------------------------------------------------------------


def test_an_outsider_may_not_move_it(team, deal):
    with pytest.raises(PermissionDenied):
        services.move_to_stage(record=deal, stage=stage("零售", "产品介绍"), by=team.outsider)
    deal.refresh_from_db()
    assert deal.stage.name == "意向" and len(history(deal)) == 1


def test_a_role_without_change_permission_may_not_move_it(team, deal):
    viewer = team.set_scope(team.colleague, DataScope.ALL, crm_permissions(("view",), TYPES))
    with pytest.raises(PermissionDenied):
        services.move_to_stage(record=deal, stage=stage("零售", "产品介绍"), by=viewer)


def test_a_move_from_a_stale_view_is_refused(team, ready_deal):
    first, second = stage("零售", "意向"), stage("零售", "产品介绍")
    services.move_to_stage(
        record=ready_deal, stage=second, by=team.owner, expected_stage_id=first.pk
    )
    error = refused(
        "stale",
        record=ready_deal,
        stage=stage("零售", "报价"),
        by=team.owner,
        expected_stage_id=first.pk,
    )
    assert "Someone moved it to “Product presentation” meanwhile" in error.messages[0]
    ready_deal.refresh_from_db()
    assert ready_deal.stage == second


def test_a_stage_of_another_pipeline_is_refused(team, ready_deal):
    error = refused("pipeline", record=ready_deal, stage=stage("批发", "报价"), by=team.owner)
    assert "another pipeline" in error.messages[0]
    refused("pipeline", record=ready_deal, stage=stage("线索", "收集需求"), by=team.owner)


def test_required_fields_are_named(team, deal):
    error = refused("required", record=deal, stage=stage("零售", "报价"), by=team.owner)
    assert [name for name, _label in error.missing] == ["contact", "amount"]
    assert error.messages[0] == "Fill in contact、amount (CNY) before moving it to “Quotation”."
    deal.refresh_from_db()
    assert deal.stage.name == "意向" and deal.status == DealStatus.OPEN


def test_a_zero_amount_does_not_fill_the_amount(team, deal, contact):
    Deal.objects.filter(pk=deal.pk).update(contact=contact, amount=0)
    error = refused("required", record=deal, stage=stage("零售", "报价"), by=team.owner)
    assert error.missing == [("amount", "amount (CNY)")]


def test_a_required_custom_field_is_named_by_its_label(team, ready_deal):
    custom_field("budget", "money", record_type="deal", label="预算", label_en="Budget")
    quote = stage("零售", "报价")
    quote.required_fields = ["contact", "amount", "cf_budget"]
    quote.save()
    error = refused("required", record=ready_deal, stage=quote, by=team.owner)
    assert error.missing == [("cf_budget", "Budget")]
    assert "Budget" in error.messages[0]


def test_values_fill_the_required_fields_during_the_move(team, deal, contact):
    custom_field("budget", "money", record_type="deal", label="预算")
    quote = stage("零售", "报价")
    quote.required_fields = ["contact", "amount", "cf_budget"]
    quote.save()
    moved = services.move_to_stage(
        record=deal,
        stage=quote,
        by=team.owner,
        values={"contact": str(contact.pk), "amount": "50000", "cf_budget": "48000"},
    )
    assert moved.to_stage == quote
    deal.refresh_from_db()
    assert deal.contact == contact and deal.amount == Decimal("50000")
    assert Decimal(str(deal.custom["budget"])) == Decimal("48000")
    assert deal.stage == quote


def test_bad_values_refuse_the_move_and_save_nothing(team, deal, contact, customer):
    stranger = ContactFactory(customer__owner=team.owner, name="外人")
    with pytest.raises(ValidationError) as info:
        services.move_to_stage(
            record=deal,
            stage=stage("零售", "报价"),
            by=team.owner,
            values={"contact": str(stranger.pk), "amount": "很多"},
        )
    assert set(info.value.message_dict) == {"contact", "amount"}
    with pytest.raises(ValidationError) as info:
        services.move_to_stage(
            record=deal,
            stage=stage("零售", "报价"),
            by=team.owner,
            values={"contact": str(contact.pk), "amount": "-5"},
        )
    assert set(info.value.message_dict) == {"amount"}
    deal.refresh_from_db()
    assert deal.contact is None and deal.stage.name == "意向"


def test_values_of_fields_the_role_may_not_edit_are_refused(team, deal, contact):
    role = team.owner.role
    role.field_permissions = {"deal": {"amount": "readonly"}}
    role.save()
    owner = type(team.owner).objects.select_related("role").get(pk=team.owner.pk)
    with pytest.raises(ValidationError) as info:
        services.move_to_stage(
            record=deal,
            stage=stage("零售", "报价"),
            by=owner,
            values={"contact": str(contact.pk), "amount": "9000"},
        )
    assert "amount" in info.value.message_dict


def test_a_lost_stage_needs_a_reason(team, deal):
    lost = stage("零售", "输单")
    error = refused("lost_reason", record=deal, stage=lost, by=team.owner)
    assert "choose a lost reason" in error.messages[0]


def test_an_inactive_or_foreign_reason_is_refused(team, deal):
    lost = stage("零售", "输单")
    inactive = reason("timing")
    inactive.is_active = False
    inactive.save()
    refused("lost_reason", record=deal, stage=lost, by=team.owner, lost_reason=inactive)
    other = DictionaryItem.objects.of("lead_source").first()
    refused("lost_reason", record=deal, stage=lost, by=team.owner, lost_reason=other)


def test_a_converted_lead_does_not_move(team, customer):
    lead = new_lead(team.owner, company_name="恒信")
    services.convert_lead(lead=lead, by=team.owner, customer=customer)
    error = refused("converted", record=lead, stage=stage("线索", "收集需求"), by=team.owner)
    assert "has been converted" in error.messages[0]


def test_a_lead_enters_the_won_stage_only_by_conversion(team):
    lead = new_lead(team.owner)
    error = refused("converted", record=lead, stage=stage("线索", "已转化"), by=team.owner)
    assert "Convert the lead" in error.messages[0]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN


def test_lead_required_fields(team):
    lead = new_lead(team.owner, person_name="", company_name="")
    error = refused("required", record=lead, stage=stage("线索", "需求已确认"), by=team.owner)
    assert [n for n, _l in error.missing] == ["company_name", "person_name"]


# --- What a move writes ---------------------------------------------------------------


def test_history_from_to_who_when_and_time_in_the_previous_stage(team, ready_deal):
    created = history(ready_deal)
    assert len(created) == 1
    assert created[0].from_stage is None and created[0].to_stage.name == "意向"
    assert created[0].user == team.owner and created[0].seconds_in_previous == 0

    three_days_ago = timezone.now() - timedelta(days=3)
    Deal.objects.filter(pk=ready_deal.pk).update(stage_entered_at=three_days_ago)
    before = timezone.now()
    row = services.move_to_stage(
        record=ready_deal, stage=stage("零售", "产品介绍"), by=team.owner, lost_note="ignored"
    )
    rows = history(ready_deal)
    assert rows[-1] == row and len(rows) == 2
    assert (row.from_stage.name, row.to_stage.name) == ("意向", "产品介绍")
    assert row.user == team.owner and row.pipeline.name == "零售"
    assert before <= row.moved_at <= timezone.now()
    assert abs(row.seconds_in_previous - 3 * 86400) < 60
    ready_deal.refresh_from_db()
    assert ready_deal.stage_entered_at == row.moved_at
    assert ready_deal.days_in_stage == 0


def test_moving_to_the_stage_it_is_in_does_nothing(team, deal):
    assert services.move_to_stage(record=deal, stage=stage("零售", "意向"), by=team.owner) is None
    assert len(history(deal)) == 1


def test_probability_status_and_closed_time_follow_the_stage(team, ready_deal):
    services.move_to_stage(record=ready_deal, stage=stage("零售", "评估"), by=team.owner)
    assert (ready_deal.probability, ready_deal.status, ready_deal.closed_at) == (65, "open", None)
    assert ready_deal.weighted_amount == Decimal("78000.00")

    services.move_to_stage(record=ready_deal, stage=stage("零售", "赢单"), by=team.owner)
    assert ready_deal.status == DealStatus.WON and ready_deal.probability == 100
    assert ready_deal.closed_at is not None

    services.move_to_stage(
        record=ready_deal,
        stage=stage("零售", "输单"),
        by=team.owner,
        lost_reason=reason("competitor"),
        lost_note="对方报价低 20%",
    )
    assert ready_deal.status == DealStatus.LOST and ready_deal.probability == 0
    assert ready_deal.lost_reason.code == "competitor" and ready_deal.lost_note == "对方报价低 20%"

    services.move_to_stage(record=ready_deal, stage=stage("零售", "合同"), by=team.owner)
    assert ready_deal.status == DealStatus.OPEN and ready_deal.closed_at is None
    assert ready_deal.lost_reason is None and ready_deal.lost_note == ""
    assert ready_deal.probability == 85


def test_a_manager_in_scope_may_move_a_reps_deal(team, ready_deal):
    row = services.move_to_stage(
        record=ready_deal, stage=stage("零售", "产品介绍"), by=team.sub_member
    )
    assert row.user == team.sub_member


def test_the_event_is_sent_once_committed(team, ready_deal, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs))

    stage_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            row = services.move_to_stage(
                record=ready_deal, stage=stage("零售", "产品介绍"), by=team.owner
            )
        assert received == []  # not before the commit
        for callback in callbacks:
            callback()
        assert len(received) == 1
        sender, kwargs = received[0]
        assert sender is Deal
        assert kwargs["record"].pk == ready_deal.pk and kwargs["history"] == row
        assert kwargs["from_stage"].name == "意向" and kwargs["to_stage"].name == "产品介绍"
        assert kwargs["by"] == team.owner

        received.clear()
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(StageMoveRefused),
        ):
            services.move_to_stage(record=ready_deal, stage=stage("零售", "输单"), by=team.owner)
        assert callbacks == [] and received == []
    finally:
        stage_changed.disconnect(receiver)


# --- Pipeline switch ------------------------------------------------------------------


def test_a_deal_moves_to_a_chosen_stage_of_another_pipeline(team, ready_deal):
    target = stage("批发", "产生兴趣")
    row = services.change_pipeline(deal=ready_deal, stage=target, by=team.owner)
    ready_deal.refresh_from_db()
    assert ready_deal.pipeline.name == "批发" and ready_deal.stage == target
    assert ready_deal.probability == 35
    assert row.from_stage.name == "意向" and row.pipeline.name == "批发"
    assert "Retail" in row.note


def test_a_pipeline_switch_checks_the_target_stages_required_fields(team, deal, contact):
    target = stage("批发", "报价")
    with pytest.raises(StageMoveRefused) as info:
        services.change_pipeline(deal=deal, stage=target, by=team.owner)
    assert info.value.code == "required"
    services.change_pipeline(
        deal=deal,
        stage=target,
        by=team.owner,
        values={"contact": str(contact.pk), "amount": "30000"},
    )
    deal.refresh_from_db()
    assert deal.stage == target and deal.amount == Decimal("30000")


def test_a_pipeline_switch_refusals(team, ready_deal):
    with pytest.raises(StageMoveRefused) as info:
        services.change_pipeline(deal=ready_deal, stage=stage("线索", "收集需求"), by=team.owner)
    assert info.value.code == "pipeline"
    Pipeline.objects.filter(name="批发").update(is_active=False)
    with pytest.raises(StageMoveRefused) as info:
        services.change_pipeline(deal=ready_deal, stage=stage("批发", "意向"), by=team.owner)
    assert info.value.code == "pipeline"
    Pipeline.objects.filter(name="批发").update(is_active=True)
    with pytest.raises(StageMoveRefused) as info:
        services.change_pipeline(
            deal=ready_deal,
            stage=stage("批发", "意向"),
            by=team.owner,
            expected_stage_id=stage("零售", "报价").pk,
        )
    assert info.value.code == "stale"
    with pytest.raises(PermissionDenied):
        services.change_pipeline(deal=ready_deal, stage=stage("批发", "意向"), by=team.outsider)
    with pytest.raises(StageMoveRefused) as info:
        services.change_pipeline(deal=ready_deal, stage=stage("批发", "输单"), by=team.owner)
    assert info.value.code == "lost_reason"


# --- Create and edit ------------------------------------------------------------------


def test_a_new_deal_starts_in_the_first_open_stage_of_the_default_pipeline(team, customer):
    deal = new_deal(team.owner, customer)
    assert deal.pipeline.name == "零售" and deal.stage.name == "意向"
    assert deal.probability == 10 and deal.status == DealStatus.OPEN
    assert deal.owner == team.owner and deal.created_by == team.owner


def test_a_new_record_may_not_start_closed_or_elsewhere(team, customer):
    with pytest.raises(ValidationError) as info:
        new_deal(
            team.owner,
            customer,
            pipeline=stage("零售", "赢单").pipeline,
            stage=stage("零售", "赢单"),
        )
    assert "stage" in info.value.message_dict
    with pytest.raises(ValidationError):
        new_deal(
            team.owner,
            customer,
            pipeline=Pipeline.objects.get(name="零售"),
            stage=stage("批发", "意向"),
        )
    with pytest.raises(ValidationError):
        new_lead(team.owner, pipeline=Pipeline.objects.get(name="零售"))


def test_a_deal_needs_a_visible_customer(team):
    elsewhere = CustomerFactory(owner=team.outsider)
    with pytest.raises(PermissionDenied):
        new_deal(team.owner, elsewhere)


def test_updates_ignore_stage_status_and_probability_edits(team, ready_deal):
    edited = Deal.objects.get(pk=ready_deal.pk)
    edited.title = "年度设备采购（二期）"
    edited.stage = stage("零售", "赢单")
    edited.pipeline = edited.stage.pipeline
    edited.status = DealStatus.WON
    edited.probability = 100
    edited.closed_at = timezone.now()
    services.update_deal(deal=edited, by=team.owner)
    stored = Deal.objects.get(pk=ready_deal.pk)
    assert stored.title == "年度设备采购（二期）"
    assert stored.stage.name == "意向" and stored.status == DealStatus.OPEN
    assert stored.probability == 10 and stored.closed_at is None
    assert len(history(stored)) == 1

    lead = new_lead(team.owner)
    edited = Lead.objects.get(pk=lead.pk)
    edited.stage = stage("线索", "无效线索")
    edited.status = LeadStatus.LOST
    edited.company_name = "恒信"
    services.update_lead(lead=edited, by=team.owner)
    stored = Lead.objects.get(pk=lead.pk)
    assert stored.company_name == "恒信"
    assert stored.stage.name == "已收到联系方式" and stored.status == LeadStatus.OPEN


def test_outsiders_may_not_update(team, deal):
    with pytest.raises(PermissionDenied):
        services.update_deal(deal=Deal.objects.get(pk=deal.pk), by=team.outsider)


# --- Leads: lose and convert ----------------------------------------------------------


def test_losing_a_lead_needs_a_reason(team):
    lead = new_lead(team.owner)
    with pytest.raises(StageMoveRefused) as info:
        services.lose_lead(lead=lead, by=team.owner, reason=None)
    assert info.value.code == "lost_reason"
    services.lose_lead(lead=lead, by=team.owner, reason=reason("invalid"), note="空号")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.LOST and lead.stage.name == "无效线索"
    assert lead.lost_reason.code == "invalid" and lead.lost_note == "空号"
    assert lead.closed_at is not None
    assert history(lead)[-1].to_stage.name == "无效线索"


def lead_with_follow_ups(team) -> Lead:
    lead = new_lead(team.owner, company_name="鼎泰贸易", person_name="李总")
    ActivityFactory(customer=None, subject=lead, content="首次电话沟通", author=team.owner)
    TaskFactory(subject=lead, title="发送产品资料", assignee=team.owner)
    return lead


def test_conversion_into_a_new_customer_contact_and_deal(team, django_capture_on_commit_callbacks):
    lead = lead_with_follow_ups(team)
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    lead_converted.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = services.convert_lead(
                lead=lead,
                by=team.owner,
                customer=Customer(name="鼎泰贸易有限公司", owner=team.owner),
                contact=Contact(name="李总", mobile="13900001111"),
                deal=Deal(
                    title="首批订单",
                    pipeline=Pipeline.objects.get(name="批发"),
                    stage=stage("批发", "产品介绍"),
                ),
            )
    finally:
        lead_converted.disconnect(receiver)
    assert result.customer_created
    customer = Customer.objects.get(name="鼎泰贸易有限公司")
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED and lead.stage.name == "已转化"
    assert lead.closed_at is not None
    assert lead.converted_customer == customer
    assert lead.converted_contact == result.contact and result.contact.customer == customer
    deal = lead.converted_deal
    assert deal == result.deal and deal.customer == customer and deal.contact == result.contact
    assert deal.pipeline.name == "批发" and deal.stage.name == "产品介绍"
    assert deal.owner == team.owner
    # The lead's follow-ups now show on the customer's timeline.
    assert list(Activity.objects.filter(customer=customer).values_list("content", flat=True)) == [
        "首次电话沟通"
    ]
    assert Task.objects.get(title="发送产品资料").customer == customer
    assert history(lead)[-1].to_stage.name == "已转化"
    assert len(received) == 1 and received[0]["customer"] == customer


def test_conversion_into_an_existing_customer(team, customer):
    lead = lead_with_follow_ups(team)
    before = Customer.objects.count()
    result = services.convert_lead(lead=lead, by=team.owner, customer=customer)
    assert not result.customer_created and result.contact is None and result.deal is None
    assert Customer.objects.count() == before
    lead.refresh_from_db()
    assert lead.converted_customer == customer and lead.converted_deal is None
    assert Activity.objects.get(content="首次电话沟通").customer == customer


def test_conversion_is_refused_twice(team, customer):
    lead = new_lead(team.owner)
    services.convert_lead(lead=lead, by=team.owner, customer=customer)
    with pytest.raises(StageMoveRefused) as info:
        services.convert_lead(lead=lead, by=team.owner, customer=customer)
    assert info.value.code == "closed"
    assert Lead.objects.get(pk=lead.pk).converted_customer == customer


def test_conversion_checks_access(team):
    lead = new_lead(team.owner)
    foreign = CustomerFactory(owner=team.outsider)
    with pytest.raises(PermissionDenied):
        services.convert_lead(lead=lead, by=team.owner, customer=foreign)
    with pytest.raises(PermissionDenied):
        services.convert_lead(lead=lead, by=team.outsider, customer=foreign)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN and lead.converted_customer is None


def test_an_unassigned_lead_is_in_the_pool(team):
    lead = new_lead(team.owner, owner=None)
    assert Lead.objects.visible_to(team.outsider).filter(pk=lead.pk).exists()


# --- Board totals ---------------------------------------------------------------------


def test_board_totals_over_the_visible_deals(team, customer, contact):
    theirs = CustomerFactory(owner=team.colleague)
    amounts = [("意向", "10000"), ("意向", "20000"), ("报价", "50000")]
    for stage_name, amount in amounts:
        deal = new_deal(team.owner, customer, contact=contact, amount=Decimal(amount))
        services.move_to_stage(record=deal, stage=stage("零售", stage_name), by=team.owner)
    new_deal(team.colleague, theirs, amount=Decimal("99999"))
    stages = list(Pipeline.objects.get(name="零售").stages.order_by("order"))
    pipeline_deals = Deal.objects.filter(pipeline__name="零售", status=DealStatus.OPEN)

    mine = selectors.board_totals(pipeline_deals.visible_to(team.owner), stages)
    first, quote = stage("零售", "意向"), stage("零售", "报价")
    assert (mine[first.pk].count, mine[first.pk].amount) == (2, Decimal("30000.00"))
    assert mine[first.pk].weighted == Decimal("3000.00")
    assert (mine[quote.pk].count, mine[quote.pk].weighted) == (1, Decimal("25000.00"))
    assert mine[stage("零售", "赢单").pk].count == 0
    assert list(mine) == [s.pk for s in stages]

    everyone = selectors.board_totals(pipeline_deals.visible_to(team.sub_member), stages)
    assert everyone[first.pk].count == 3
    assert everyone[first.pk].amount == Decimal("129999.00")
    outsider = selectors.board_totals(pipeline_deals.visible_to(team.outsider), stages)
    assert sum(c.count for c in outsider.values()) == 0


def test_board_totals_weigh_each_deal_by_its_own_probability(team, customer):
    first = stage("零售", "意向")
    amounts = ("100.10", "200", "0.05", "0")
    deals = [new_deal(team.owner, customer, amount=Decimal(a)) for a in amounts]
    for deal, probability in zip(deals, (10, 35, 35, 80), strict=True):
        Deal.objects.filter(pk=deal.pk).update(stage=first, probability=probability)
    stages = list(Pipeline.objects.get(name="零售").stages.all())
    totals = selectors.board_totals(Deal.objects.visible_to(team.owner), stages)
    column = totals[first.pk]
    assert column.count == 4
    assert column.amount == Decimal("300.15")
    # 100.10 x 10% + (200 + 0.05) x 35% + 0 x 80% = 10.01 + 70.0175
    assert column.weighted == Decimal("80.03")


def test_board_totals_of_leads_count_only(team):
    new_lead(team.owner)
    new_lead(team.owner, owner=None)
    stages = list(Pipeline.objects.get(name="线索").stages.all())
    totals = selectors.board_totals(Lead.objects.visible_to(team.owner), stages)
    assert totals[stage("线索", "已收到联系方式").pk].count == 2
    assert totals[stage("线索", "已收到联系方式").pk].amount == Decimal("0.00")


def test_board_totals_is_one_query(team, customer, django_assert_num_queries):
    for _ in range(3):
        new_deal(team.owner, customer, amount=Decimal("1000"))
    stages = list(Pipeline.objects.get(name="零售").stages.all())
    with django_assert_num_queries(1):
        selectors.board_totals(Deal.objects.visible_to(team.owner), stages)
