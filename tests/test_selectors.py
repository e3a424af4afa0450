"""The read-side questions (crm.selectors, pipelines.selectors), asked directly with a
user as automation and the API will ask them: each answers inside the user's data scope
(the owner sees hers, a colleague whose role spans the department sees them too, an
outsider from another department does not) and draws its line where the pages do
(stale after exactly N days, a task due now is not overdue yet, a deal exactly at its
stage's time limit is not over it). Every test asks about one fixed moment (`now`)."""

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import DataScope
from crm import selectors as crm_selectors
from crm.models import Customer, Dictionary, DictionaryItem, TaskStatus
from pipelines import selectors as pipeline_selectors
from pipelines.models import Deal, Lead, StageKind
from reports.base import Context
from reports.library.activity import ActivityReport
from reports.periods import period_for

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    PipelineFactory,
    StageFactory,
    TaskFactory,
    crm_permissions,
    item,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def people(org):
    """owner: her own records; colleague: the whole of 销售一部 (the owner's department);
    outsider: her own records in 销售二部."""
    perms = crm_permissions(("view", "add", "change"), types=TYPES)
    org.owner = org.set_scope(org.owner, DataScope.OWN, perms)
    org.colleague = org.set_scope(org.colleague, DataScope.DEPARTMENT, perms)
    org.outsider = org.set_scope(org.outsider, DataScope.OWN, perms)
    return org


@pytest.fixture
def now():
    """Noon today (local time): "today" has hours on both sides."""
    return timezone.make_aware(datetime.combine(timezone.localdate(), time(12)))


