"""Outbound webhooks (issue 18): an admin's subscription gets each matching record event
as a signed POST, with only what that admin may see; failures are retried with backoff
by the minute's sweep and a day of failures pauses the subscription; admins resend from
the delivery log; internal addresses are refused (SSRF), when saved and when sent.

A real local HTTP server receives the deliveries; the sweep is driven with a given
`now`, never by waiting."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from accounts.models import DataScope
from automation.models import Notification
from crm.models import Change, Customer
from crm.services import customers
from integrations.webhooks import services, targets
from integrations.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from pipelines import services as pipeline_services

from .factories import DealFactory, crm_permissions, stage
from .factories.automation import deliver_events

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on 127.0.0.1: records each POST (headers, body) and answers
    with the next of `answers` (an HTTP status, or "hang": hold the request until
    `release` is set), then 200."""

    daemon_threads = True

    def __init__(self, answers=()) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = list(answers)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/crm"

    def next_answer(self):
        with self._lock:
            return self.answers.pop(0) if self.answers else 200

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.shutdown()
        self.server_close()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.received]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.next_answer()
        self.server.received.append((dict(self.headers), body))
        self.server.arrived.set()
        if answer == "hang":
            self.server.release.wait(timeout=60)
            return
        reply = b'{"ok": true}' if answer < 300 else b"upstream exploded " + b"x" * 4000
        self.send_response(answer)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, as the docs show it."""
    message = headers["X-Kedao-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Kedao-Signature"])


@pytest.fixture(autouse=True)
def _fresh_subscriptions(monkeypatch):
    """No subscription cached from another test; deliveries queued after a commit are
    sent at once in this process (what the worker's task does)."""
    services.forget_subscriptions()
    monkeypatch.setattr(services, "queue", services.send)
    yield
    services.forget_subscriptions()


@pytest.fixture
def team(org):
    """org.owner, a rep seeing their own records, whose role hides customers' address."""
    org.owner = org.set_scope(org.owner, DataScope.OWN, crm_permissions(types=TYPES))
    org.owner.role.field_permissions = {"customer": {"address": "hidden"}}
    org.owner.role.save(update_fields=["field_permissions"])
    org.owner.refresh_from_db()
    return org


def subscribe(owner, url, *, types=("customer",), events=("created", "updated"), **kw):
    return WebhookSubscription.objects.create(
        name="ERP 同步", url=url, owner=owner, record_types=list(types), events=list(events), **kw
    )


def new_customer(org, **fields) -> Customer:
    """A customer of org.owner's, made by the admin (through the service: an event)."""
    customer = Customer(name="上海恒信机械设备有限公司", owner=org.owner, **fields)
    return customers.create_customer(customer=customer, by=org.admin)


def test_a_matching_event_arrives_signed_with_its_idempotency_id(
    team, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        subscription = subscribe(team.owner, receiver.url)
        customer = new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)

    [(headers, body)] = receiver.received
    delivery = WebhookDelivery.objects.get()
    assert verify(subscription.secret, headers, body)
    assert not verify("whsec_another", headers, body)
    assert headers["X-Kedao-Event"] == "customer.created"
    assert headers["X-Kedao-Delivery"] == str(delivery.idempotency_id)
    payload = json.loads(body)
    event = Change.objects.get(record_id=customer.pk, kind="created")
    assert payload["id"] == str(delivery.idempotency_id)
    assert payload["event"] == "customer.created"
    assert (payload["record_type"], payload["record_id"]) == ("customer", customer.pk)
    assert payload["occurred_at"] == event.created_at.isoformat()
    assert payload["actor"] == {
        "type": "user", "id": team.admin.pk, "name": "管理员", "user_id": team.admin.pk,
    }  # fmt: skip
    assert payload["record"]["name"] == "上海恒信机械设备有限公司"
    assert payload["record"]["owner"] == team.owner.pk
    # Our side: delivered once, its attempt logged.
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.ok and attempt.status_code == 200 and attempt.response_excerpt == '{"ok": true}'


def test_a_second_handling_of_the_same_event_sends_nothing_more(
    team, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url)
        customer = new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        event = Change.objects.get(record_id=customer.pk, kind="created")
        with django_capture_on_commit_callbacks(execute=True):
            services.handle_event(event)  # a duplicated message
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.count() == 1


def test_other_record_types_and_events_send_nothing(team, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url, types=("deal",), events=("won",))
        customer = new_customer(team)
        customer.name = "上海恒信机械有限公司"
        customers.update_customer(customer=customer, by=team.admin)
        deal = DealFactory(
            owner=team.owner, customer=customer, title="年度设备采购", amount=Decimal("120000")
        )
        deliver_events(django_capture_on_commit_callbacks)
        assert receiver.received == []

        pipeline_services.move_to_stage(record=deal, stage=stage("零售", "赢单"), by=team.owner)
        deliver_events(django_capture_on_commit_callbacks)

    [payload] = receiver.payloads()
    assert (payload["event"], payload["record_id"]) == ("deal.won", deal.pk)
    assert payload["changes"]["status"] == ["open", "won"]
    assert payload["record"]["status"] == "won"


def test_a_stage_subscription_gets_won_moves_as_stage_changes(
    team, django_capture_on_commit_callbacks
):
    assert services.event_names(Change(kind="stage_moved", fields={"status": ["open", "won"]})) == [
        "won",
        "stage_changed",
    ]
    assert services.event_names(Change(kind="lost")) == ["lost", "stage_changed"]
    assert services.event_names(Change(kind="converted")) == ["converted", "stage_changed"]
    assert services.event_names(Change(kind="transferred")) == ["updated"]
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url, types=("deal",), events=("stage_changed",))
        deal = DealFactory(owner=team.owner, amount=Decimal("120000"))
        pipeline_services.move_to_stage(record=deal, stage=stage("零售", "赢单"), by=team.owner)
        deliver_events(django_capture_on_commit_callbacks)
    assert [p["event"] for p in receiver.payloads()] == ["deal.stage_changed"]


