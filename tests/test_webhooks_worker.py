"""Webhooks with the real things: a Celery worker process, the broker, the test database
and a local HTTP receiver. A worker killed while a POST hangs leaves its claim; once
the claim runs out another worker's sweep sends the delivery again with the same
idempotency id, and our row ends delivered once. Every wait is on state."""

from __future__ import annotations

import signal

import pytest
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Customer
from crm.services import customers
from integrations.webhooks import services
from integrations.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from integrations.webhooks.tasks import sweep

from .factories import crm_permissions
from .test_background import celery_worker, wait_for
from .test_webhooks import Receiver, verify

pytestmark = pytest.mark.worker


@pytest.fixture
def team(transactional_db, org):
    services.forget_subscriptions()
    org.owner = org.set_scope(org.owner, DataScope.OWN, crm_permissions())
    yield org
    services.forget_subscriptions()


def test_a_worker_killed_mid_send_leaves_the_delivery_to_another_sent_once(team, tmp_path):
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    # The test settings: the worker queues the sends to its own queue (CRM_TEST_QUEUE),
    # and may send to the receiver on 127.0.0.1.
    allow_local = {"DJANGO_SETTINGS_MODULE": "crm.settings_test"}
    with Receiver(answers=["hang"]) as receiver:
        subscription = WebhookSubscription.objects.create(
            name="ERP 同步",
            url=receiver.url,
            owner=team.owner,
            record_types=["customer"],
            events=["created"],
        )
        with celery_worker(tmp_path / "first", **allow_local) as first:
            customers.create_customer(
                customer=Customer(name="上海恒信机械设备有限公司", owner=team.owner), by=team.admin
            )  # committed: its event goes to the worker, which makes and sends the delivery
            wait_for(receiver.arrived.is_set, what="the worker to be sending the delivery")
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == DeliveryStatus.SENDING and delivery.attempts == 1
            assert delivery.claimed_until > timezone.now()
            # Killed while its POST waits for an answer.
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=15)
        receiver.release.set()
        assert not WebhookAttempt.objects.exists()
        # The killed worker's claim stays until its lease runs out (a minute): no one
        # else sends the row meanwhile. The lease passes.
        assert services.claim([delivery.pk]) == []
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            claimed_until=timezone.now() - timezone.timedelta(seconds=1)
        )

        with celery_worker(tmp_path / "second", **allow_local):
            sweep.delay()  # beat's minute
            wait_for(
                lambda: WebhookDelivery.objects.filter(
                    pk=delivery.pk, status=DeliveryStatus.DELIVERED
                ).exists(),
                what="another worker to send the delivery",
            )

    # The receiver saw it twice, under one idempotency id (it dedupes on it), signed.
    ids = [headers["X-Kedao-Delivery"] for headers, _body in receiver.received]
    assert ids == [str(delivery.idempotency_id)] * 2
    assert all(verify(subscription.secret, h, b) for h, b in receiver.received)
    assert receiver.received[0][1] == receiver.received[1][1]  # the same body
    # Our side: one row, delivered once, by its second attempt.
    delivery.refresh_from_db()
    assert WebhookDelivery.objects.count() == 1
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.ok and attempt.status_code == 200
