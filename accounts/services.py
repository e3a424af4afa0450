"""Account services: the writes that views, admin and tasks share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .models import SecurityNotice, User

# A claim older than this belongs to a worker that died mid-send; the sweep takes it over.
STALE_CLAIM = timedelta(minutes=10)


def record_password_changed(*, user: User) -> SecurityNotice:
    """Note that `user` changed their password; the notice is mailed after commit."""
    notice = SecurityNotice.objects.create(user=user, kind=SecurityNotice.Kind.PASSWORD_CHANGED)
    enqueue_security_notice(notice.pk)
    return notice


def enqueue_security_notice(notice_id: int) -> None:
    from .tasks import send_security_notice

    # robust: the change is committed whatever the broker does; the sweep retries.
    transaction.on_commit(lambda: send_security_notice.delay(notice_id), robust=True)


def claim_security_notice(notice_id: int) -> SecurityNotice | None:
    """Take the notice for sending, or None if it is sent or another worker has it."""
    now = timezone.now()
    claimed = SecurityNotice.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - STALE_CLAIM),
        pk=notice_id,
        sent_at__isnull=True,
    ).update(claimed_at=now)
    if not claimed:
        return None
    return SecurityNotice.objects.select_related("user").get(pk=notice_id)


def deliver_security_notice(notice_id: int) -> bool:
    """Send the notice once. Returns whether this call sent (or settled) it."""
    notice = claim_security_notice(notice_id)
    if notice is None:
        return False
    user = notice.user
    if not user.email:
        _settle(notice, result="no email address")
        return True
    with translation.override(user.language):
        context = {"user": user, "notice": notice, "brand_name": settings.CRM_SITE_NAME}
        subject = render_to_string(f"accounts/email/{notice.kind}_subject.txt", context)
        body = render_to_string(f"accounts/email/{notice.kind}.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [user.email])
    except Exception:
        SecurityNotice.objects.filter(pk=notice.pk).update(claimed_at=None)
        raise
    _settle(notice, result="sent")
    return True


def _settle(notice: SecurityNotice, *, result: str) -> None:
    SecurityNotice.objects.filter(pk=notice.pk).update(sent_at=timezone.now(), result=result)


def pending_security_notice_ids(*, older_than: timedelta) -> list[int]:
    """Notices whose task never ran (e.g. the broker was down at commit time)."""
    cutoff = timezone.now() - older_than
    return list(
        SecurityNotice.objects.filter(sent_at__isnull=True, created_at__lt=cutoff)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=timezone.now() - STALE_CLAIM))
        .values_list("pk", flat=True)[:500]
    )