def test_fields_the_owners_role_hides_are_not_sent(team, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url)
        customer = new_customer(team, address="上海市浦东新区张江路 88 号", website="https://hx.cn")
        customer.address = "上海市徐汇区漕溪北路 1 号"
        customer.website = "https://hengxin.cn"
        customers.update_customer(customer=customer, by=team.admin)
        deliver_events(django_capture_on_commit_callbacks)

    created, updated = receiver.payloads()
    for payload in (created, updated):
        assert "address" not in payload["record"]
        assert payload["record"]["website"] == "https://hengxin.cn"
    assert "address" not in updated["changes"]
    assert updated["changes"]["website"] == ["https://hx.cn", "https://hengxin.cn"]
    assert "上海市" not in json.dumps(receiver.payloads(), ensure_ascii=False)


def test_records_the_owner_cannot_see_are_not_sent(team, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url)
        customers.create_customer(
            customer=Customer(name="北京远景科技有限公司", owner=team.outsider), by=team.admin
        )
        deliver_events(django_capture_on_commit_callbacks)
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_without_an_active_subscription_events_are_written_delivered(team):
    subscribe(team.owner, "https://hooks.example.com/crm", is_active=False)
    customer = new_customer(team)
    assert Change.objects.get(record_id=customer.pk).delivered_at is not None


# --- Retries -----------------------------------------------------------------------------


def test_backoff_doubles_from_a_minute_up_to_an_hour():
    assert [services.backoff(n) for n in range(1, 10)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)
    ]


def test_a_500_is_retried_by_the_sweep_when_its_backoff_has_passed(
    team, django_capture_on_commit_callbacks
):
    with Receiver(answers=[500, 503]) as receiver:
        subscribe(team.owner, receiver.url)
        new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get()
        first = WebhookAttempt.objects.get(delivery=delivery)
        assert (first.ok, first.status_code, delivery.status) == (False, 500, "pending")
        assert first.response_excerpt.startswith("upstream exploded")
        assert len(first.response_excerpt) == 1024
        assert delivery.next_attempt_at == first.started_at + timedelta(minutes=1)
        failed_at = WebhookSubscription.objects.get().failing_since
        assert failed_at == first.started_at

        t0 = first.started_at
        assert services.sweep(now=t0 + timedelta(seconds=59)) == 0  # not due yet
        assert len(receiver.received) == 1
        assert services.sweep(now=t0 + timedelta(minutes=1)) == 0  # 503: again, 2 min on
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == t0 + timedelta(minutes=1 + 2)
        assert services.sweep(now=t0 + timedelta(minutes=3)) == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    assert [a.status_code for a in delivery.attempt_log.order_by("started_at")] == [500, 503, 200]
    ids = {headers["X-Kedao-Delivery"] for headers, _body in receiver.received}
    assert ids == {str(delivery.idempotency_id)}
    assert WebhookSubscription.objects.get().failing_since is None