def pks(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


# --- Stale customers -----------------------------------------------------------------


def test_stale_customers_after_exactly_n_days_and_only_in_scope(people, now):
    owner = people.owner
    old = now - timedelta(days=60)
    at_limit = CustomerFactory(owner=owner, created_at=old, last_activity_at=now - timedelta(30))
    past_limit = CustomerFactory(
        owner=owner, created_at=old, last_activity_at=now - timedelta(days=30, seconds=1)
    )
    never_followed = CustomerFactory(owner=owner, created_at=now - timedelta(days=31))
    new = CustomerFactory(owner=owner, created_at=now - timedelta(days=29))
    in_pool = CustomerFactory(owner=None, created_at=old)

    stale = pks(crm_selectors.stale_customers(owner, 30, now=now))

    assert stale == {past_limit.pk, never_followed.pk, in_pool.pk}
    assert at_limit.pk not in stale and new.pk not in stale
    # The colleague's role spans the department: she sees the owner's stale customers.
    assert pks(crm_selectors.stale_customers(people.colleague, 30, now=now)) == stale
    # The outsider sees only the public pool's.
    assert pks(crm_selectors.stale_customers(people.outsider, 30, now=now)) == {in_pool.pk}


def test_the_list_and_the_report_count_the_selectors_stale_customers(people, client):
    """The customer list's "stale" filter and the activity report's table ask the same
    question (a day's margin on each side: the pages ask about their own moment)."""
    owner, now = people.owner, timezone.now()
    old = now - timedelta(days=90)
    stale = CustomerFactory(owner=owner, created_at=old, last_activity_at=now - timedelta(31))
    CustomerFactory(owner=owner, created_at=old, last_activity_at=now - timedelta(29))
    CustomerFactory(owner=people.outsider, created_at=old)

    expected = pks(crm_selectors.stale_customers(owner, 30))
    assert expected == {stale.pk}

    client.force_login(owner)
    response = client.get("/customers/", {"stale": "30"})
    assert {c.pk for c in response.context["object_list"]} == expected

    ctx = Context(user=owner, period=period_for("month"), params={"days": 30})
    _table, total, _url = ActivityReport().stale(ctx, now)
    assert total == len(expected)


# --- Customers' next follow-up -----------------------------------------------------------


def test_follow_ups_due_by_the_end_of_today_are_the_users_own(people, now):
    owner, colleague = people.owner, people.colleague
    end_of_today = crm_selectors.end_of_today(now)
    missed = CustomerFactory(owner=owner, next_follow_up_at=now - timedelta(hours=1))
    tonight = CustomerFactory(owner=owner, next_follow_up_at=end_of_today - timedelta(seconds=1))
    CustomerFactory(owner=owner, next_follow_up_at=end_of_today)  # tomorrow, midnight
    CustomerFactory(owner=owner)  # none planned
    theirs = CustomerFactory(owner=colleague, next_follow_up_at=now)

    assert list(crm_selectors.follow_ups_due(owner, now=now)) == [missed, tonight]
    # The colleague sees the owner's customers, but her card lists her own.
    assert list(crm_selectors.follow_ups_due(colleague, now=now)) == [theirs]
    assert list(crm_selectors.follow_ups_due(people.outsider, now=now)) == []


def test_follow_up_windows(people, now):
    owner = people.owner
    at = {
        "missed": now - timedelta(minutes=1),
        "now": now,
        "in_a_week": now + timedelta(days=7),
        "almost_a_week": now + timedelta(days=7, seconds=-1),
    }
    customers = {
        name: CustomerFactory(owner=owner, next_follow_up_at=value) for name, value in at.items()
    }
    customers["none"] = CustomerFactory(owner=owner)
    by_pk = {c.pk: name for name, c in customers.items()}

    def window(name):
        rows = Customer.objects.visible_to(owner).filter(crm_selectors.follow_up_q(name, now=now))
        return {by_pk[pk] for pk in pks(rows)}

    assert window(crm_selectors.FOLLOW_UP_OVERDUE) == {"missed"}
    assert window(crm_selectors.FOLLOW_UP_DUE) == {"missed", "now"}
    assert window(crm_selectors.FOLLOW_UP_WEEK) == {"now", "almost_a_week"}
    assert window(crm_selectors.FOLLOW_UP_NONE) == {"none"}
    assert window("anything else") == set(customers)


# --- Tasks due and overdue ---------------------------------------------------------------


@pytest.fixture
def tasks(people, now):
    owner = people.owner
    customer = CustomerFactory(owner=owner)
    make = TaskFactory
    return {
        "missed": make(assignee=owner, customer=customer, due_at=now - timedelta(minutes=1)),
        "due_now": make(assignee=owner, customer=customer, due_at=now),
        "tonight": make(assignee=owner, customer=customer, due_at=now + timedelta(hours=11)),
        "tomorrow": make(assignee=owner, customer=customer, due_at=crm_selectors.end_of_today(now)),
        "done_late": make(
            assignee=owner,
            customer=customer,
            due_at=now - timedelta(hours=1),
            status=TaskStatus.DONE,
            completed_at=now,
        ),
        "someday": make(assignee=owner, customer=customer, due_at=None),
        "outsiders": make(assignee=people.outsider, due_at=now - timedelta(days=1)),
    }


def test_a_task_due_today_is_not_overdue_until_its_time(people, tasks, now):
    owner = people.owner
    names = {task.pk: name for name, task in tasks.items()}

    def named(queryset):
        return [names[task.pk] for task in queryset]

    assert named(crm_selectors.overdue_tasks(owner, now=now)) == ["missed"]
    assert named(crm_selectors.tasks_due_later_today(owner, now=now)) == ["due_now", "tonight"]
    assert crm_selectors.task_counts(owner, now=now) == {"today": 2, "overdue": 1}


def test_task_due_windows(people, tasks, now):
    owner = people.owner
    names = {task.pk: name for name, task in tasks.items()}

    def window(name):
        rows = type(tasks["missed"]).objects.visible_to(owner)
        return {names[pk] for pk in pks(rows.filter(crm_selectors.task_due_q(name, now=now)))}

    assert window(crm_selectors.TASK_DUE_TODAY) == {"missed", "due_now", "tonight", "done_late"}
    assert window(crm_selectors.TASK_OVERDUE) == {"missed"}
    assert window(crm_selectors.TASK_UPCOMING) == {"tomorrow"}
    assert window(crm_selectors.TASK_NO_DUE) == {"someday"}


def test_overdue_tasks_by_scope(people, tasks, now):
    # Her own cards list the tasks assigned to her, whatever else she sees.
    assert list(crm_selectors.overdue_tasks(people.colleague, now=now)) == []
    assert list(crm_selectors.overdue_tasks(people.outsider, now=now)) == [tasks["outsiders"]]
    # The manager's card: the people of her scope with overdue tasks.
    team = [(p.pk, p.overdue) for p in crm_selectors.team_overdue(people.colleague, now=now)]
    assert team == [(people.owner.pk, 1)]
    outsider_team = [
        (p.pk, p.overdue) for p in crm_selectors.team_overdue(people.outsider, now=now)
    ]
    assert outsider_team == [(people.outsider.pk, 1)]


# --- Timelines and open tasks of a record -----------------------------------------------


def test_a_customers_timeline_holds_its_own_and_its_contacts_follow_ups(people, now):
    owner = people.owner
    customer = CustomerFactory(owner=owner)
    contact = ContactFactory(customer=customer)
    older = ActivityFactory(customer=customer, occurred_at=now - timedelta(days=2))
    newer = ActivityFactory(customer=customer, contact=contact, occurred_at=now)
    ActivityFactory(customer=CustomerFactory(owner=owner), occurred_at=now)  # another's

    assert list(crm_selectors.timeline(owner, customer)) == [newer, older]
    assert list(crm_selectors.timeline(owner, contact)) == [newer]
    assert list(crm_selectors.timeline(people.colleague, customer)) == [newer, older]
    assert list(crm_selectors.timeline(people.outsider, customer)) == []


def test_a_leads_timeline_and_open_tasks_are_those_about_it(people, now):
    owner = people.owner
    lead = LeadFactory(owner=owner)
    logged = ActivityFactory(customer=None, author=owner, subject=lead, occurred_at=now)
    later = TaskFactory(assignee=owner, subject=lead, due_at=now + timedelta(days=1))
    sooner = TaskFactory(assignee=owner, subject=lead, due_at=now)
    undated = TaskFactory(assignee=owner, subject=lead, due_at=None)
    TaskFactory(assignee=owner, subject=lead, due_at=now, status=TaskStatus.DONE)

    assert list(crm_selectors.timeline(owner, lead)) == [logged]
    assert list(crm_selectors.open_tasks_about(owner, lead)) == [sooner, later, undated]
    assert list(crm_selectors.timeline(people.outsider, lead)) == []
    assert list(crm_selectors.open_tasks_about(people.outsider, lead)) == []


# --- Over the stage's time limit ---------------------------------------------------------


@pytest.fixture
def limited():
    """A deal pipeline of our own: 洽谈 allows 5 days, 初访 has no limit."""
    pipeline = PipelineFactory()
    return {
        "talks": StageFactory(pipeline=pipeline, name="洽谈", time_limit_days=5),
        "first": StageFactory(pipeline=pipeline, name="初访", time_limit_days=None),
        "lost": StageFactory(
            pipeline=pipeline, name="输单", kind=StageKind.LOST, time_limit_days=5
        ),
    }


def test_a_deal_exactly_at_its_stages_time_limit_is_not_over_it(people, limited):
    owner, now = people.owner, timezone.now()
    talks = limited["talks"]
    # A minute's margin: the records' own over_time_limit asks about its own moment.
    at_limit = DealFactory(owner=owner, stage=talks, stage_entered_at=now - timedelta(days=5))
    almost = DealFactory(
        owner=owner, stage=talks, stage_entered_at=now - timedelta(days=6, minutes=-1)
    )
    over = DealFactory(owner=owner, stage=talks, stage_entered_at=now - timedelta(days=6))
    unlimited = DealFactory(
        owner=owner, stage=limited["first"], stage_entered_at=now - timedelta(99)
    )
    lost = DealFactory(owner=owner, stage=limited["lost"], stage_entered_at=now - timedelta(99))

    found = pks(pipeline_selectors.over_time_limit(owner, Deal, now=now))

    assert found == {over.pk}
    for deal in (at_limit, almost, over, unlimited, lost):
        deal.refresh_from_db()
        assert deal.over_time_limit == (deal.pk in found), deal.title
    assert pks(pipeline_selectors.over_time_limit(people.colleague, Deal, now=now)) == found
    assert pks(pipeline_selectors.over_time_limit(people.outsider, Deal, now=now)) == set()


def test_over_the_time_limit_asks_about_active_pipelines_unless_given_stages(people, limited):
    owner, now = people.owner, timezone.now()
    talks = limited["talks"]
    over = DealFactory(owner=owner, stage=talks, stage_entered_at=now - timedelta(days=10))
    talks.pipeline.is_active = False
    talks.pipeline.save(update_fields=["is_active"])

    assert pks(pipeline_selectors.over_time_limit(owner, Deal, now=now)) == set()
    found = pipeline_selectors.over_time_limit(owner, Deal, stages=[talks], now=now)
    assert pks(found) == {over.pk}


def test_leads_over_their_stages_time_limit(people):
    owner, now = people.owner, timezone.now()
    collecting = stage("线索", "收集线索信息")  # seeded with a 5-day limit
    assert collecting.time_limit_days == 5
    over = LeadFactory(owner=owner, stage=collecting, stage_entered_at=now - timedelta(days=6))
    LeadFactory(owner=owner, stage=collecting, stage_entered_at=now - timedelta(days=5))
    pooled = LeadFactory(owner=None, stage=collecting, stage_entered_at=now - timedelta(days=9))

    assert pks(pipeline_selectors.over_time_limit(owner, Lead, now=now)) == {over.pk, pooled.pk}
    assert pks(pipeline_selectors.over_time_limit(people.outsider, Lead, now=now)) == {pooled.pk}


# --- Deals past their expected close ------------------------------------------------------


def test_deals_past_their_expected_close_are_open_and_before_today(people):
    owner, today = people.owner, timezone.localdate()
    pipeline = PipelineFactory()
    open_stage = StageFactory(pipeline=pipeline)
    won_stage = StageFactory(pipeline=pipeline, kind=StageKind.WON)
    past = DealFactory(owner=owner, stage=open_stage, expected_close_date=today - timedelta(1))
    DealFactory(owner=owner, stage=open_stage, expected_close_date=today)
    DealFactory(owner=owner, stage=open_stage, expected_close_date=None)
    DealFactory(owner=owner, stage=won_stage, expected_close_date=today - timedelta(1))

    assert pks(pipeline_selectors.past_expected_close(owner, today=today)) == {past.pk}
    assert pks(pipeline_selectors.past_expected_close(people.colleague, today=today)) == {past.pk}
    assert pks(pipeline_selectors.past_expected_close(people.outsider, today=today)) == set()


# --- Vague lost reasons -------------------------------------------------------------------


def test_lost_vaguely_means_no_reason_or_a_vague_one(people):
    owner = people.owner
    lost_stage = stage("线索", "无效线索")
    other = DictionaryItem.objects.create(
        dictionary=Dictionary.objects.get(code="lost_reason"), code="other", label="其他"
    )
    no_reason = LeadFactory(owner=owner, stage=lost_stage, lost_reason=None)
    vague = LeadFactory(owner=owner, stage=lost_stage, lost_reason=other)
    LeadFactory(owner=owner, stage=lost_stage, lost_reason=item("lost_reason", "price"))
    LeadFactory(owner=owner, lost_reason=None)  # open: nothing to explain yet

    expected = {no_reason.pk, vague.pk}
    assert pks(pipeline_selectors.lost_vaguely(owner, Lead)) == expected
    assert pks(pipeline_selectors.lost_vaguely(people.colleague, Lead)) == expected
    assert pks(pipeline_selectors.lost_vaguely(people.outsider, Lead)) == set()


# --- The board -------------------------------------------------------------------------------


def test_the_boards_columns_hold_what_the_user_sees(people, now):
    owner = people.owner
    pipeline = PipelineFactory()
    talks = StageFactory(pipeline=pipeline, name="洽谈")
    won = StageFactory(pipeline=pipeline, name="赢单", kind=StageKind.WON)
    small = DealFactory(owner=owner, stage=talks, amount=Decimal("100"))
    big = DealFactory(owner=owner, stage=talks, amount=Decimal("900"))
    recent = DealFactory(owner=owner, stage=won, closed_at=now - timedelta(days=29))
    DealFactory(owner=owner, stage=won, closed_at=now - timedelta(days=31))  # long closed

    def board(user):
        query = pipeline_selectors.BoardQuery(user, pipeline, now=now)
        return {
            totals.stage.name: (totals.count, totals.amount, [card.pk for card in cards])
            for totals, cards in query.columns()
        }

    mine = board(owner)
    assert mine["洽谈"] == (2, Decimal("1000.00"), [big.pk, small.pk])
    assert mine["赢单"][0] == 1 and mine["赢单"][2] == [recent.pk]
    assert board(people.colleague) == mine
    assert board(people.outsider) == {
        "洽谈": (0, Decimal("0.00"), []),
        "赢单": (0, Decimal("0.00"), []),
    }


def test_a_board_hiding_the_amount_orders_deals_by_age(people, now):
    owner = people.owner
    owner.role.field_permissions = {"deal": {"amount": "hidden"}}
    owner.role.save(update_fields=["field_permissions"])
    pipeline = PipelineFactory()
    talks = StageFactory(pipeline=pipeline)
    older_big = DealFactory(owner=owner, stage=talks, amount=Decimal("900"))
    newer_small = DealFactory(owner=owner, stage=talks, amount=Decimal("100"))
    Deal.objects.filter(pk=older_big.pk).update(created_at=now - timedelta(days=1))

    query = pipeline_selectors.BoardQuery(owner, pipeline, now=now)
    ((_totals, cards),) = query.columns()
    assert not query.by_amount
    assert [card.pk for card in cards] == [newer_small.pk, older_big.pk]
