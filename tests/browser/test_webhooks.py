"""An admin adds a webhook in the admin (record types and events ticked), sees its
signing secret, and opens a delivery from its log: the payload, the attempts and the
Resend button."""

import re
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from crm.models import Change
from integrations.webhooks import services
from integrations.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from pipelines.models import Deal

from .conftest import loads, sign_in

pytestmark = pytest.mark.browser
SHOTS = Path("/work/notes/shots")


def shot(page, name: str) -> None:
    if SHOTS.is_dir():
        page.screenshot(path=SHOTS / f"webhooks-{name}-{page.viewport_name}.png", full_page=True)


def test_an_admin_adds_a_webhook_and_reads_its_delivery_log(page):
    services.forget_subscriptions()
    seed_organisation(reset_passwords=True)
    sign_in(page, "admin")
    page.goto("/admin/webhooks/webhooksubscription/add/")
    page.locator("input[name=name]").fill("ERP 同步")
    page.locator("input[name=url]").fill("https://93.184.216.34/hooks/crm")
    page.locator("input[name=record_types][value=deal]").check()
    page.locator("input[name=events][value=won]").check()
    page.locator("input[name=events][value=lost]").check()
    shot(page, "add")
    with loads(page, re.compile(r"/admin/webhooks/webhooksubscription/$")):
        page.locator("input[name=_save]").click()
    subscription = WebhookSubscription.objects.get()
    assert (subscription.record_types, subscription.events) == (["deal"], ["won", "lost"])

    page.goto(f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/")
    expect(page.get_by_text(subscription.secret)).to_be_visible()
    shot(page, "change")

    event = Change.objects.create(
        record_type=ContentType.objects.get_for_model(Deal), record_id=1, action="updated",
        kind="stage_moved",
    )  # fmt: skip
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event=event,
        event_name="deal.won",
        payload={"event": "deal.won", "record_type": "deal", "record_id": 1},
        attempts=1,
    )
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=502, duration_ms=240, error="HTTP 502"
    )
    page.goto(f"/admin/webhooks/webhookdelivery/?subscription__id__exact={subscription.pk}")
    shot(page, "log")
    with loads(page):
        page.locator("#result_list tbody a").first.click()
    expect(page.locator("button.historylink")).to_be_visible()
    shot(page, "delivery")
    services.forget_subscriptions()
