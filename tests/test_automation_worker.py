"""Automation with the real things: a Celery worker process, `celery beat`, the broker
(Redis when REDIS_URL is set, else the embedded SQLite broker), the test database and
SMTP. A delayed robot acts when beat's minute comes; a worker killed mid-run leaves
nothing done twice; a stage move saved while the broker is down runs its rule once when
the broker is back; a rule saved while the worker runs acts on the next event. Every
wait is on state, never on the clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import DataScope
from automation.models import (
    ActionRun,
    ActionStatus,
    RuleRun,
    RunStatus,
    ScheduledAction,
    ScheduledStatus,
)
from automation.tasks import tick
from crm.celery import app as celery_app
from crm.models import Change, EventKind, Task
from crm.tasks import deliver_events, sweep_events
from pipelines import services
from pipelines.models import Deal

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    EmailTemplateFactory,
    crm_permissions,
    make_rule,
    stage,
)
from .fakes.smtp import FakeSMTPServer
from .test_background import ROOT, celery_worker, database_url, wait_for
from .test_record_events import _queued, broker_unreachable

pytestmark = pytest.mark.worker

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
TASK_FOR_OWNER = (
    "create_task",
    {"title": "跟进报价：{{ record }}", "assignee": {"type": "owner"}, "due": {"amount": 2}},
)


@pytest.fixture
def team(transactional_db, org):
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    org.owner = org.set_scope(org.owner, DataScope.OWN, permissions)
    return org


def quote_ready_deal(owner, n: int = 0) -> Deal:
    """A deal in 零售's first stage with what 报价 requires (a contact, an amount); its
    contact has an email address of its own."""
    customer = CustomerFactory(owner=owner, name=f"上海恒信机械设备有限公司{n}")
    contact = ContactFactory(customer=customer, name=f"张伟{n}", email=f"zhangwei{n}@hengxin.cn")
    return DealFactory(
        owner=owner,
        customer=customer,
        contact=contact,
        title=f"年度设备采购{n}",
        amount=Decimal("120000"),
        expected_close_date=date(2027, 3, 31),
    )


def move_to_quote(deal: Deal, owner) -> None:
    services.move_to_stage(record=deal, stage=stage("零售", "报价"), by=owner)


def tasks_of(deal: Deal):
    return Task.objects.filter(subject_type__model="deal", subject_id=deal.pk)


@contextmanager
def celery_beat(tmp_path, *, overdue: tuple[str, ...] = ()):
    """A real `celery beat` process sending the schedule's tasks to the test queue.
    The entries named in `overdue` last ran two minutes ago (as when beat comes back
    after a minute away), so beat sends them as it starts; the rest wait their period."""
    schedule_file = tmp_path / "beat-schedule"
    scheduler = PersistentScheduler(app=celery_app, schedule_filename=str(schedule_file))
    for name in overdue:
        scheduler.schedule[name].last_run_at = celery_app.now() - timedelta(minutes=2)
    scheduler.sync()
    scheduler.close()
    env = {
        **os.environ,
        # The test settings: the queue beat sends to is the worker's (CRM_TEST_QUEUE).
        "DJANGO_SETTINGS_MODULE": "crm.settings_test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CRM_TEST_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }
    log = tmp_path / "beat.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "beat", "--schedule", str(schedule_file),
             "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.returncode not in (0, -15) or os.environ.get("SHOW_WORKER_LOG"):
            print(log.read_text())


def test_a_robot_with_a_delay_makes_its_task_when_beats_minute_comes(team, tmp_path):
    quote = stage("零售", "报价")
    rule = make_rule(
        "deal",
        "stage_entered",
        name="报价两天后跟进",
        stage=quote,
        actions=[("delay", {"amount": 1, "unit": "minutes"}), TASK_FOR_OWNER],
    )
    deal = quote_ready_deal(team.owner)
    with celery_worker(tmp_path):
        move_to_quote(deal, team.owner)  # committed: its event goes to the worker
        waiting = wait_for(
            lambda: ScheduledAction.objects.filter(
                run__rule=rule, step=1, status=ScheduledStatus.PENDING
            ).first(),
            what="the worker to schedule the actions after the delay",
        )
        run = RuleRun.objects.get(rule=rule)
        assert (run.record_id, run.status) == (deal.pk, RunStatus.WAITING)
        assert (
            timedelta(minutes=1)
            < waiting.due_at - run.created_at
            < timedelta(minutes=1, seconds=10)
        )
        assert not tasks_of(deal).exists()

        # The minute passes: the row is due, and beat's tick (every minute) runs it.
        ScheduledAction.objects.filter(pk=waiting.pk).update(
            due_at=timezone.now() - timedelta(seconds=1)
        )
        started = timezone.now()
        with celery_beat(tmp_path, overdue=("automation-tick",)):
            task = wait_for(
                lambda: tasks_of(deal).first(), what="beat's tick to make the robot's task"
            )
        finished = timezone.now()
        wait_for(
            lambda: RuleRun.objects.filter(pk=run.pk, status=RunStatus.DONE).exists(),
            what="the run to be done",
        )
    assert tasks_of(deal).count() == 1
    assert task.assignee == team.owner and task.title == f"跟进报价：{deal.title}"
    # Due two days after the action ran (not after the move).
    assert started + timedelta(days=2) <= task.due_at <= finished + timedelta(days=2)
    assert ActionRun.objects.get(run=run, step=1).object_id == task.pk
    assert ScheduledAction.objects.get(pk=waiting.pk).status == ScheduledStatus.DONE


class StallingSMTPServer(FakeSMTPServer):
    """A mail server that answers the first `answer` connections, then hangs on the
    next one (a slow server outside the machine) until `release` is set."""

    def __init__(self, answer: int) -> None:
        super().__init__()
        self.answer = answer
        self.connections = 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._count = threading.Lock()

    def finish_request(self, request, client_address) -> None:
        with self._count:
            self.connections += 1
            stall = self.connections == self.answer + 1
        if stall:
            self.stalled.set()
            self.release.wait(timeout=60)
            return  # hung up without a word
        super().finish_request(request, client_address)


DEALS = 30


def test_a_worker_killed_mid_run_leaves_no_task_or_email_done_twice(team, tmp_path):
    template = EmailTemplateFactory(name="报价单已发送", subject="{{ record }}：报价单")
    rule = make_rule(
        "deal",
        "stage_entered",
        name="报价：任务和邮件",
        stage=stage("零售", "报价"),
        actions=[TASK_FOR_OWNER, ("send_email", {"template": template.name, "to": "contact"})],
    )
    deals = [quote_ready_deal(team.owner, n) for n in range(DEALS)]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()

    with StallingSMTPServer(answer=10) as smtp:
        with celery_worker(tmp_path / "first", EMAIL_URL=smtp.url) as first:
            with transaction.atomic():  # a bulk move: one commit, DEALS events
                for deal in deals:
                    move_to_quote(deal, team.owner)
            wait_for(smtp.stalled.is_set, what="the worker to be sending the 11th email")
            # Killed while an action is under way: its row claimed, its task made, its
            # email marked started and not sent.
            [claimed] = ScheduledAction.objects.filter(status=ScheduledStatus.CLAIMED)
            assert ActionRun.objects.filter(run=claimed.run, step=1).get().status == (
                ActionStatus.STARTED
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=15)
            smtp.release.set()
        assert len(smtp.sink) == 10
        assert Task.objects.count() == 11  # the claimed run's task is made
        # The bulk move's events came as one message, delivered together: every run
        # and its row was committed before the first email; the ones not reached wait.
        events = Change.objects.filter(kind=EventKind.STAGE_MOVED)
        assert not events.filter(delivered_at__isnull=True).exists()
        assert ScheduledAction.objects.filter(status=ScheduledStatus.PENDING).count() == (
            DEALS - 11
        )

        # Another worker: beat's tick runs the waiting rows and takes the dead worker's
        # claim (stale at once here).
        with celery_worker(tmp_path / "second", EMAIL_URL=smtp.url, CRM_AUTOMATION_STALE_CLAIM="0"):
            tick.delay()
            wait_for(
                lambda: RuleRun.objects.filter(rule=rule, status=RunStatus.DONE).count() == DEALS,
                what="every run to be done",
            )
        assert not ScheduledAction.objects.exclude(status=ScheduledStatus.DONE).exists()

        # One task per deal, never two emails to anyone.
        assert sorted(Task.objects.values_list("subject_id", flat=True)) == sorted(
            d.pk for d in deals
        )
        recipients = [address for _sender, to, _message in smtp.sink for address in to]
        assert len(recipients) == len(set(recipients)) == DEALS - 1
        # The email cut off mid-send is not sent again: at most once.
        in_doubt = claimed.run.record_id
        assert Deal.objects.get(pk=in_doubt).contact.email not in recipients
        assert ActionRun.objects.get(run=claimed.run, step=1).status == ActionStatus.STARTED
        assert ActionRun.objects.filter(kind="send_email", status=ActionStatus.DONE).count() == (
            DEALS - 1
        )


def test_a_stage_move_saved_while_the_broker_is_down_runs_its_rule_once_it_is_back(team, tmp_path):
    rule = make_rule(
        "deal",
        "stage_entered",
        name="报价跟进",
        stage=stage("零售", "报价"),
        actions=[TASK_FOR_OWNER],
    )
    deal = quote_ready_deal(team.owner)
    with broker_unreachable():
        move_to_quote(deal, team.owner)  # saved; its delivery could not be queued
    assert Deal.objects.get(pk=deal.pk).stage.name == "报价"
    event = Change.objects.get(record_id=deal.pk, kind=EventKind.STAGE_MOVED)
    assert event.delivered_at is None
    assert not RuleRun.objects.exists() and not tasks_of(deal).exists()

    # A minute on, the broker is back and beat's sweep runs on a worker.
    Change.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    with celery_worker(tmp_path):
        sweep_events.delay()
        task = wait_for(lambda: tasks_of(deal).first(), what="the swept event's rule to run")
        wait_for(
            lambda: Change.objects.filter(pk=event.pk, delivered_at__isnull=False).exists(),
            what="the event to be marked delivered",
        )
        sweep_events.delay()  # a second sweep finds nothing left to do
        deliver_events.delay([event.pk])  # nor does a late duplicate message
        wait_for(lambda: not _queued(), what="the worker to take both messages")
    # (The worker stops warm: the messages it took are done.)
    [run] = RuleRun.objects.filter(rule=rule)
    assert (run.record_id, run.event_id, run.status) == (deal.pk, event.pk, RunStatus.DONE)
    assert list(tasks_of(deal)) == [task] and task.assignee == team.owner


@pytest.mark.skipif(
    not settings.REDIS_URL,
    reason="without a shared cache (no Redis) a process re-reads its rules once a second",
)
def test_a_rule_saved_while_the_worker_runs_fires_on_the_next_event(team, tmp_path):
    """The worker reads the rules version on each event: a rule saved right after it
    handled one (within its second) is not missed."""
    quote = stage("零售", "报价")
    first = make_rule(
        "deal", "stage_entered", name="报价跟进", stage=quote, actions=[TASK_FOR_OWNER]
    )
    one, two = quote_ready_deal(team.owner, 1), quote_ready_deal(team.owner, 2)
    with celery_worker(tmp_path):
        move_to_quote(one, team.owner)
        wait_for(lambda: tasks_of(one).exists(), what="the worker to run the first rule")
        # An admin saves a second robot on the stage; then the next deal enters it.
        second = make_rule(
            "deal",
            "stage_entered",
            name="报价提醒",
            stage=quote,
            actions=[("notify", {"title": "{{ record }} 已报价", "to": {"type": "owner"}})],
        )
        move_to_quote(two, team.owner)
        wait_for(
            lambda: RuleRun.objects.filter(
                rule=first, record_id=two.pk, status=RunStatus.DONE
            ).exists(),
            what="the worker to handle the second move",
        )
    assert RuleRun.objects.filter(rule=second, record_id=two.pk, status=RunStatus.DONE).exists()
