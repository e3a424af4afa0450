"""Outbound webhooks: an admin's subscription to record events, each matching event's
delivery (the outbox row a worker sends, with its idempotency id) and every attempt."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Change


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe text (shown to the admin)."""
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEvent(models.TextChoices):
    """What a subscription may ask for; each maps from record events (events.py)."""

    CREATED = "created", _("Record created")
    UPDATED = "updated", _("Record updated")
    DELETED = "deleted", _("Record deleted")
    STAGE_CHANGED = "stage_changed", _("Stage changed")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    CONVERTED = "converted", _("Lead converted")


class WebhookSubscription(models.Model):
    """Where to POST which record events, signed with `secret`, on behalf of `owner`
    (the payload holds only what that admin may see)."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    record_types = models.JSONField(_("record types"), default=list)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("secret"), max_length=100, default=new_secret)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Payloads hold only the records and fields this person may see."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    paused_reason = models.CharField(_("paused because"), max_length=300, blank=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENDING = "sending", _("Sending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event for one subscription: written in the event's receipt transaction,
    sent by a worker that claims it for `claimed_until` (a killed worker's claim runs
    out and another sends it again, with the same idempotency id)."""

    subscription = models.ForeignKey(
        WebhookSubscription,
        verbose_name=_("webhook"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event = models.ForeignKey(
        Change, verbose_name=_("record event"), on_delete=models.CASCADE, related_name="+"
    )
    idempotency_id = models.UUIDField(_("delivery id"), default=uuid.uuid4, unique=True)
    event_name = models.CharField(_("event"), max_length=60)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="webhook_delivery_once_per_event"
            )
        ]
        indexes = [
            # What the sweep reads: rows waiting or claimed (a few at most).
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} #{self.event_id} → {self.subscription_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery, as it went: status, time, the start of the reply."""

    delivery = models.ForeignKey(
        WebhookDelivery, verbose_name=_("delivery"), on_delete=models.CASCADE,
        related_name="attempt_log",
    )  # fmt: skip
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("time (ms)"), default=0)
    response_excerpt = models.TextField(_("response"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    ok = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        outcome = f"HTTP {self.status_code}" if self.status_code else self.error
        return f"{outcome} · {self.duration_ms} ms"
