"""The engine's safety: rules triggering rules stop at a fixed depth; a duplicated
event, scan or run does each action once (one task, one email); two workers never take
the same row, and a dead worker's row is taken again; failures retry with backoff, then
show as failed until an admin retries them; quiet changes and changes made while no rule
listens fire nothing; a rule turned off stops its waiting runs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from accounts.actors import quiet
from accounts.models import DataScope
from automation import engine
from automation.models import (
    ActionRun,
    ActionStatus,
    RuleRun,
    RunStatus,
    ScheduledAction,
    ScheduledStatus,
)
from crm import events
from crm.models import Change, Customer, Task
from crm.services import customers
from pipelines.models import Deal

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    EmailTemplateFactory,
    crm_permissions,
    deliver_events,
    item,
    make_rule,
    stage,
)
from .fakes.smtp import FakeSMTPServer

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def team(org, settings):
    settings.LANGUAGE_CODE = "en"  # the language the engine logs in
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    org.owner = org.set_scope(org.owner, DataScope.OWN, permissions)
    return org


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    return lambda: deliver_events(django_capture_on_commit_callbacks)


def set_level(customer: Customer, code: str, by) -> None:
    customer = Customer.objects.get(pk=customer.pk)
    customer.level = item("customer_level", code)
    customers.update_customer(customer=customer, by=by)


# --- The depth stop ----------------------------------------------------------------------------


@override_settings(CRM_AUTOMATION_MAX_DEPTH=3)
def test_rules_triggering_rules_stop_at_the_depth_limit(team, deliver):
    to_b = make_rule(
        "customer",
        "field_changed",
        name="A 级改 B 级",
        params={"field": "level", "to": "a"},
        actions=[("set_field", {"field": "level", "value": "b"})],
    )
    to_a = make_rule(
        "customer",
        "field_changed",
        name="B 级改 A 级",
        params={"field": "level", "to": "b"},
        actions=[("set_field", {"field": "level", "value": "a"})],
    )
    customer = CustomerFactory(owner=team.owner)
    set_level(customer, "a", team.owner)
    deliver()
    runs = list(RuleRun.objects.order_by("pk").values_list("rule", "depth", "status"))
    assert runs == [
        (to_b.pk, 1, RunStatus.DONE),
        (to_a.pk, 2, RunStatus.DONE),
        (to_b.pk, 3, RunStatus.DONE),
        (to_a.pk, 4, RunStatus.STOPPED),
    ]
    stopped = RuleRun.objects.get(status=RunStatus.STOPPED)
    assert stopped.error == "Stopped: rules triggering rules reached the depth limit of 3."
    assert not ScheduledAction.objects.filter(run=stopped).exists()
    assert Customer.objects.get(pk=customer.pk).level.code == "b"
    assert not Change.objects.filter(delivered_at__isnull=True).exists()


# --- Once, however often it is asked -------------------------------------------------------------


@pytest.fixture
def welcome(team):
    """On a new deal: a task for the owner and an email to the contact."""
    EmailTemplateFactory(name="欢迎", subject="欢迎 {{ customer }}", body="…")
    return make_rule(
        "deal",
        "created",
        actions=[
            ("create_task", {"title": "联系 {{ customer }}", "due": {"amount": 1, "unit": "days"}}),
            ("send_email", {"template": "欢迎"}),
        ],
    )


def new_deal(owner) -> Deal:
    contact = ContactFactory(customer=CustomerFactory(owner=owner), email="buyer@example.com")
    return DealFactory.created_by(owner, customer=contact.customer, contact=contact)


def test_an_event_delivered_twice_acts_once(team, welcome, django_capture_on_commit_callbacks):
    new_deal(team.owner)
    event = Change.objects.get(kind="created", record_type__model="deal")
    with django_capture_on_commit_callbacks(execute=True):
        events.deliver([event.pk])
        events.deliver([event.pk])
        # Even handed to the engine again behind the receipt's back.
        engine.handle_event(event)
    assert RuleRun.objects.count() == 1
    assert Task.objects.count() == 1 and len(mail.outbox) == 1


def test_a_scan_repeated_acts_once(team):
    EmailTemplateFactory(name="早安", subject="{{ record }}", body="…")
    make_rule(
        "contact",
        "schedule",
        params={"at": "09:00"},
        actions=[
            ("create_task", {"title": "问候 {{ record }}", "due": {"amount": 1, "unit": "days"}}),
            ("send_email", {"template": "早安"}),
        ],
    )
    ContactFactory(customer=CustomerFactory(owner=team.owner), email="chen@example.com")
    moment = timezone.now() - timedelta(minutes=1)
    if timezone.localtime(moment).hour < 9:
        moment -= timedelta(hours=12)
    for _twice in range(2):
        engine.scan_time_rules(moment)
        engine.run_due()
    assert Task.objects.count() == 1 and len(mail.outbox) == 1


def test_running_the_same_row_twice_acts_once(team, welcome, deliver):
    deal = new_deal(team.owner)
    run = engine.schedule_run(welcome, deal, occurrence="x", trigger="test", due=timezone.now())
    row = ScheduledAction.objects.get(run=run)
    assert engine.run_scheduled(row.pk) == ScheduledStatus.DONE
    assert engine.run_scheduled(row.pk) is None
    assert Task.objects.count() == 1 and len(mail.outbox) == 1


@override_settings(CRM_AUTOMATION_MAX_ATTEMPTS=3)
def test_a_retried_row_skips_the_actions_it_had_done(team):
    """The task and the email are done, then the move fails (报价 needs an amount); once
    the amount is filled in, the retry moves the deal without a second task or email."""
    EmailTemplateFactory(name="报价单", subject="报价", body="…")
    quote = stage("零售", "报价")
    rule = make_rule(
        "deal",
        "created",
        actions=[
            ("create_task", {"title": "准备报价", "due": {"amount": 1, "unit": "days"}}),
            ("send_email", {"template": "报价单"}),
            ("move_stage", {"stage": quote.pk}),
        ],
    )
    deal = new_deal(team.owner)
    run = engine.schedule_run(rule, deal, occurrence="x", trigger="test", due=timezone.now())
    assert engine.run_due() == 1
    row = ScheduledAction.objects.get(run=run)
    assert row.status == ScheduledStatus.PENDING and "amount" in row.last_error.lower()
    Deal.objects.filter(pk=deal.pk).update(amount=Decimal("8000"))
    ScheduledAction.objects.filter(pk=row.pk).update(due_at=timezone.now())
    engine.run_due()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert Deal.objects.get(pk=deal.pk).stage == quote
    assert Task.objects.count() == 1 and len(mail.outbox) == 1


def test_an_email_whose_worker_died_after_sending_is_not_sent_again(team, welcome, settings):
    deal = new_deal(team.owner)
    run = engine.schedule_run(welcome, deal, occurrence="x", trigger="test", due=timezone.now())
    row = ScheduledAction.objects.get(run=run)
    # The worker claimed the row, made the task, committed the email's row, sent it and
    # was killed before it could finish.
    assert engine.claim(row.pk)
    ActionRun.objects.create(run=run, step=1, kind="send_email", status=ActionStatus.STARTED)
    stale = timezone.now() - timedelta(seconds=settings.CRM_AUTOMATION_STALE_CLAIM + 1)
    ScheduledAction.objects.filter(pk=row.pk).update(claimed_at=stale)
    assert engine.run_due() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert Task.objects.count() == 1 and mail.outbox == []


def test_a_send_that_failed_is_sent_by_the_retry(team, welcome, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_TIMEOUT = "127.0.0.1", 5
    with FakeSMTPServer() as gone:
        settings.EMAIL_PORT = gone.server_address[1]
    deal = new_deal(team.owner)
    run = engine.schedule_run(welcome, deal, occurrence="x", trigger="test", due=timezone.now())
    engine.run_due()  # the mail server is down: the send fails
    row = ScheduledAction.objects.get(run=run)
    assert row.status == ScheduledStatus.PENDING and row.attempts == 1
    assert not ActionRun.objects.filter(run=run, kind="send_email").exists()
    with FakeSMTPServer() as smtp:
        settings.EMAIL_PORT = smtp.server_address[1]
        ScheduledAction.objects.filter(pk=row.pk).update(due_at=timezone.now())
        engine.run_due()
    assert [recipients for _sender, recipients, _message in smtp.sink] == [["buyer@example.com"]]
    assert Task.objects.count() == 1
    assert RuleRun.objects.get(pk=run.pk).status == RunStatus.DONE


# --- Claims --------------------------------------------------------------------------------------


def test_two_claims_of_one_row_only_one_wins(team, welcome):
    deal = new_deal(team.owner)
    run = engine.schedule_run(welcome, deal, occurrence="x", trigger="test", due=timezone.now())
    row = ScheduledAction.objects.get(run=run)
    assert [engine.claim(row.pk), engine.claim(row.pk)] == [True, False]
    assert engine.due_ids() == []  # a fresh claim is nobody else's to take
    assert engine.run_due() == 0 and not Task.objects.exists()


def test_a_stale_claim_is_taken_again(team, welcome, settings):
    deal = new_deal(team.owner)
    run = engine.schedule_run(welcome, deal, occurrence="x", trigger="test", due=timezone.now())
    row = ScheduledAction.objects.get(run=run)
    assert engine.claim(row.pk)
    stale = timezone.now() - timedelta(seconds=settings.CRM_AUTOMATION_STALE_CLAIM + 1)
    ScheduledAction.objects.filter(pk=row.pk).update(claimed_at=stale)
    assert engine.due_ids() == [row.pk]
    assert engine.run_scheduled(row.pk) == ScheduledStatus.DONE
    row.refresh_from_db()
    assert row.attempts == 2 and Task.objects.count() == 1


# --- Failures and retries -------------------------------------------------------------------------


@override_settings(CRM_AUTOMATION_MAX_ATTEMPTS=3, CRM_AUTOMATION_RETRY_BASE=60)
def test_a_failing_run_retries_with_backoff_then_fails_until_an_admin_retries_it(team):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "created", actions=[("move_stage", {"stage": quote.pk})])
    deal = DealFactory(owner=team.owner, expected_close_date=date(2027, 1, 1))
    run = engine.schedule_run(rule, deal, occurrence="x", trigger="test", due=timezone.now())
    row = ScheduledAction.objects.get(run=run)
    waits = []
    for _attempt in range(2):
        started = timezone.now()
        engine.run_due()
        row.refresh_from_db()
        assert row.status == ScheduledStatus.PENDING
        waits.append(round((row.due_at - started).total_seconds() / 60))
        ScheduledAction.objects.filter(pk=row.pk).update(due_at=timezone.now())
    assert waits == [1, 2]
    engine.run_due()
    run.refresh_from_db()
    row.refresh_from_db()
    assert (run.status, row.status, row.attempts) == (RunStatus.FAILED, "failed", 3)
    assert run.error.startswith("Fill in ") and run.error == row.last_error
    assert engine.run_due() == 0  # failed stays failed

    contact = ContactFactory(customer=deal.customer)
    Deal.objects.filter(pk=deal.pk).update(contact=contact, amount=Decimal("9000"))
    assert engine.retry(run)
    engine.run_due()
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.DONE, "")
    assert Deal.objects.get(pk=deal.pk).stage == quote
    assert not engine.retry(run)  # only a failed run is retried


# --- What fires nothing --------------------------------------------------------------------------


def test_a_quiet_change_fires_nothing(team, deliver):
    make_rule("customer", "created", actions=[("add_tag", {"tag": "新客户"})])
    customers.create_customer(
        customer=Customer(name="静默导入客户", owner=team.owner), by=quiet(team.owner)
    )
    event = Change.objects.get(kind="created")
    assert event.automation_depth is None
    deliver()
    assert not RuleRun.objects.exists()


def test_a_change_made_while_no_rule_is_active_is_written_delivered(team, deliver):
    rule = make_rule("customer", "created", actions=[("add_tag", {"tag": "新客户"})], active=False)
    customers.create_customer(customer=Customer(name="早先的客户", owner=team.owner), by=team.owner)
    event = Change.objects.get(kind="created")
    assert event.delivered_at is not None
    rule.is_active = True
    rule.save()
    assert events.sweep(older_than=timedelta(0)) == 0
    deliver()
    assert not RuleRun.objects.exists()


def test_a_rule_turned_off_before_its_delayed_step_is_cancelled(team, deliver):
    rule = make_rule(
        "customer",
        "created",
        actions=[("delay", {"amount": 1, "unit": "hours"}), ("add_tag", {"tag": "新客户"})],
    )
    customer = customers.create_customer(
        customer=Customer(name="新客户甲", owner=team.owner), by=team.owner
    )
    deliver()
    run = RuleRun.objects.get()
    assert run.status == RunStatus.WAITING
    rule.is_active = False
    rule.save()
    ScheduledAction.objects.filter(status="pending").update(due_at=timezone.now())
    engine.run_due()
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.CANCELLED, "The rule was turned off.")
    assert not customer.tags.exists()


def test_a_deleted_record_cancels_its_run(team):
    rule = make_rule("customer", "created", actions=[("add_tag", {"tag": "新客户"})])
    customer = CustomerFactory(owner=team.owner)
    run = engine.schedule_run(rule, customer, occurrence="x", trigger="test", due=timezone.now())
    Customer.objects.filter(pk=customer.pk).delete()
    engine.run_due()
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.CANCELLED, "The record is gone.")


# --- Runs done in the event's transaction ----------------------------------------------------


def test_a_run_whose_conditions_fail_is_one_row_and_schedules_nothing(team, deliver):
    make_rule(
        "customer",
        "created",
        conditions=[{"field": "name", "op": "contains", "value": "医疗"}],
        actions=[("add_tag", {"tag": "医疗客户"})],
    )
    customers.create_customer(customer=Customer(name="恒信机械", owner=team.owner), by=team.owner)
    deliver()
    run = RuleRun.objects.get()
    assert (run.status, run.record_label) == (RunStatus.NOT_MATCHED, "恒信机械")
    assert run.finished_at is not None and run.trace[0]["ok"] is False
    assert not ScheduledAction.objects.exists() and not ActionRun.objects.exists()


def test_a_run_of_database_actions_is_done_while_its_event_is_delivered(team, deliver):
    make_rule(
        "customer",
        "created",
        actions=[
            ("add_tag", {"tag": "新客户"}),
            ("create_task", {"title": "联系 {{ record }}", "due": {"amount": 1, "unit": "days"}}),
        ],
    )
    customer = customers.create_customer(
        customer=Customer(name="恒信机械", owner=team.owner), by=team.owner
    )
    deliver()
    run = RuleRun.objects.get()
    assert run.status == RunStatus.DONE and run.finished_at is not None
    assert run.duration_ms is not None
    assert list(ActionRun.objects.filter(run=run).values_list("step", "status")) == [
        (0, ActionStatus.DONE),
        (1, ActionStatus.DONE),
    ]
    assert not ScheduledAction.objects.exists()
    assert [t.name for t in customer.tags.all()] == ["新客户"]
    assert Task.objects.get().title == "联系 恒信机械"


@override_settings(CRM_AUTOMATION_MAX_ATTEMPTS=3, CRM_AUTOMATION_RETRY_BASE=60)
def test_a_run_that_fails_in_the_delivery_undoes_its_actions_and_retries_later(team, deliver):
    quote = stage("零售", "报价")
    make_rule(
        "deal",
        "created",
        actions=[
            ("create_task", {"title": "准备报价", "due": {"amount": 1, "unit": "days"}}),
            ("move_stage", {"stage": quote.pk}),  # refused: 报价 needs a contact
        ],
    )
    started = timezone.now()
    deal = DealFactory.created_by(team.owner, customer=CustomerFactory(owner=team.owner))
    deliver()
    run = RuleRun.objects.get()
    row = ScheduledAction.objects.get(run=run)
    assert (run.status, row.status, row.attempts) == (RunStatus.PENDING, "pending", 1)
    assert round((row.due_at - started).total_seconds() / 60) == 1
    assert run.error and run.error == row.last_error
    assert not ActionRun.objects.exists() and not Task.objects.exists()  # nothing half done
    contact = ContactFactory(customer=deal.customer)
    Deal.objects.filter(pk=deal.pk).update(contact=contact, amount=Decimal("8000"))
    ScheduledAction.objects.filter(pk=row.pk).update(due_at=timezone.now())
    engine.run_due()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and Deal.objects.get(pk=deal.pk).stage == quote
    assert Task.objects.get().title == "准备报价"


def test_a_run_with_an_email_goes_to_a_row_of_its_own(team, welcome, deliver):
    new_deal(team.owner)
    deliver()
    run = RuleRun.objects.get()
    assert run.status == RunStatus.DONE
    assert ScheduledAction.objects.get(run=run).status == ScheduledStatus.DONE
    assert Task.objects.count() == 1 and len(mail.outbox) == 1


def test_a_condition_that_cannot_be_checked_holds_back_no_event(team, deliver):
    """A rule stored with a condition the engine cannot read (written behind the admin's
    checks): the event is delivered, and the run fails like a worker's, to be retried."""
    rule = make_rule(
        "deal",
        "created",
        actions=[("create_task", {"title": "跟进", "due": {"amount": 1, "unit": "days"}})],
    )
    broken = {
        "match": "all",
        "conditions": [{"field": "expected_close_date", "op": "eq", "value": "明天"}],
    }
    type(rule).objects.filter(pk=rule.pk).update(conditions=broken)
    engine.forget_rules()
    new_deal(team.owner)
    deliver()
    assert not Change.objects.filter(delivered_at__isnull=True).exists()
    row = ScheduledAction.objects.get(run__rule=rule)
    assert (row.status, row.attempts) == (ScheduledStatus.PENDING, 1) and row.last_error
    assert not Task.objects.exists()
