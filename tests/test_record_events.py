"""Record events: each service that changes a record writes exactly one event row (the
history row) in its transaction, with raw before/after values, its kind and who made it
(a person or a system actor); none when it refuses. After the commit the event goes to
in-process listeners (a signal) and to background subscribers (a Celery task), and the
sweep hands on what the broker lost or a subscriber failed, each handled once."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import access, actors
from accounts.models import DataScope, User
from crm import events
from crm.celery import app as celery_app
from crm.models import Change, Customer, EventKind, Task
from crm.services import activities, contacts, customers, tasks
from crm.tasks import deliver_events, sweep_events
from pipelines import services as pipeline_services
from pipelines.models import Deal, Pipeline, PipelineKind
from pipelines.services import StageMoveRefused
from tests.testapp.models import HandledEvent
from tests.testapp.subscriber import FAILURES, SUBSCRIBER

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TagFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    item,
    stage,
)
from .test_background import celery_worker, wait_for

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
ACTIONS = ("view", "add", "change", "delete")


@pytest.fixture
def team(org):
    perms = crm_permissions(actions=ACTIONS, types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    return org


@pytest.fixture
def customer(team) -> Customer:
    return CustomerFactory(owner=team.owner, name="上海恒信机械设备有限公司")


@contextmanager
def new_events():
    """Collects the event rows written inside the block, oldest first."""
    last = Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    written: list[Change] = []
    yield written
    written.extend(Change.objects.filter(pk__gt=last).order_by("pk"))


def only_event(written: list[Change]) -> Change:
    assert len(written) == 1, [(e.kind, e.record_type.model) for e in written]
    return written[0]


# --- One event per change, raw values ---------------------------------------------------------


def test_a_new_customer_is_one_created_event_with_its_raw_values(team):
    custom_field("staff_count", "integer", label="员工人数")
    level = item("customer_level", "a")
    vip = TagFactory(name="VIP")
    record = Customer(name="杭州云帆科技", owner=team.owner, level=level)
    record.custom = {"staff_count": 120}
    with new_events() as written:
        customers.create_customer(customer=record, by=team.owner, tags=[vip, "新客户"])
    event = only_event(written)
    assert (event.kind, event.action, event.record_id) == ("created", "created", record.pk)
    assert event.customer_id == record.pk and event.user == team.owner
    assert event.fields["name"] == [None, "杭州云帆科技"]
    assert event.fields["owner"] == [None, team.owner.pk]
    assert event.fields["level"] == [None, level.pk]
    assert event.fields["cf_staff_count"] == [None, 120]
    new_tag = record.tags.get(name="新客户")
    assert event.fields["tags"] == [None, sorted([vip.pk, new_tag.pk])]
    assert event.actor_type == "" and event.delivered_at is not None  # no subscriber


def test_an_edit_keeps_raw_values_beside_the_words_the_history_shows(team, customer):
    custom_field("revenue", "money", label="年营业额")
    old_level, new_level = item("customer_level", "c"), item("customer_level", "a")
    Customer.objects.filter(pk=customer.pk).update(level=old_level)
    record = Customer.objects.get(pk=customer.pk)
    record.level = new_level
    record.custom = {"revenue": "1200000.50"}
    record.next_follow_up_at = timezone.now().replace(microsecond=0)
    with new_events() as written:
        customers.update_customer(customer=record, by=team.owner)
    event = only_event(written)
    assert event.kind == "updated"
    assert event.fields["level"] == [old_level.pk, new_level.pk]
    assert event.fields["cf_revenue"] == [None, "1200000.50"]
    assert event.fields["next_follow_up_at"] == [None, record.next_follow_up_at.isoformat()]
    assert {c["field"] for c in event.changes} == {"level", "custom.revenue", "next_follow_up_at"}
    assert set(event.fields) == {"level", "cf_revenue", "next_follow_up_at"}


def test_an_edit_that_changes_nothing_writes_nothing(team, customer):
    with new_events() as written:
        customers.update_customer(customer=Customer.objects.get(pk=customer.pk), by=team.owner)
    assert written == []


def test_bulk_writes_give_each_record_its_event(team, customer):
    second = CustomerFactory(owner=team.owner)
    both = Customer.objects.filter(pk__in=[customer.pk, second.pk])
    with new_events() as written:
        customers.transfer_customers(customers=both, to=team.owner, by=team.owner)
    assert written == []  # already hers
    manager = team.set_scope(team.colleague, DataScope.ALL, crm_permissions(ACTIONS, TYPES))
    with new_events() as written:
        assert customers.transfer_customers(customers=both, to=manager, by=manager) == 2
    assert sorted((e.kind, e.record_id, e.fields["owner"]) for e in written) == [
        ("transferred", c.pk, [team.owner.pk, manager.pk]) for c in (customer, second)
    ]
    tag = TagFactory(name="重点")
    with new_events() as written:
        customers.tag_customers(customers=both, tag=tag, by=manager)
    assert [(e.kind, e.fields["tags"]) for e in written] == [("tagged", [[], [tag.pk]])] * 2
    with new_events() as written:
        customers.release_customers(customers=both, by=manager, reason="无意向")
    assert [(e.kind, e.fields, e.note) for e in written] == [
        ("released", {"owner": [manager.pk, None]}, "无意向")
    ] * 2
    with new_events() as written:
        customers.claim_customer(customer_id=customer.pk, by=team.owner)
    assert [(e.kind, e.fields) for e in written] == [("claimed", {"owner": [None, team.owner.pk]})]


def test_a_merge_is_one_event_on_the_survivor_and_one_per_deal_that_moves(team, customer):
    other = CustomerFactory(owner=team.owner, name="恒信机械（重复）", address="上海市闵行区")
    deal = DealFactory(owner=team.owner, customer=other)
    with new_events() as written:
        customers.merge_customers(
            survivor=customer, others=[other], by=team.owner, take={"address": other.pk}
        )
    by_kind = {e.kind: e for e in written}
    assert sorted(by_kind) == ["merged", "updated"] and len(written) == 2
    merged = by_kind["merged"]
    assert merged.record_id == customer.pk
    assert merged.fields["merged_ids"] == [None, [other.pk]]
    assert merged.fields["address"] == ["", "上海市闵行区"]
    moved = by_kind["updated"]
    assert (moved.record_id, moved.fields) == (deal.pk, {"customer": [other.pk, customer.pk]})


def test_contacts_tasks_and_follow_ups_write_their_events(team, customer):
    with new_events() as written:
        contact = contacts.create_contact(
            contact=ContactFactory.build(customer=customer, name="张伟", mobile="13800138000"),
            by=team.owner,
        )
    assert only_event(written).fields["mobile"] == [None, "+8613800138000"]
    contact.title = "采购经理"
    with new_events() as written:
        contacts.update_contact(contact=contact, by=team.owner)
    assert only_event(written).fields == {"title": ["", "采购经理"]}

    due = timezone.now() + timedelta(days=2)
    with new_events() as written:
        task = tasks.create_task(
            task=TaskFactory.build(assignee=team.owner, customer=customer, due_at=due),
            by=team.owner,
        )
    assert only_event(written).kind == "created"
    with new_events() as written:
        tasks.complete_task(task=task, by=team.owner)
    assert [(e.kind, e.fields) for e in written] == [
        ("task_completed", {"status": ["open", "done"]})
    ]
    with new_events() as written:
        tasks.complete_task(task=task, by=team.owner)  # done already: nothing happens
    assert written == []
    with new_events() as written:
        tasks.reopen_task(task=task, by=team.owner)
    assert [(e.kind, e.fields) for e in written] == [
        ("task_reopened", {"status": ["done", "open"]})
    ]
    manager = team.set_scope(team.colleague, DataScope.ALL, crm_permissions(ACTIONS, TYPES))
    with new_events() as written:
        tasks.reassign_tasks(tasks=Task.objects.filter(pk=task.pk), to=manager, by=manager)
    assert [(e.kind, e.fields) for e in written] == [
        ("task_reassigned", {"assignee": [team.owner.pk, manager.pk]})
    ]

    call = item("activity_kind", "call")
    with new_events() as written:
        activity = activities.log_activity(
            customer=customer,
            by=team.owner,
            kind=call,
            content="电话沟通报价",
            contact=contact,
            next_follow_up_at=due,
        )
    logged, planned = written
    assert (logged.kind, logged.record_id) == ("activity_logged", activity.pk)
    assert logged.fields["kind"] == [None, call.pk] and logged.fields["contact"] == [
        None,
        contact.pk,
    ]
    # The follow-up shows in the timeline, not again in the history tab.
    assert logged.customer_id is None
    assert (planned.kind, planned.record_type.model, planned.customer_id) == (
        "created",
        "task",
        customer.pk,
    )


def test_stage_moves_losses_pipeline_switches_and_conversions_say_what_they_are(team, customer):
    contact = ContactFactory(customer=customer)
    deal = DealFactory(owner=team.owner, customer=customer, contact=contact, amount=Decimal("1000"))
    start, quote = deal.stage, stage("零售", "报价")
    with new_events() as written:
        pipeline_services.move_to_stage(record=deal, stage=quote, by=team.owner)
    event = only_event(written)
    assert event.kind == "stage_moved"
    assert event.fields["stage"] == [start.pk, quote.pk]
    assert event.fields["probability"] == [start.probability, quote.probability]

    other_pipeline_stage = (
        Pipeline.objects.filter(kind=PipelineKind.DEAL, is_active=True)
        .exclude(pk=deal.pipeline_id)
        .first()
        .first_open_stage()
    )
    with new_events() as written:
        pipeline_services.change_pipeline(deal=deal, stage=other_pipeline_stage, by=team.owner)
    event = only_event(written)
    assert event.kind == "pipeline_changed"
    assert event.fields["pipeline"] == [quote.pipeline_id, other_pipeline_stage.pipeline_id]

    lead = LeadFactory(owner=team.owner)
    reason = item("lost_reason", "price")
    with new_events() as written:
        pipeline_services.lose_lead(lead=lead, by=team.owner, reason=reason)
    event = only_event(written)
    assert event.kind == "lost" and event.fields["lost_reason"] == [None, reason.pk]

    lead = LeadFactory(owner=team.owner, company_name="宁波海天贸易")
    with new_events() as written:
        conversion = pipeline_services.convert_lead(
            lead=lead, by=team.owner, customer=Customer(name="宁波海天贸易", owner=team.owner)
        )
    kinds = [(e.kind, e.record_type.model) for e in written]
    assert kinds == [("created", "customer"), ("converted", "lead")]
    converted = written[1]
    assert converted.fields["converted_customer"] == [None, conversion.customer.pk]
    assert converted.fields["status"] == ["open", "converted"]


def test_deal_and_lead_creation_edits_and_transfers(team, customer):
    with new_events() as written:
        deal = DealFactory.created_by(team.owner, customer=customer, amount=Decimal("99.50"))
    event = only_event(written)
    assert event.kind == "created" and event.fields["amount"] == [None, "99.50"]
    deal.amount = Decimal("120000.00")
    with new_events() as written:
        pipeline_services.update_deal(deal=deal, by=team.owner)
    assert only_event(written).fields == {"amount": ["99.50", "120000.00"]}
    manager = team.set_scope(team.colleague, DataScope.ALL, crm_permissions(ACTIONS, TYPES))
    with new_events() as written:
        pipeline_services.transfer_records(Deal.objects.filter(pk=deal.pk), manager, manager)
    assert [(e.kind, e.fields) for e in written] == [
        ("transferred", {"owner": [team.owner.pk, manager.pk]})
    ]


# --- Nothing on a refused change --------------------------------------------------------------


def test_a_refused_change_writes_no_event(team, customer):
    record = Customer.objects.get(pk=customer.pk)
    record.name = "改名"
    with new_events() as written:
        with pytest.raises(PermissionDenied):
            customers.update_customer(customer=record, by=team.outsider)
        with pytest.raises(ValidationError):
            customers.release_customers(
                customers=Customer.objects.filter(pk=customer.pk), by=team.owner, reason="长" * 301
            )
        lead = LeadFactory(owner=team.owner)
        with pytest.raises(StageMoveRefused):
            pipeline_services.lose_lead(lead=lead, by=team.owner, reason=None)
    assert written == []
    assert Customer.objects.get(pk=customer.pk).name == customer.name


# --- System actors ----------------------------------------------------------------------------


def test_a_rule_acts_with_the_systems_rights_and_history_names_it(client, team, customer):
    rule = actors.system(kind=actors.ActorKind.RULE, id=7, name="报价提醒")
    record = Customer.objects.get(pk=customer.pk)
    record.address = "上海市浦东新区"
    with new_events() as written:
        customers.update_customer(customer=record, by=rule)
    event = only_event(written)
    assert (event.actor_type, event.actor_id, event.actor_name) == ("rule", 7, "报价提醒")
    assert event.user.username == actors.SYSTEM_USERNAME
    # Its row cannot sign in and no picker lists it.
    system = User.objects.get(username=actors.SYSTEM_USERNAME)
    assert not system.is_active and not system.has_usable_password()
    assert not access.users_in_scope(team.owner).filter(pk=system.pk).exists()
    team.owner.language = "zh-hans"
    team.owner.save(update_fields=["language"])
    client.force_login(team.owner)
    page = client.get(reverse("customers:history", args=[customer.pk])).content.decode()
    assert "自动化规则「报价提醒」" in page


def test_an_import_acts_with_its_importers_rights_and_is_recorded_as_the_import(
    client, team, customer
):
    job = actors.acting(team.colleague, kind=actors.ActorKind.IMPORT, id=12)
    record = Customer.objects.get(pk=customer.pk)
    record.address = "杭州"
    with pytest.raises(PermissionDenied):  # not the colleague's customer
        customers.update_customer(customer=record, by=job)
    job = actors.acting(team.owner, kind=actors.ActorKind.IMPORT, id=12)
    with new_events() as written:
        customers.update_customer(customer=record, by=job)
    event = only_event(written)
    assert (event.user, event.actor_type, event.actor_id) == (team.owner, "import", 12)
    team.owner.language = "zh-hans"
    team.owner.save(update_fields=["language"])
    client.force_login(team.owner)
    page = client.get(reverse("customers:history", args=[customer.pk])).content.decode()
    assert "王芳" in page and "导入 #12" in page


# --- Handing events on ------------------------------------------------------------------------


@pytest.fixture
def subscriber():
    """The test subscriber, registered in this process for the test, alone (the apps'
    own subscribers, automation's, are set aside meanwhile)."""
    FAILURES["left"] = 0
    others = events.subscribers()
    for other in others:
        events.unregister_subscriber(other.name)
    events.register_subscriber(SUBSCRIBER)
    yield SUBSCRIBER
    events.unregister_subscriber(SUBSCRIBER.name)
    for other in others:
        events.register_subscriber(other)


def _reset_connections():
    """New connections to the broker from now on (the pools are built on first use)."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def broker_unreachable():
    """Publishing fails as with a broker that is down (nothing listens on the port)."""
    saved = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
    _reset_connections()
    try:
        yield
    finally:
        celery_app.conf.broker_url = saved
        _reset_connections()


def rename(customer: Customer, by, name: str) -> Customer:
    record = Customer.objects.get(pk=customer.pk)
    record.name = name
    return customers.update_customer(customer=record, by=by)


def test_listeners_hear_an_event_only_once_its_transaction_commits(
    team, customer, django_capture_on_commit_callbacks
):
    heard = []

    def listener(sender, event, **kwargs):
        heard.append((sender, event.kind, event.fields))

    events.record_event.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            rename(customer, team.owner, "恒信机械")
            assert heard == []  # not before the commit
        assert heard == [(Customer, "updated", {"name": [customer.name, "恒信机械"]})]
    finally:
        events.record_event.disconnect(listener)


def test_an_event_the_broker_never_got_is_handed_on_by_the_sweep_once(
    team, customer, subscriber, django_capture_on_commit_callbacks
):
    with broker_unreachable(), django_capture_on_commit_callbacks(execute=True):
        rename(customer, team.owner, "恒信机械")  # the change itself is saved
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    assert Customer.objects.get(pk=customer.pk).name == "恒信机械"
    assert event.delivered_at is None and not HandledEvent.objects.exists()

    assert events.pending_ids() == []  # too fresh: its task may still be on its way
    assert events.sweep(older_than=timedelta(0)) == 1
    assert events.sweep(older_than=timedelta(0)) == 0
    assert events.deliver([event.pk]) == 0  # a late duplicate message changes nothing
    [handled] = HandledEvent.objects.all()
    assert (handled.event_id, handled.kind) == (event.pk, "updated")
    assert handled.fields == {"name": [customer.name, "恒信机械"]}
    event.refresh_from_db()
    assert event.delivered_at is not None and event.receipts.count() == 1


def test_a_subscriber_that_fails_gets_the_event_again_and_handles_it_once(
    team, customer, subscriber
):
    rename(customer, team.owner, "恒信机械")
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    FAILURES["left"] = 1
    assert events.deliver([event.pk]) == 0
    event.refresh_from_db()
    # What it did rolled back with its receipt.
    assert event.delivery_attempts == 1 and not HandledEvent.objects.exists()
    assert events.deliver([event.pk]) == 1
    assert HandledEvent.objects.filter(event_id=event.pk).count() == 1


def test_an_event_that_keeps_failing_is_left_for_an_admin(team, customer, subscriber):
    rename(customer, team.owner, "恒信机械")
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    Change.objects.filter(pk=event.pk).update(delivery_attempts=events.MAX_ATTEMPTS)
    assert events.pending_ids(older_than=timedelta(0)) == []


def test_without_subscribers_an_event_is_written_delivered(team, customer):
    rename(customer, team.owner, "恒信机械")
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    assert event.delivered_at is not None and events.sweep(older_than=timedelta(0)) == 0


@contextmanager
def published_deliveries():
    """The event ids of each delivery message published inside the block (Celery's own
    publish signal)."""
    from celery.signals import before_task_publish

    sent: list[list[int]] = []

    def on_publish(sender=None, body=None, **kwargs):
        if sender == deliver_events.name:
            sent.append(list(body[0][0]))

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(on_publish)


def test_a_transaction_of_many_changes_sends_one_message(
    team, customer, subscriber, django_capture_on_commit_callbacks
):
    other = CustomerFactory(owner=team.owner, name="苏州工业园区某厂")
    heard = []

    def listener(sender, event, **kwargs):
        heard.append(event.pk)

    events.record_event.connect(listener)
    try:
        with (
            published_deliveries() as sent,
            django_capture_on_commit_callbacks(execute=True),
            transaction.atomic(),
        ):
            rename(customer, team.owner, "恒信机械")
            rename(other, team.owner, "苏州某厂")
            rename(customer, team.owner, "恒信机械二厂")
    finally:
        events.record_event.disconnect(listener)
    written = list(Change.objects.filter(kind=EventKind.UPDATED).order_by("pk"))
    assert len(written) == 3
    assert sent == [[e.pk for e in written]]
    assert heard == [e.pk for e in written]


def test_a_rolled_back_savepoint_sends_and_signals_none_of_its_events(
    team, customer, subscriber, django_capture_on_commit_callbacks
):
    other = CustomerFactory(owner=team.owner, name="苏州工业园区某厂")
    heard = []

    def listener(sender, event, **kwargs):
        heard.append(event.fields["name"][1])

    events.record_event.connect(listener)
    try:
        with (
            published_deliveries() as sent,
            django_capture_on_commit_callbacks(execute=True),
            transaction.atomic(),
        ):
            rename(customer, team.owner, "恒信机械")
            with pytest.raises(RuntimeError), transaction.atomic():
                rename(other, team.owner, "撤回的名字")
                raise RuntimeError("rolled back")
            rename(customer, team.owner, "恒信机械二厂")
    finally:
        events.record_event.disconnect(listener)
    written = list(Change.objects.filter(kind=EventKind.UPDATED).order_by("pk"))
    assert [e.fields["name"][1] for e in written] == ["恒信机械", "恒信机械二厂"]
    assert sent == [[e.pk for e in written]]
    assert heard == ["恒信机械", "恒信机械二厂"]


def test_a_message_of_many_events_is_handled_together_and_each_once(team, customer, subscriber):
    rename(customer, team.owner, "恒信机械")
    rename(customer, team.owner, "恒信机械二厂")
    ids = list(Change.objects.filter(kind=EventKind.UPDATED).values_list("pk", flat=True))
    assert events.deliver(ids) == 2
    assert events.deliver(ids) == 0
    assert sorted(HandledEvent.objects.values_list("event_id", flat=True)) == sorted(ids)
    assert Change.objects.filter(pk__in=ids, delivered_at__isnull=True).count() == 0


def test_an_event_that_fails_in_a_message_holds_back_no_other(team, customer, subscriber):
    rename(customer, team.owner, "恒信机械")
    rename(customer, team.owner, "恒信机械二厂")
    first, second = Change.objects.filter(kind=EventKind.UPDATED).order_by("pk")
    FAILURES["left"] = 2  # the message together, then the first event alone
    assert events.deliver([first.pk, second.pk]) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.delivered_at, first.delivery_attempts) == (None, 1)
    assert second.delivered_at is not None
    assert list(HandledEvent.objects.values_list("event_id", flat=True)) == [second.pk]
    assert events.deliver([first.pk]) == 1
    assert HandledEvent.objects.filter(event_id=first.pk).count() == 1


# --- With a real worker -----------------------------------------------------------------------


def event_worker_process(tmp_path):
    """A real worker in which the test subscriber is registered too."""
    return celery_worker(
        tmp_path, DJANGO_SETTINGS_MODULE="crm.settings_test", CRM_TEST_EVENT_SUBSCRIBER="1"
    )


@pytest.fixture
def event_worker(transactional_db, subscriber, tmp_path):
    with event_worker_process(tmp_path) as process:
        yield process


def wait_until_handled(event: Change):
    return wait_for(
        lambda: HandledEvent.objects.filter(event_id=event.pk).first(),
        what=f"the worker to handle event {event.pk}",
    )


@pytest.mark.worker
def test_a_worker_hands_each_event_to_the_subscriber_after_commit(team, event_worker):
    customer = CustomerFactory(owner=team.owner)
    rename(customer, team.owner, "恒信机械")
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    handled = wait_until_handled(event)
    assert handled.pid == event_worker.pid
    wait_for(
        lambda: Change.objects.filter(pk=event.pk, delivered_at__isnull=False).exists(),
        what="the event to be marked delivered",
    )
    assert HandledEvent.objects.filter(event_id=event.pk).count() == 1


@pytest.mark.worker
def test_after_a_broker_outage_the_sweep_on_a_worker_delivers_what_was_missed(
    transactional_db, team, subscriber, tmp_path
):
    customer = CustomerFactory(owner=team.owner)
    with broker_unreachable():
        rename(customer, team.owner, "恒信机械")  # committed; its message could not go
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    assert event.delivered_at is None
    # A minute on, the broker is back and beat's sweep runs on a worker.
    Change.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    with event_worker_process(tmp_path) as process:
        sweep_events.delay()
        handled = wait_until_handled(event)
        wait_for(
            lambda: Change.objects.filter(pk=event.pk, delivered_at__isnull=False).exists(),
            what="the event to be marked delivered",
        )
        sweep_events.delay()  # a second sweep finds nothing left to do
        deliver_events.delay([event.pk])  # nor does a late duplicate message
        wait_for(lambda: not _queued(), what="the worker to take both messages")
    assert handled.pid == process.pid
    assert HandledEvent.objects.filter(event_id=event.pk).count() == 1


def _queued() -> int:
    """Messages waiting in the test queue (Redis drops an empty queue: none)."""
    from amqp.exceptions import ChannelError
    from django.conf import settings

    with celery_app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(
                queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
            ).message_count
        except ChannelError:
            return 0


def test_the_admin_lists_events_whose_delivery_was_given_up_and_hands_them_on(
    admin_client, team, customer, subscriber
):
    rename(customer, team.owner, "恒信机械")
    event = Change.objects.get(customer=customer, kind=EventKind.UPDATED)
    Change.objects.filter(pk=event.pk).update(delivery_attempts=events.MAX_ATTEMPTS)
    url = reverse("admin:crm_change_changelist")
    page = admin_client.get(url, {"delivery": "given_up"})
    assert page.status_code == 200 and list(page.context["cl"].result_list) == [event]
    assert admin_client.get(url, {"delivery": "pending"}).context["cl"].result_list.count() == 0
    response = admin_client.post(
        url, {"action": "deliver_again", "_selected_action": [event.pk]}, follow=True
    )
    assert "1 event delivered." in response.content.decode()
    event.refresh_from_db()
    assert event.delivered_at is not None
    assert HandledEvent.objects.filter(event_id=event.pk).count() == 1
    assert admin_client.get(reverse("admin:crm_change_change", args=[event.pk])).status_code == 200
