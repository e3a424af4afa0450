"""A worker's message of events handled together: what the events share is read once
(the records, in one query per type), and an action that changes a record makes the
events after it read that record again; the shortcuts underneath (a user in scope read
from the row in hand, a date range checked in Python, foreign keys handed over loaded)
say what the queries said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import access
from accounts.models import DataScope, User
from automation import batch, engine
from automation.models import ActionStatus, RuleRun, RunStatus
from crm import events
from crm.dates import RangeCheck
from crm.models import Change, Contact, Customer, Task
from crm.services import contacts, customers
from crm.services.tasks import loaded_relations
from pipelines import services
from pipelines.models import Deal

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    crm_permissions,
    make_rule,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def team(org, settings):
    settings.LANGUAGE_CODE = "en"
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    org.owner = org.set_scope(org.owner, DataScope.OWN, permissions)
    return org


def quote_deal(owner) -> Deal:
    contact = ContactFactory(customer=CustomerFactory(owner=owner))
    return DealFactory.created_by(
        owner,
        customer=contact.customer,
        contact=contact,
        amount=Decimal("50000"),
        expected_close_date=timezone.localdate() + timedelta(days=30),
    )


def deliver_together(capture) -> list[int]:
    """Every undelivered event handed over as one message, as a worker gets a
    transaction's events; returns their ids."""
    ids = list(
        Change.objects.filter(delivered_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    with capture(execute=True):
        events.deliver(ids)
    return ids


def edit_title_then_amount(deal: Deal, by, amount: str) -> None:
    """Two edits of the deal in one transaction: its title, then its amount (two events,
    one message)."""
    with transaction.atomic():
        deal = Deal.objects.get(pk=deal.pk)
        deal.title += "（二期）"
        services.update_deal(deal=deal, by=by)
        deal = Deal.objects.get(pk=deal.pk)
        deal.amount = Decimal(amount)
        services.update_deal(deal=deal, by=by)


def retitle_together(deals: list[Deal], by) -> None:
    """A title edit of each deal, all in one transaction (one event each, one message)."""
    with transaction.atomic():
        for deal in deals:
            deal.title += "·"
            services.update_deal(deal=deal, by=by)


def test_an_event_after_an_action_that_changed_its_record_reads_it_again(
    team, django_capture_on_commit_callbacks
):
    """Two edits of a deal in one transaction, one message. The first one's rule moves
    the deal on; the second one's rule applies in the stage it moved to. Read from the
    message's start, the deal would still be in its old stage and the second rule would
    not match."""
    interest, quote = stage("零售", "产生兴趣"), stage("零售", "报价")
    make_rule(
        "deal",
        "field_changed",
        name="改标题就报价",
        params={"field": "title"},
        actions=[("move_stage", {"stage": quote.pk})],
    )
    in_quote = make_rule(
        "deal",
        "field_changed",
        name="报价中改金额",
        params={"field": "amount"},
        stage=quote,
        actions=[("notify", {"title": "金额变了", "to": {"type": "owner"}})],
    )
    deal = quote_deal(team.owner)
    services.move_to_stage(record=deal, stage=interest, by=team.owner)
    deliver_together(django_capture_on_commit_callbacks)

    edit_title_then_amount(deal, team.owner, "80000")
    delivered = deliver_together(django_capture_on_commit_callbacks)

    assert len(delivered) == 2
    assert Deal.objects.get(pk=deal.pk).stage == quote
    run = RuleRun.objects.get(rule=in_quote)
    assert run.status == RunStatus.DONE
    assert run.trace == []  # no conditions; the stage check passed


def test_an_action_on_one_record_is_seen_by_the_next_event_on_another(
    team, django_capture_on_commit_callbacks
):
    """A customer and its contact edited in one transaction, one message. The
    customer's rule returns it to the public pool; the contact's rule then gives a task
    to the contact's owner, who is the customer's owner: nobody any more. Had the contact
    been read at the message's start, the task would go to the former owner."""
    make_rule(
        "customer",
        "field_changed",
        name="改名回公海",
        params={"field": "name"},
        actions=[("release", {"reason": "改名"})],
    )
    task_rule = make_rule(
        "contact",
        "field_changed",
        name="联系人改名跟进",
        params={"field": "name"},
        actions=[
            ("create_task", {"title": "核对 {{ record }}", "due": {"amount": 1, "unit": "days"}})
        ],
    )
    contact = ContactFactory(customer=CustomerFactory(owner=team.owner))
    deliver_together(django_capture_on_commit_callbacks)
    with transaction.atomic():
        customer = Customer.objects.get(pk=contact.customer_id)
        customer.name += "（新）"
        customers.update_customer(customer=customer, by=team.owner)
        contact = Contact.objects.get(pk=contact.pk)
        contact.name += "先生"
        contacts.update_contact(contact=contact, by=team.owner)
    assert len(deliver_together(django_capture_on_commit_callbacks)) == 2

    assert Customer.objects.get(pk=customer.pk).owner is None
    run = RuleRun.objects.get(rule=task_rule)
    assert run.status == RunStatus.DONE
    assert run.action_runs.get().status == ActionStatus.SKIPPED
    assert not Task.objects.exists()


def test_a_message_reads_its_records_once(team, django_capture_on_commit_callbacks):
    """Ten deals edited in one transaction, a rule on every edit whose condition does
    not hold: one query loads the ten deals, the condition (a number) is checked on
    them in hand, and the ten runs that did not match are written with one insert."""
    rule = make_rule(
        "deal",
        "field_changed",
        params={"field": "title"},
        conditions=[{"field": "amount", "op": "gt", "value": "1000000"}],
        actions=[("notify", {"title": "大单", "to": {"type": "owner"}})],
    )
    deals = [quote_deal(team.owner) for _n in range(10)]
    deliver_together(django_capture_on_commit_callbacks)
    retitle_together(deals, by=team.owner)
    ids = list(
        Change.objects.filter(delivered_at__isnull=True).order_by("pk").values_list("pk", flat=True)
    )
    engine.forget_rules()
    engine.active_rules()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks():
        events.deliver(ids)
    assert RuleRun.objects.filter(rule=rule, status=RunStatus.NOT_MATCHED).count() == 10
    deal_reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "pipelines_deal"' in q["sql"]
    ]
    assert len(deal_reads) == 1 and " IN (" in deal_reads[0]
    run_inserts = [  # an INSERT, or COPY on PostgreSQL (crm.bulk)
        q
        for q in queries.captured_queries
        if q["sql"].startswith(('INSERT INTO "automation_rulerun"', 'COPY "automation_rulerun"'))
    ]
    assert len(run_inserts) == 1
    assert len(queries.captured_queries) <= 10


def test_a_robot_task_made_in_one_message_completes_when_a_later_one_moves_the_deal_on(
    team, django_capture_on_commit_callbacks
):
    """The tasks to complete on leaving a stage are looked up once per message: a task
    made by one message is found by the next."""
    quote, evaluation = stage("零售", "报价"), stage("零售", "评估")
    make_rule(
        "deal",
        "stage_entered",
        stage=quote,
        actions=[
            (
                "create_task",
                {
                    "title": "发报价",
                    "due": {"amount": 1, "unit": "days"},
                    "complete_on_leave": True,
                },
            ),
            ("move_stage", {"stage": evaluation.pk}),
        ],
    )
    deal = quote_deal(team.owner)
    services.move_to_stage(record=deal, stage=quote, by=team.owner)
    for _round in range(4):
        if not deliver_together(django_capture_on_commit_callbacks):
            break
    task = Task.objects.get(title="发报价")
    assert Deal.objects.get(pk=deal.pk).stage == evaluation
    assert task.status == "done"


def test_a_task_made_earlier_in_the_message_follows_the_deal_an_action_then_reassigns(
    team, django_capture_on_commit_callbacks
):
    """A message's tasks are inserted when it is done, but an action that changes
    records writes them first: the deal given to a colleague takes the open task a
    rule just made for its old owner (as `transfer_records` does for saved tasks)."""
    make_rule(
        "deal",
        "field_changed",
        params={"field": "title"},
        actions=[("create_task", {"title": "跟进新标题", "due": {"amount": 1, "unit": "days"}})],
    )
    make_rule(
        "deal",
        "field_changed",
        params={"field": "amount"},
        actions=[("assign_owner", {"to": "user", "user": team.colleague.username})],
    )
    deal = quote_deal(team.owner)
    deliver_together(django_capture_on_commit_callbacks)
    edit_title_then_amount(deal, team.owner, "90000")
    assert len(deliver_together(django_capture_on_commit_callbacks)) == 2

    assert Deal.objects.get(pk=deal.pk).owner == team.colleague
    task = Task.objects.get(title="跟进新标题")
    assert task.assignee == team.colleague
    created = Change.objects.get(kind="created", record_id=task.pk, record_type__model="task")
    assert created.delivered_at is None  # handed on in the next message


def test_the_fewest_open_tasks_count_the_tasks_made_earlier_in_the_message(
    team, django_capture_on_commit_callbacks
):
    """Two deals edited in one transaction, a rule giving a task to whoever of the
    owner's department with the role has the fewest open tasks: the second task goes
    to someone else than the first, as it would one message per event."""
    make_rule(
        "deal",
        "field_changed",
        params={"field": "title"},
        actions=[
            (
                "create_task",
                {
                    "title": "轮到谁",
                    "due": {"amount": 1, "unit": "days"},
                    "assignee": {"type": "role", "role": team.owner.role.name},
                },
            )
        ],
    )
    team.colleague.role = team.owner.role
    team.colleague.save(update_fields=["role"])
    deals = [quote_deal(team.owner) for _n in range(2)]
    deliver_together(django_capture_on_commit_callbacks)
    retitle_together(deals, by=team.owner)
    deliver_together(django_capture_on_commit_callbacks)

    assignees = list(Task.objects.filter(title="轮到谁").values_list("assignee", flat=True))
    assert len(assignees) == 2 and len(set(assignees)) == 2


def test_outside_a_message_nothing_is_shared():
    assert batch.current() is None
    calls = []
    assert batch.memo("k", lambda: calls.append(1) or 1) == 1
    assert batch.memo("k", lambda: calls.append(1) or 1) == 1
    assert len(calls) == 2
    with batch.sharing():
        batch.memo("k", lambda: calls.append(1) or 1)
        batch.memo("k", lambda: calls.append(1) or 1)
    assert len(calls) == 3


# --- The shortcuts underneath ---------------------------------------------------------------


def test_a_user_in_scope_read_from_the_row_says_what_the_query_says(org):
    manager = org.set_scope(org.colleague, DataScope.DEPARTMENT_TREE)
    department = org.set_scope(org.sub_member, DataScope.DEPARTMENT)
    gone = User.objects.get(pk=org.outsider.pk)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    people = list(User.objects.select_related("department", "role"))
    for viewer in (org.owner, manager, department, org.admin):
        in_scope = set(access.users_in_scope(viewer).values_list("pk", flat=True))
        for person in people:
            assert access.user_in_scope(viewer, person) == (person.pk in in_scope), (
                viewer.username,
                person.username,
            )
    assert not access.user_in_scope(org.owner, None)
    # Someone else to hand a record to: the same answer as the query.
    for viewer in (org.owner, manager, department, org.admin):
        in_scope = set(access.users_in_scope(viewer).values_list("pk", flat=True))
        for person in people:
            assert access.anyone_in_scope_but(viewer, person.pk) == bool(in_scope - {person.pk})


def test_a_date_range_check_needs_no_query_and_refuses_what_the_database_would(org):
    check = next(c for c in Task._meta.constraints if c.name == "task_due_range")
    assert isinstance(check, RangeCheck)
    fine = Task(title="回访", assignee=org.owner, due_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        check.validate(Task, fine)
    assert len(queries.captured_queries) == 0
    for moment in (datetime(1800, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)):
        task = Task(title="回访", assignee=org.owner, due_at=moment)
        with pytest.raises(ValidationError) as refused:
            check.validate(Task, task)
        assert refused.value.messages == [str(check.violation_error_message)]
    check.validate(Task, Task(title="回访", assignee=org.owner, due_at=None))
    # Migrations see Django's own CheckConstraint, with the same condition.
    path, _args, kwargs = check.deconstruct()
    assert path == "django.db.models.CheckConstraint"
    assert set(kwargs) == {"condition", "name", "violation_error_message"}
    assert check.clone().validate(Task, fine) is None


def test_foreign_keys_handed_over_loaded_are_not_queried_again(org):
    customer = CustomerFactory(owner=org.owner)
    task = Task(title="回访", assignee=org.owner, customer=customer, due_at=timezone.now())
    assert set(loaded_relations(task)) >= {"assignee", "customer"}
    by_id = Task(title="回访", assignee_id=org.owner.pk, customer_id=customer.pk)
    assert loaded_relations(by_id) == []
    unsaved = Task(title="回访", assignee=User(username="new"))
    assert "assignee" not in loaded_relations(unsaved)


def test_conditions_checked_in_python_say_what_the_database_says(team):
    """Number and choice columns are compared on the record in hand; every operator on
    them gives what the condition's filter gives, at and around the boundary."""
    from automation import conditions as conds

    cases = {
        "amount": (["1000", "0", "1000.01"], [["1000", "2500000"], ["7"]]),
        "probability": (["50", "0"], [["0", "100"]]),
        "status": (["open", "won"], [["open", "lost"], ["won"]]),
    }
    deals = [quote_deal(team.owner) for _n in range(5)]
    for deal, amount, probability, status in zip(
        deals,
        ("0", "999.99", "1000", "1000.01", "2500000"),
        (0, 50, 100, 10, 50),
        ("open", "won", "lost", "open", "open"),
        strict=True,
    ):
        Deal.objects.filter(pk=deal.pk).update(
            amount=Decimal(amount), probability=probability, status=status
        )
    checked = 0
    for deal in Deal.objects.filter(pk__in=[d.pk for d in deals]):
        for field, (singles, lists) in cases.items():
            leaves = [{"field": field, "op": op} for op in ("empty", "not_empty")]
            for value in singles:
                ops = ("eq", "ne") if field == "status" else ("eq", "ne", "gt", "lt")
                leaves += [{"field": field, "op": op, "value": value} for op in ops]
            for values in lists:
                leaves += [{"field": field, "op": op, "value": values} for op in ("in", "not_in")]
            for leaf in leaves:
                in_python = conds.in_python("deal", leaf, deal)
                in_sql = Deal.objects.filter(pk=deal.pk).filter(conds.leaf_q("deal", leaf)).exists()
                assert in_python is not None and in_python == in_sql, (leaf, deal.amount)
                checked += 1
    assert checked > 150
    # Text with no letter case (Chinese, digits) is compared in hand too.
    Deal.objects.filter(pk=deals[0].pk).update(title="华东合同续签 2027")
    Deal.objects.filter(pk=deals[1].pk).update(title="")
    text_leaves = [
        {"field": "title", "op": op, "value": value}
        for op in ("contains", "eq", "ne")
        for value in ("合同", "华东合同续签 2027", "2027", "合同 ", "续签合同")
    ]
    text_leaves += [
        {"field": "title", "op": op, "value": ["华东合同续签 2027", "x"]} for op in ("in", "not_in")
    ]
    text_leaves += [{"field": "title", "op": op} for op in ("empty", "not_empty")]
    for deal in Deal.objects.filter(pk__in=[d.pk for d in deals]):
        for leaf in text_leaves:
            in_python = conds.in_python("deal", leaf, deal)
            in_sql = Deal.objects.filter(pk=deal.pk).filter(conds.leaf_q("deal", leaf)).exists()
            assert in_python is not None and in_python == in_sql, (leaf, deal.title)
    # Text with letters, relations and dates are the database's to check.
    deal = deals[0]
    for leaf in (
        {"field": "title", "op": "contains", "value": "a"},
        {"field": "title", "op": "eq", "value": "Acme 合同"},
        {"field": "owner", "op": "eq", "value": "owner"},
        {"field": "expected_close_date", "op": "gt", "value": "2026-01-01"},
    ):
        assert conds.in_python("deal", leaf, deal) is None