def test_a_timeout_is_a_failure_retried_later(team, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOKS_READ_TIMEOUT = 0.2
    with Receiver(answers=["hang"]) as receiver:
        subscribe(team.owner, receiver.url)
        new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get()
        [first] = delivery.attempt_log.all()
        assert (first.ok, first.status_code, first.error) == (False, None, "timed out")
        assert delivery.status == DeliveryStatus.PENDING
        services.sweep(now=first.started_at + timedelta(minutes=1))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 2


def test_a_day_of_failures_pauses_the_subscription_and_tells_its_owner_and_admins(
    team, django_capture_on_commit_callbacks
):
    with Receiver(answers=[500] * 50) as receiver:
        subscription = subscribe(team.owner, receiver.url)
        new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        t0 = WebhookAttempt.objects.get().started_at
        now = t0
        while WebhookSubscription.objects.get().is_active:
            now = WebhookDelivery.objects.get().next_attempt_at
            assert now <= t0 + timedelta(hours=26), "never paused"
            services.sweep(now=now)
        sent = len(receiver.received)
        # Paused: nothing more is sent, however long one waits.
        assert services.sweep(now=now + timedelta(hours=5)) == 0
        assert len(receiver.received) == sent

    subscription.refresh_from_db()
    assert subscription.paused_reason and subscription.paused_at == now
    assert t0 + timedelta(hours=24) <= now < t0 + timedelta(hours=25)
    notices = Notification.objects.filter(title__contains="ERP 同步")
    assert sorted(n.user_id for n in notices) == sorted([team.owner.pk, team.admin.pk])
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING

    # Fixed and resumed: the waiting delivery goes, the failure clock starts over.
    with Receiver() as receiver:
        WebhookSubscription.objects.filter(pk=subscription.pk).update(url=receiver.url)
        services.resume(subscription)
        assert services.sweep(now=now + timedelta(hours=5)) == 1
    assert WebhookSubscription.objects.get().failing_since is None


# --- The admin ---------------------------------------------------------------------------


def test_the_resend_button_sends_the_delivery_again_as_a_new_attempt(
    team, admin_client, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url)
        new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get()
        page = admin_client.get(
            reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
        )
        assert page.status_code == 200 and b"Resend" in page.content
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                reverse("admin:webhooks_webhookdelivery_resend", args=[delivery.pk])
            )
        assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert delivery.attempt_log.count() == 2
    [first, second] = [headers["X-Kedao-Delivery"] for headers, _body in receiver.received]
    assert first == second == str(delivery.idempotency_id)


