"""Automation triggers: each one fires a rule on the records it names, once per
occasion, and on nothing else. Record events are handed to the engine as the worker
does (`deliver_events`); time triggers fire when the minute's scan runs at a given
moment (`scan_time_rules(now)`), never by waiting."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import DataScope
from automation.engine import run_due, scan_time_rules
from automation.models import RuleRun, RunStatus
from crm.models import Customer
from crm.services import activities, customers
from pipelines import services
from pipelines.models import Lead

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    DictionaryItemFactory,
    LeadFactory,
    TagFactory,
    crm_permissions,
    custom_field,
    deliver_events,
    dictionary,
    item,
    make_rule,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTE = ("notify", {"title": "{{ record }}", "to": {"type": "owner"}})


@pytest.fixture
def team(org, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    return org


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    return lambda: deliver_events(django_capture_on_commit_callbacks)


def fired(rule) -> list[int]:
    """The records the rule fired on, in order."""
    return list(
        RuleRun.objects.filter(rule=rule).order_by("pk").values_list("record_id", flat=True)
    )


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def quote_deal(owner, **kwargs):
    """A deal with what 报价 and the stages after it require."""
    contact = ContactFactory(customer=CustomerFactory(owner=owner))
    kwargs.setdefault("amount", Decimal("1000"))
    kwargs.setdefault("expected_close_date", date(2027, 1, 1))
    return DealFactory(owner=owner, customer=contact.customer, contact=contact, **kwargs)


# --- Record events ------------------------------------------------------------------------


def test_created_fires_on_a_new_record_and_not_on_an_edit(team, deliver):
    rule = make_rule("customer", "created", actions=[NOTE])
    customer = customers.create_customer(
        customer=Customer(name="杭州云帆", owner=team.owner), by=team.owner
    )
    customer.name = "杭州云帆科技"
    customers.update_customer(customer=customer, by=team.owner)
    deliver()
    assert fired(rule) == [customer.pk]
    run = RuleRun.objects.get(rule=rule)
    assert run.status == RunStatus.DONE
    assert team.owner.notifications.get().title == "杭州云帆科技"


def test_stage_entered_fires_when_a_deal_enters_the_robots_stage_only(team, deliver):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "stage_entered", stage=quote, actions=[NOTE])
    into_quote, elsewhere = quote_deal(team.owner), quote_deal(team.owner)
    services.move_to_stage(record=into_quote, stage=quote, by=team.owner)
    services.move_to_stage(record=elsewhere, stage=stage("零售", "产品介绍"), by=team.owner)
    deliver()
    assert fired(rule) == [into_quote.pk]


def test_a_lead_created_in_the_robots_stage_enters_it(team, deliver):
    first = stage("线索", "已收到联系方式")
    rule = make_rule("lead", "stage_entered", stage=first, actions=[NOTE])
    arrived = LeadFactory.created_by(team.owner, stage=first)
    LeadFactory.created_by(team.owner, stage=stage("线索", "已指派负责人"))
    deliver()
    assert fired(rule) == [arrived.pk]
    assert RuleRun.objects.get(rule=rule).status == RunStatus.DONE


def test_stage_left_fires_when_a_deal_leaves_the_robots_stage(team, deliver):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "stage_left", stage=quote, actions=[NOTE])
    leaving = quote_deal(team.owner, stage=quote)
    entering = quote_deal(team.owner)
    services.move_to_stage(record=leaving, stage=stage("零售", "评估"), by=team.owner)
    services.move_to_stage(record=entering, stage=quote, by=team.owner)
    deliver()
    assert fired(rule) == [leaving.pk]
    assert RuleRun.objects.get(rule=rule).status == RunStatus.DONE


def test_a_deal_switched_to_another_pipeline_leaves_its_stage_and_enters_the_new_one(team, deliver):
    retail_quote, wholesale_quote = stage("零售", "报价"), stage("批发", "报价")
    left = make_rule("deal", "stage_left", stage=retail_quote, actions=[NOTE])
    entered = make_rule("deal", "stage_entered", stage=wholesale_quote, actions=[NOTE])
    left_retail = make_rule("deal", "stage_left", pipeline=retail_quote.pipeline, actions=[NOTE])
    left_wholesale = make_rule(
        "deal", "stage_left", pipeline=wholesale_quote.pipeline, actions=[NOTE]
    )
    deal = quote_deal(team.owner, stage=retail_quote)
    services.change_pipeline(deal=deal, stage=wholesale_quote, by=team.owner)
    deliver()
    for rule in (left, entered, left_retail):
        assert fired(rule) == [deal.pk]
        assert RuleRun.objects.get(rule=rule).status == RunStatus.DONE
    assert fired(left_wholesale) == []


def test_field_changed_at_all_fires_on_that_field_only(team, deliver):
    rule = make_rule("customer", "field_changed", params={"field": "level"}, actions=[NOTE])
    leveled = CustomerFactory(owner=team.owner)
    renamed = CustomerFactory(owner=team.owner)
    leveled.level = item("customer_level", "b")
    customers.update_customer(customer=leveled, by=team.owner)
    renamed.phone = "13812345678"
    customers.update_customer(customer=renamed, by=team.owner)
    deliver()
    assert fired(rule) == [leveled.pk]


def test_field_changed_to_a_dictionary_item_fires_by_its_code(team, deliver):
    vip = DictionaryItemFactory(dictionary__code="customer_level", code="vip", label="VIP")
    rule = make_rule(
        "customer", "field_changed", params={"field": "level", "to": "vip"}, actions=[NOTE]
    )
    assert rule.trigger_params == {"field": "level", "to": "vip"}
    promoted = CustomerFactory(owner=team.owner)
    other = CustomerFactory(owner=team.owner)
    promoted.level = vip
    customers.update_customer(customer=promoted, by=team.owner)
    other.level = item("customer_level", "a")
    customers.update_customer(customer=other, by=team.owner)
    deliver()
    assert fired(rule) == [promoted.pk]


def test_field_changed_to_a_tag_fires_when_the_tag_is_added(team, deliver):
    key = TagFactory(name="重点")
    rule = make_rule(
        "customer", "field_changed", params={"field": "tags", "to": "重点"}, actions=[NOTE]
    )
    tagged = CustomerFactory(owner=team.owner)
    had_it = CustomerFactory(owner=team.owner, tags=[key])
    customers.tag_customers(customers=Customer.objects.all(), tag=key, by=team.owner)
    customers.tag_customers(
        customers=Customer.objects.filter(pk=had_it.pk), tag=TagFactory(name="华东"), by=team.owner
    )
    deliver()
    assert fired(rule) == [tagged.pk]


def test_field_changed_to_a_person_or_a_choice_of_a_custom_field(team, deliver):
    interests = dictionary("interest", "兴趣", [("golf", "高尔夫", "Golf"), ("tea", "茶", "Tea")])
    custom_field("manager", "user", label="客户经理")
    custom_field("interests", "multi_choice", label="兴趣", dictionary=interests)
    to_colleague = make_rule(
        "customer",
        "field_changed",
        params={"field": "cf_manager", "to": "colleague"},
        actions=[NOTE],
    )
    to_golf = make_rule(
        "customer",
        "field_changed",
        params={"field": "cf_interests", "to": "高尔夫"},
        actions=[NOTE],
    )
    assert to_golf.trigger_params["to"] == "golf"
    first, second = CustomerFactory(owner=team.owner), CustomerFactory(owner=team.owner)
    first.custom = {"manager": team.colleague.pk, "interests": ["tea", "golf"]}
    customers.update_customer(customer=first, by=team.owner)
    second.custom = {"manager": team.owner.pk, "interests": ["tea"]}
    customers.update_customer(customer=second, by=team.owner)
    deliver()
    assert fired(to_colleague) == [first.pk]
    assert fired(to_golf) == [first.pk]


def test_field_changed_to_an_amount_fires_whatever_way_the_number_was_typed(team, deliver):
    rule = make_rule(
        "deal", "field_changed", params={"field": "amount", "to": "12万"}, actions=[NOTE]
    )
    deal = quote_deal(team.owner)
    deal.amount = Decimal("120000")
    services.update_deal(deal=deal, by=team.owner)
    deliver()
    assert fired(rule) == [deal.pk]


def test_lead_converted_fires_on_the_conversion(team, deliver):
    rule = make_rule("lead", "lead_converted", actions=[NOTE])
    lead = LeadFactory(owner=team.owner, company_name="苏州恒远")
    LeadFactory(owner=team.owner)
    services.convert_lead(
        lead=Lead.objects.get(pk=lead.pk),
        by=team.owner,
        customer=Customer(name="苏州恒远", owner=team.owner),
    )
    deliver()
    assert fired(rule) == [lead.pk]
    assert RuleRun.objects.get(rule=rule).status == RunStatus.DONE


def test_deal_won_and_deal_lost(team, deliver):
    won_rule = make_rule("deal", "deal_won", actions=[NOTE])
    lost_rule = make_rule("deal", "deal_lost", actions=[NOTE])
    won, lost, moved = (quote_deal(team.owner) for _ in range(3))
    services.move_to_stage(record=won, stage=stage("零售", "赢单"), by=team.owner)
    services.move_to_stage(
        record=lost,
        stage=stage("零售", "输单"),
        by=team.owner,
        lost_reason=item("lost_reason", "price"),
    )
    services.move_to_stage(record=moved, stage=stage("零售", "报价"), by=team.owner)
    deliver()
    assert fired(won_rule) == [won.pk]
    assert fired(lost_rule) == [lost.pk]


# --- Time ---------------------------------------------------------------------------------


def test_time_in_stage_over_n_days_fires_once_per_stay(team):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "time_in_stage", stage=quote, params={"days": 2}, actions=[NOTE])
    now = timezone.now()
    stuck = quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(days=3))
    fresh = quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(days=1))
    quote_deal(team.owner, stage_entered_at=now - timedelta(days=9))  # another stage

    assert scan_time_rules(now) == 1
    assert scan_time_rules(now) == 0
    assert fired(rule) == [stuck.pk]
    run_due()
    assert RuleRun.objects.get(rule=rule).status == RunStatus.DONE
    # A day and more later the fresh one is over the limit too.
    assert scan_time_rules(now + timedelta(days=1, hours=1)) == 1
    assert fired(rule) == [stuck.pk, fresh.pk]


def test_time_in_stage_over_n_hours(team):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "time_in_stage", stage=quote, params={"hours": 4}, actions=[NOTE])
    now = timezone.now()
    over = quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(hours=5))
    quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(hours=3))
    scan_time_rules(now)
    assert fired(rule) == [over.pk]


def test_time_in_stage_over_the_stages_own_time_limit(team):
    quote = stage("零售", "报价")
    assert quote.time_limit_days == 7
    rule = make_rule(
        "deal", "time_in_stage", stage=quote, params={"use_time_limit": True}, actions=[NOTE]
    )
    now = timezone.now()
    over = quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(days=8))
    quote_deal(team.owner, stage=quote, stage_entered_at=now - timedelta(days=6))
    scan_time_rules(now)
    assert fired(rule) == [over.pk]


def test_the_stages_time_limit_needs_a_stage_with_one(team, english):
    won = stage("零售", "赢单")
    with pytest.raises(ValidationError) as refused:
        make_rule("deal", "time_in_stage", stage=won, params={"use_time_limit": True})
    assert refused.value.messages == [
        f"The stage “{won}” has no time limit: give the hours or days."
    ]


def test_no_activity_for_n_days_fires_again_only_after_a_new_quiet_spell(team):
    rule = make_rule("customer", "no_activity", params={"days": 30}, actions=[NOTE])
    now = timezone.now()
    quiet = CustomerFactory(owner=team.owner, last_activity_at=now - timedelta(days=31))
    recent = CustomerFactory(owner=team.owner, last_activity_at=now - timedelta(days=10))
    never = CustomerFactory(owner=team.owner, created_at=now - timedelta(days=40))

    scan_time_rules(now)
    scan_time_rules(now)
    assert sorted(fired(rule)) == sorted([quiet.pk, never.pk])
    activities.log_activity(customer=quiet, by=team.owner, kind=None, content="电话回访")
    scan_time_rules(now + timedelta(days=10))
    assert sorted(fired(rule)) == sorted([quiet.pk, never.pk])
    # A month after the new follow-up: quiet again (and the recent one now too).
    scan_time_rules(now + timedelta(days=31))
    assert sorted(fired(rule)[2:]) == sorted([quiet.pk, recent.pk])


@pytest.mark.parametrize("trigger", ["no_activity", "schedule"])
def test_a_scan_over_its_limit_goes_on_where_it_stopped(team, settings, trigger):
    settings.CRM_AUTOMATION_SCAN_LIMIT = 2
    params = {"days": 30} if trigger == "no_activity" else {"at": "00:00"}
    rule = make_rule("customer", trigger, params=params, actions=[NOTE])
    now = timezone.now()
    quiet = CustomerFactory.create_batch(
        5, owner=team.owner, last_activity_at=now - timedelta(days=40)
    )
    assert [scan_time_rules(now) for _scan in range(4)] == [2, 2, 1, 0]
    assert sorted(fired(rule)) == sorted(customer.pk for customer in quiet)


def test_a_birthday_fires_once_after_its_time_of_day_in_shanghai(team):
    rule = make_rule(
        "contact", "anniversary", params={"field": "birthday", "at": "09:00"}, actions=[NOTE]
    )
    assert rule.trigger_params == {"field": "birthday", "at": "09:00"}
    contact = ContactFactory(customer=CustomerFactory(owner=team.owner), birthday=date(1990, 3, 15))
    ContactFactory(customer=CustomerFactory(owner=team.owner), birthday=date(1990, 3, 16))

    # 08:59 in Shanghai is 00:59 UTC: not yet.
    assert scan_time_rules(local(2025, 3, 15, 8, 59)) == 0
    assert scan_time_rules(local(2025, 3, 15, 9, 1)) == 1
    assert scan_time_rules(local(2025, 3, 15, 15, 0)) == 0
    assert fired(rule) == [contact.pk]
    run_due()
    assert team.owner.notifications.get().title == contact.name
    # The next year is a new occasion.
    assert scan_time_rules(local(2026, 3, 15, 9, 0)) == 1


def test_a_birthday_in_shanghai_is_its_local_day_not_utcs(team):
    rule = make_rule("contact", "anniversary", params={"at": "07:00"}, actions=[NOTE])
    contact = ContactFactory(customer=CustomerFactory(owner=team.owner), birthday=date(1990, 3, 15))
    # 07:30 on the 15th in Shanghai is still the 14th in UTC.
    scan_time_rules(local(2025, 3, 15, 7, 30))
    assert fired(rule) == [contact.pk]


def test_29_february_birthdays_are_greeted_on_28_february_in_other_years(team):
    rule = make_rule("contact", "anniversary", params={"at": "09:00"}, actions=[NOTE])
    customer = CustomerFactory(owner=team.owner)
    leapling = ContactFactory(customer=customer, birthday=date(2000, 2, 29))
    on_28th = ContactFactory(customer=customer, birthday=date(1990, 2, 28))

    scan_time_rules(local(2024, 2, 28, 10, 0))  # a leap year: the 29th comes
    assert fired(rule) == [on_28th.pk]
    scan_time_rules(local(2024, 2, 29, 10, 0))
    assert fired(rule) == [on_28th.pk, leapling.pk]
    scan_time_rules(local(2025, 2, 28, 10, 0))
    assert sorted(fired(rule)[2:]) == sorted([leapling.pk, on_28th.pk])


def test_the_anniversary_of_a_custom_date_field(team):
    custom_field("founded", "date", label="成立日期")
    rule = make_rule(
        "customer", "anniversary", params={"field": "cf_founded", "at": "10:00"}, actions=[NOTE]
    )
    founded = CustomerFactory(owner=team.owner, custom={"founded": "2010-05-01"})
    CustomerFactory(owner=team.owner, custom={"founded": "2010-05-02"})
    scan_time_rules(local(2025, 5, 1, 10, 30))
    assert fired(rule) == [founded.pk]


def test_a_daily_schedule_fires_each_day_after_its_time_on_the_matching_records(team):
    rule = make_rule(
        "customer",
        "schedule",
        params={"at": "09:00"},
        conditions=[{"field": "level", "op": "eq", "value": "a"}],
        actions=[NOTE],
    )
    key = CustomerFactory(owner=team.owner, level=item("customer_level", "a"))
    CustomerFactory(owner=team.owner, level=item("customer_level", "b"))

    assert scan_time_rules(local(2025, 6, 2, 8, 0)) == 0
    assert scan_time_rules(local(2025, 6, 2, 9, 5)) == 1
    assert scan_time_rules(local(2025, 6, 2, 18, 0)) == 0
    assert scan_time_rules(local(2025, 6, 3, 9, 5)) == 1
    assert fired(rule) == [key.pk, key.pk]
    assert run_due() == 2


def test_a_weekly_schedule_fires_on_its_weekday_only(team):
    rule = make_rule("customer", "schedule", params={"at": "09:00", "weekday": 1}, actions=[NOTE])
    customer = CustomerFactory(owner=team.owner)
    assert local(2025, 6, 2).isoweekday() == 1
    assert scan_time_rules(local(2025, 6, 3, 10, 0)) == 0  # a Tuesday
    assert scan_time_rules(local(2025, 6, 9, 10, 0)) == 1  # the next Monday
    assert fired(rule) == [customer.pk]
