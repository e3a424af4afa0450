"""In-app notifications (the bell): sending, reading, and the daily digest email."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import ngettext, override

from accounts.models import User

from . import batch
from .models import Notification, NotificationKind, NotificationSettings
from .records import type_of


def notify(
    *,
    user: User,
    title: str,
    body: str = "",
    record=None,
    rule=None,
    kind: str = NotificationKind.RULE,
) -> Notification:
    record_type = type_of(record).key if record is not None else ""
    row = Notification(
        user=user,
        kind=kind,
        title=title[:200],
        body=body,
        record_type=record_type,
        record_id=record.pk if record is not None else None,
        rule=rule,
    )
    # A rule's notices in a worker's message of events: written with the message's rows.
    if not batch.defer(row):
        row.save(force_insert=True)
    return row


def for_user(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)


def unread_count(user: User) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def mark_read(user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when `ids` is None)."""
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(read_at=timezone.now())


def mark_unread(user: User, ids: list[int]) -> int:
    return Notification.objects.filter(user=user, pk__in=ids).update(read_at=None)


def link(notification: Notification) -> str:
    if not notification.record_type or notification.record_id is None:
        return ""
    from .records import TYPES

    spec = TYPES.get(notification.record_type)
    if spec is None:
        return ""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(spec.url_name, args=[notification.record_id])
    except NoReverseMatch:
        return ""


def settings_for(user: User) -> NotificationSettings:
    found, _created = NotificationSettings.objects.get_or_create(user=user)
    return found


def send_digests(now: datetime | None = None) -> int:
    """Each person who asked for it gets one email a day listing their unread
    notifications not yet in a digest, on the first beat at or after their hour
    (`digest_hour`) of the day; returns how many emails were sent.

    Hours and days are the site's (TIME_ZONE): people have no time zone of their own. A
    person whose hour has come is claimed for the day even when nothing is unread (no
    email then): what arrives later that day waits for the next day's digest."""
    now = now or timezone.now()
    local = timezone.localtime(now, timezone.get_default_timezone())
    today = local.date()
    sent = 0
    due = Q(daily_digest=True, digest_hour__lte=local.hour) & ~Q(digest_sent_on=today)
    for prefs in NotificationSettings.objects.filter(due).select_related("user"):
        user = prefs.user
        with transaction.atomic():
            # Claim today's digest for this person first: two beats never send two (the
            # second UPDATE waits for the first's row lock, then no longer matches).
            claimed = NotificationSettings.objects.filter(due, pk=prefs.pk).update(
                digest_sent_on=today
            )
            if not claimed or not user.is_active or not user.email:
                continue
            rows = list(
                Notification.objects.filter(
                    user=user, read_at__isnull=True, digested_at__isnull=True
                ).order_by("created_at")[:200]
            )
            if not rows:
                continue
            Notification.objects.filter(pk__in=[n.pk for n in rows]).update(digested_at=now)
            with override(user.language or settings.LANGUAGE_CODE):
                subject = ngettext(
                    "%(site)s: %(n)s unread notification",
                    "%(site)s: %(n)s unread notifications",
                    len(rows),
                ) % {
                    "site": settings.CRM_SITE_NAME,
                    "n": len(rows),
                }
                body = render_to_string(
                    "automation/email/digest.txt",
                    {"user": user, "notifications": rows, "site": settings.CRM_SITE_NAME},
                )
            transaction.on_commit(
                lambda subject=subject, body=body, to=user.email: send_mail(
                    subject, body, None, [to]
                )
            )
            sent += 1
    return sent