def test_an_admin_subscribes_sees_the_secret_and_rotates_it(admin_client, org, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    add = reverse("admin:webhooks_webhooksubscription_add")
    assert admin_client.get(add).status_code == 200
    response = admin_client.post(
        add,
        {
            "name": "ERP",
            "url": "https://93.184.216.34/hooks",
            "record_types": ["customer", "deal"],
            "events": ["created", "won"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    subscription = WebhookSubscription.objects.get()
    assert subscription.owner == org.admin
    assert subscription.secret.startswith("whsec_") and len(subscription.secret) > 40
    change = reverse("admin:webhooks_webhooksubscription_change", args=[subscription.pk])
    assert subscription.secret in admin_client.get(change).content.decode()

    old = subscription.secret
    admin_client.post(
        reverse("admin:webhooks_webhooksubscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [subscription.pk]},
    )
    subscription.refresh_from_db()
    assert subscription.secret != old and subscription.secret.startswith("whsec_")
    log = admin_client.get(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"subscription__id__exact": subscription.pk},
    )
    assert log.status_code == 200


# --- SSRF ---------------------------------------------------------------------------------

INTERNAL = [
    "https://127.0.0.1/hook",
    "https://10.0.0.8/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost:8443/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_when_saved(admin_client, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationError):
        targets.check(url)
    response = admin_client.post(
        reverse("admin:webhooks_webhooksubscription_add"),
        {"name": "内网", "url": url, "record_types": ["customer"], "events": ["created"]},
    )
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["url"]
    assert "internal address" in error
    assert not WebhookSubscription.objects.exists()


def test_only_https_unless_private_targets_are_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationError, match="https"):
        targets.check("http://93.184.216.34/hook")
    assert targets.check("https://93.184.216.34/hook").ip == "93.184.216.34"
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    assert targets.check("http://127.0.0.1:8080/hook").port == 8080


def test_the_refusal_is_in_the_admins_language(client, org, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    org.admin.language = "zh-hans"
    org.admin.save(update_fields=["language"])
    client.force_login(org.admin)
    response = client.post(
        reverse("admin:webhooks_webhooksubscription_add"),
        {"name": "内网", "url": "https://10.1.2.3/", "record_types": ["customer"]},
    )
    assert response.status_code == 200
    with translation.override("zh-hans"):
        expected = translation.gettext(
            "%(host)s points to %(address)s, an internal address; webhooks only go to public "
            "addresses."
        ) % {"host": "10.1.2.3", "address": "10.1.2.3"}
    assert response.context["adminform"].form.errors["url"] == [expected]


def test_an_address_that_turned_internal_is_refused_at_send_time(
    team, settings, django_capture_on_commit_callbacks
):
    """Saved when its name pointed outside; now it resolves to the machine itself."""
    with Receiver() as receiver:
        port = receiver.server_address[1]
        subscribe(team.owner, f"https://localhost:{port}/hooks/crm")
        settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
        new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    [attempt] = delivery.attempt_log.all()
    assert not attempt.ok and attempt.status_code is None
    # The log is written in the site's language: it names the address either way.
    assert delivery.status == DeliveryStatus.PENDING and "127.0.0.1" in attempt.error


def test_one_transactions_events_are_sent_by_one_message(
    team, monkeypatch, django_capture_on_commit_callbacks
):
    messages = []
    monkeypatch.setattr(services, "queue", messages.append)
    subscribe(team.owner, "https://hooks.example.com/crm")
    for n in range(3):
        customers.create_customer(
            customer=Customer(name=f"上海恒信机械{n}有限公司", owner=team.owner), by=team.admin
        )
    deliver_events(django_capture_on_commit_callbacks)  # one delivery message, 3 events
    assert messages == [list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))]
    assert len(messages[0]) == 3


def test_a_deleted_record_is_sent_only_to_owners_who_see_every_record_of_its_type(
    team, django_capture_on_commit_callbacks
):
    from crm.services.history import record_deletions

    everyone = team.set_scope(team.colleague, DataScope.ALL, crm_permissions(types=TYPES))
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url, events=("deleted",))
        subscribe(everyone, receiver.url, events=("deleted",))
        customer = new_customer(team)
        record_deletions([customer], by=team.admin)
        pk = customer.pk
        customer.delete()
        deliver_events(django_capture_on_commit_callbacks)
    [payload] = receiver.payloads()
    assert (payload["event"], payload["record_id"], payload["record"]) == (
        "customer.deleted",
        pk,
        None,
    )
    assert WebhookDelivery.objects.get().subscription.owner == everyone


def test_rows_a_claim_could_not_send_within_its_lease_are_given_back(
    team, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """So a second worker taking them after the lease never sends one twice at once."""
    monkeypatch.setattr(services, "queue", lambda ids: None)
    with Receiver() as receiver:
        subscribe(team.owner, receiver.url)
        for _n in range(3):
            new_customer(team)
        deliver_events(django_capture_on_commit_callbacks)
        settings.WEBHOOKS_CLAIM_LEASE = 1  # shorter than one POST may take
        rows = services.claim(list(WebhookDelivery.objects.values_list("pk", flat=True)))
        assert len(rows) == 3
        assert services.send_chunk(rows) == 1
    assert len(receiver.received) == 1
    waiting = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    assert sorted(waiting.values_list("attempts", "claim")) == [(0, None), (0, None)]
