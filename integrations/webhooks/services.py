"""Webhook deliveries: from a record event to a signed POST, retried until it is taken.

1. The `crm.events` subscriber `webhooks` (`handle_event`) writes one `WebhookDelivery`
   per matching active subscription in the event's receipt transaction, with its
   payload (built for the subscription's owner: only records they see, without the
   fields their role hides) and its idempotency id; the commit queues `send_deliveries`.
2. A worker claims rows (a conditional UPDATE, or `select_for_update(skip_locked=True)`
   on PostgreSQL in the sweep) for a lease (`claimed_until`), POSTs, and records the
   attempt. A worker killed mid-send leaves its claim to run out; the sweep then sends
   the row again with the same idempotency id, which the receiver dedupes on.
3. Failures wait `backoff(attempts)` (1, 2, 4 … minutes, capped); beat's `sweep`
   sends what is due. A subscription failing without a break for `PAUSE_AFTER` is
   paused and its owner and the admins get a notification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time as clock
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, override

from accounts import access
from accounts.actors import actor_label
from accounts.models import DataScope, User
from crm.models import Change, EventKind
from crm.services.history import snapshot

from . import sending, targets
from .models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    new_secret,
)

log = logging.getLogger(__name__)

# The record types a subscription may name (those registered in this installation).
RECORD_TYPES = ("customer", "contact", "lead", "deal", "activity", "task")
BACKOFF_START = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
PAUSE_AFTER = timedelta(hours=24)
SWEEP_BATCH = 200
VERSION_KEY = "webhooks:subscriptions-version"
RECHECK_SECONDS = 1.0


def lease() -> timedelta:
    """How long a claim holds: the longest a send can take, and a margin."""
    return timedelta(seconds=getattr(settings, "WEBHOOKS_CLAIM_LEASE", 60))


def record_type_choices() -> list[tuple[str, str]]:
    registered = {t.key: t for t in access.record_types()}
    return [(key, _type_label(registered[key].model)) for key in RECORD_TYPES if key in registered]


def _type_label(model) -> str:
    return str(model._meta.verbose_name)


# --- Active subscriptions, cached per process --------------------------------------------


@dataclass
class _Cache:
    version: Any = None
    checked: float = 0.0
    subscriptions: list[WebhookSubscription] | None = None


_cache = _Cache()


def _bump_version() -> None:
    try:
        cache.set(VERSION_KEY, clock.time_ns(), None)
    except Exception:  # a cache outage must not stop an admin saving a webhook
        log.warning("could not bump the webhooks version")


def subscriptions_changed() -> None:
    """A subscription was saved or deleted: this process forgets them now, the others
    once the change is committed."""
    _cache.subscriptions = None
    transaction.on_commit(_bump_version, robust=True)


def forget_subscriptions() -> None:
    """Drop this process's cached subscriptions and names (tests: rolled-back rows must
    not stay)."""
    _cache.subscriptions = None
    _cache.version = None
    _names.clear()


# Set while a worker hands over a message of events: the subscriptions read once.
_pinned: ContextVar[list[WebhookSubscription] | None] = ContextVar(
    "webhook_subscriptions", default=None
)


@contextmanager
def pinned(events: list[Change]) -> Iterator[None]:
    """A message's events (crm.events.Subscriber.batch) see one read of the
    subscriptions, not one version read per event."""
    token = _pinned.set(active_subscriptions())
    try:
        yield
    finally:
        _pinned.reset(token)


def active_subscriptions() -> list[WebhookSubscription]:
    """The active subscriptions with their owners: one cache read per call (per message
    of events inside `pinned`), a query only when another process changed one (or,
    without a shared cache, once a second)."""
    held = _pinned.get()
    if held is not None:
        return held
    try:
        version = cache.get(VERSION_KEY)
    except Exception:
        version = None
    now = clock.monotonic()
    if _cache.subscriptions is not None:
        if version is not None and version == _cache.version:
            return _cache.subscriptions
        if version is None and now - _cache.checked < RECHECK_SECONDS:
            return _cache.subscriptions
    _cache.subscriptions = list(
        WebhookSubscription.objects.filter(is_active=True)
        .select_related("owner__role")
        .order_by("id")
    )
    _cache.version, _cache.checked = version, now
    return _cache.subscriptions


def listening() -> bool:
    """Whether record events need handing to webhooks at all."""
    return bool(active_subscriptions())


# --- Which events a subscription gets ---------------------------------------------------

UPDATED_KINDS = {
    EventKind.UPDATED,
    EventKind.TRANSFERRED,
    EventKind.CLAIMED,
    EventKind.RELEASED,
    EventKind.TAGGED,
    EventKind.MERGED,
    EventKind.TASK_COMPLETED,
    EventKind.TASK_REOPENED,
    EventKind.TASK_REASSIGNED,
}
MOVE_KINDS = {EventKind.STAGE_MOVED, EventKind.PIPELINE_CHANGED, EventKind.LOST}


def event_names(event: Change) -> list[str]:
    """The webhook events a record event is, most specific first: a move into a won
    stage is `won`, then `stage_changed` (a subscription asking for both gets `won`)."""
    kind = event.kind
    if kind in (EventKind.CREATED, EventKind.ACTIVITY_LOGGED):
        return [WebhookEvent.CREATED]
    if kind == EventKind.DELETED:
        return [WebhookEvent.DELETED]
    if kind == EventKind.CONVERTED:
        return [WebhookEvent.CONVERTED, WebhookEvent.STAGE_CHANGED]
    if kind in MOVE_KINDS:
        status = (event.fields or {}).get("status") or [None, None]
        new = status[-1] if isinstance(status, list) and status else None
        if kind == EventKind.LOST or new == "lost":
            return [WebhookEvent.LOST, WebhookEvent.STAGE_CHANGED]
        if new == "won":
            return [WebhookEvent.WON, WebhookEvent.STAGE_CHANGED]
        return [WebhookEvent.STAGE_CHANGED]
    if kind in UPDATED_KINDS:
        return [WebhookEvent.UPDATED]
    return []


_type_keys: dict[int, str | None] = {}


def type_key(event: Change) -> str | None:
    """The event's record type key ("deal"), from Django's content-type cache."""
    ct_id = event.record_type_id
    if ct_id not in _type_keys:
        model = ContentType.objects.get_for_id(ct_id).model_class()
        try:
            key = access.record_type_for(model).key if model is not None else None
        except LookupError:
            key = None
        _type_keys[ct_id] = key if key in RECORD_TYPES else None
    return _type_keys[ct_id]


def _event_for(subscription: WebhookSubscription, key: str | None, names: list[str]) -> str:
    if key is None or key not in subscription.record_types:
        return ""
    return next((name for name in names if name in subscription.events), "")


def wants(event: Change) -> bool:
    key, names = type_key(event), event_names(event)
    return any(_event_for(s, key, names) for s in active_subscriptions())


# --- Deliveries ----------------------------------------------------------------------------


def handle_event(event: Change) -> None:
    """The subscriber: a delivery per matching subscription, in the receipt's
    transaction; they are sent once it commits."""
    key, names = type_key(event), event_names(event)
    rows = []
    records: dict[int, Any] = {}
    # `wants` has just read them for this event (no second cache read).
    subscriptions = _cache.subscriptions
    for subscription in active_subscriptions() if subscriptions is None else subscriptions:
        name = _event_for(subscription, key, names)
        if not name:
            continue
        owner = subscription.owner
        if not owner.is_active:
            continue
        payload = build_payload(event, key, name, owner, records)
        if payload is None:
            continue
        rows.append(
            WebhookDelivery(
                subscription=subscription,
                event=event,
                idempotency_id=uuid.UUID(payload["id"]),
                event_name=payload["event"],
                payload=payload,
            )
        )
    if not rows:
        return
    # A second handling of the event (a retried message) keeps the row it made, and
    # its idempotency id (only the event name is written again); pks come back either way.
    created = WebhookDelivery.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["subscription", "event"],
        update_fields=["event_name"],
    )
    _send_after_commit([row.pk for row in created if row.pk is not None])


class _Pending:
    """The deliveries one transaction made, queued as one message once it commits (a
    100-event delivery message: one send message, not 100)."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.sent = False

    def __call__(self) -> None:
        self.sent = True
        queue(self.ids)


def _send_after_commit(ids: list[int]) -> None:
    """Add to this transaction's message; a new one when the last was sent or its
    callback went with a rolled-back savepoint (then the rows went too)."""
    conn = transaction.get_connection()
    pending = getattr(conn, "_webhooks_pending", None)
    if (
        pending is None
        or pending.sent
        or not any(func is pending for _sids, func, _robust in conn.run_on_commit)
    ):
        pending = _Pending()
        pending.ids.extend(ids)
        conn._webhooks_pending = pending
        transaction.on_commit(pending, robust=True)  # outside a transaction: at once
        return
    pending.ids.extend(ids)


def queue(ids: list[int]) -> None:
    """Send now in a worker; a broker that is down only delays it until the sweep."""
    from .tasks import send_deliveries

    try:
        send_deliveries.delay(ids)
    except Exception:
        log.warning("could not queue webhook deliveries %s; the sweep will", ids[:10])


def _visible_record(event: Change, key: str, owner: User, records: dict[int, Any]):
    """The record as the owner may see it now (None: gone, or outside their scope)."""
    cache_key = owner.pk
    if cache_key not in records:
        model = ContentType.objects.get_for_id(event.record_type_id).model_class()
        records[cache_key] = model.objects.visible_to(owner).filter(pk=event.record_id).first()
    return records[cache_key]


def build_payload(
    event: Change, key: str, name: str, owner: User, records: dict[int, Any]
) -> dict[str, Any] | None:
    """What is sent, as `owner` may see it; None when they may not see the record (a
    deleted record: only when they see every record of its type)."""
    hidden = access.hidden_fields(owner, key)
    if event.kind == EventKind.DELETED:
        if not access.has_permission(owner, key, "view") or access.data_scope(owner) != (
            DataScope.ALL
        ):
            return None
        record_data = None
    else:
        record = _visible_record(event, key, owner, records)
        if record is None:
            return None
        record_data = {"id": record.pk}
        record_data.update(
            {k: v for k, v in snapshot(record, display=False).raw.items() if k not in hidden}
        )
    return {
        "id": str(uuid.uuid4()),
        "event": f"{key}.{name}",
        "occurred_at": event.created_at.isoformat(),
        "record_type": key,
        "record_id": event.record_id,
        "actor": _actor(event),
        "changes": {k: v for k, v in (event.fields or {}).items() if k not in hidden},
        "record": record_data,
    }


def _actor(event: Change) -> dict[str, Any]:
    if event.actor_type:
        return {
            "type": event.actor_type,
            "id": event.actor_id,
            "name": actor_label(event.actor_type, event.actor_id, event.actor_name),
            "user_id": event.user_id,
        }
    return {
        "type": "user",
        "id": event.user_id,
        "name": _user_name(event.user_id),
        "user_id": event.user_id,
    }


_names: dict[int, tuple[str, float]] = {}
NAMES_FOR_SECONDS = 60.0


def _user_name(user_id: int | None) -> str:
    """A person's name, read at most once a minute per process (a 100-event message
    by one person reads it once)."""
    if user_id is None:
        return ""
    found = _names.get(user_id)
    now = clock.monotonic()
    if found is None or found[1] < now:
        user = User.objects.filter(pk=user_id).only("name", "username").first()
        name = (user.name or user.username) if user is not None else ""
        found = _names[user_id] = (name, now + NAMES_FOR_SECONDS)
    return found[0]


# --- Signing -------------------------------------------------------------------------------


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers_for(delivery: WebhookDelivery, secret: str, body: bytes, timestamp: int) -> dict:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Kedao-Webhooks/1",
        "X-Kedao-Event": delivery.event_name,
        "X-Kedao-Delivery": str(delivery.idempotency_id),
        "X-Kedao-Timestamp": str(timestamp),
        "X-Kedao-Signature": signature(secret, timestamp, body),
    }


def rotate_secret(subscription: WebhookSubscription) -> str:
    """A new signing secret, used from the next attempt on."""
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret", "updated_at"])
    return subscription.secret


# --- Claiming and sending ------------------------------------------------------------------

# Rows a worker claims at once: the attempts of a chunk are logged in one transaction.
CHUNK = 20


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 1, 2, 4, 8 … minutes, at most an hour."""
    return min(BACKOFF_START * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def _due(now: datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, claimed_until__lt=now
    )


def _claim_rows(ids: list[int], now: datetime) -> list[WebhookDelivery]:
    """Take the due rows among `ids` for this worker: one conditional UPDATE (of two
    workers, one wins each row) marks them with this claim's token."""
    token = uuid.uuid4()
    WebhookDelivery.objects.filter(pk__in=ids, subscription__is_active=True).filter(
        _due(now)
    ).update(
        status=DeliveryStatus.SENDING,
        claim=token,
        claimed_until=now + lease(),
        attempts=F("attempts") + 1,
    )
    return list(
        WebhookDelivery.objects.filter(claim=token).select_related("subscription").order_by("pk")
    )


def claim(ids: list[int], now: datetime | None = None) -> list[WebhookDelivery]:
    return _claim_rows(list(ids), now or timezone.now())


def claim_due(now: datetime, limit: int = CHUNK) -> list[WebhookDelivery]:
    """The sweep's claim of due rows: on PostgreSQL rows another worker holds locked
    are skipped (`skip_locked`), elsewhere the conditional UPDATE decides."""
    due = WebhookDelivery.objects.filter(subscription__is_active=True).filter(_due(now))
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(
                due.select_for_update(skip_locked=True, of=("self",))
                .order_by("next_attempt_at", "pk")
                .values_list("pk", flat=True)[:limit]
            )
            return _claim_rows(ids, now) if ids else []
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    return _claim_rows(ids, now) if ids else []


def _send_time() -> float:
    """The longest one POST may take (connect and read timeouts)."""
    return float(
        getattr(settings, "WEBHOOKS_CONNECT_TIMEOUT", sending.CONNECT_TIMEOUT)
        + getattr(settings, "WEBHOOKS_READ_TIMEOUT", sending.READ_TIMEOUT)
    )


def send_chunk(rows: list[WebhookDelivery], now: datetime | None = None) -> int:
    """POST each claimed row, then log the attempts and the rows' new states in one
    transaction; returns how many were taken. Rows whose lease would run out before
    their POST could end are given back (sent by the next claim), so two workers never
    hold one row. A worker killed here leaves its rows claimed: sent again once the
    lease runs out, with the same idempotency ids."""
    claimed_at = clock.monotonic()
    room = lease().total_seconds() - _send_time() - 5
    checked: dict[str, targets.Target | ValidationError] = {}
    done: list[tuple[WebhookDelivery, sending.Result, datetime]] = []
    for row in rows:
        if done and clock.monotonic() - claimed_at > room:
            break
        started = now or timezone.now()
        url = row.subscription.url
        if url not in checked:  # resolved once per chunk, at send time
            try:
                checked[url] = targets.check(url)
            except ValidationError as exc:
                checked[url] = exc
        target = checked[url]
        if isinstance(target, ValidationError):
            result = sending.Result(None, 0, error=" ".join(target.messages)[:500])
        else:
            body = body_of(row.payload)
            timestamp = int(clock.time())
            result = sending.post(
                target,
                body,
                headers_for(row, row.subscription.secret, body, timestamp),
                connect_timeout=getattr(
                    settings, "WEBHOOKS_CONNECT_TIMEOUT", sending.CONNECT_TIMEOUT
                ),
                read_timeout=getattr(settings, "WEBHOOKS_READ_TIMEOUT", sending.READ_TIMEOUT),
            )
        done.append((row, result, started))
    left = [row.pk for row in rows[len(done) :]]
    if left:
        WebhookDelivery.objects.filter(pk__in=left, claim=rows[0].claim).update(
            status=DeliveryStatus.PENDING,
            claim=None,
            claimed_until=None,
            attempts=F("attempts") - 1,
        )
    record(done)
    return sum(1 for _row, result, _at in done if result.ok)


def record(done: list[tuple[WebhookDelivery, sending.Result, datetime]]) -> None:
    """The attempts' log rows and the deliveries' new states, together; a row whose
    claim another worker took over meanwhile keeps that worker's state."""
    if not done:
        return
    delivered: dict[tuple, list[int]] = {}
    failing: dict[int, tuple[WebhookSubscription, datetime | None]] = {}
    with transaction.atomic():
        WebhookAttempt.objects.bulk_create(
            WebhookAttempt(
                delivery=row,
                started_at=at,
                status_code=result.status,
                duration_ms=result.duration_ms,
                response_excerpt=result.excerpt,
                error=_error(result)[:500],
                ok=result.ok,
            )
            for row, result, at in done
        )
        for row, result, at in done:
            subscription = row.subscription
            if result.ok:
                delivered.setdefault((row.claim, result.status), []).append(row.pk)
                failing[subscription.pk] = (subscription, None)
                continue
            WebhookDelivery.objects.filter(pk=row.pk, claim=row.claim).update(
                status=DeliveryStatus.PENDING,
                next_attempt_at=at + backoff(row.attempts),
                claimed_until=None,
                claim=None,
                last_status_code=result.status,
                last_error=_error(result)[:500],
            )
            failing[subscription.pk] = (subscription, at)
        finished = timezone.now()
        for (token, status), pks in delivered.items():
            WebhookDelivery.objects.filter(pk__in=pks, claim=token).update(
                status=DeliveryStatus.DELIVERED,
                delivered_at=finished,
                claimed_until=None,
                claim=None,
                last_status_code=status,
                last_error="",
            )
        for subscription, failed_at in failing.values():
            if failed_at is None and subscription.failing_since is not None:
                WebhookSubscription.objects.filter(pk=subscription.pk).update(failing_since=None)
            elif failed_at is not None:
                WebhookSubscription.objects.filter(
                    pk=subscription.pk, failing_since__isnull=True
                ).update(failing_since=failed_at)
    for subscription, failed_at in failing.values():
        if failed_at is not None and failed_at - (subscription.failing_since or failed_at) >= (
            PAUSE_AFTER
        ):
            pause(subscription, failed_at)


def _error(result: sending.Result) -> str:
    if result.ok:
        return ""
    return result.error or gettext("HTTP %(status)s") % {"status": result.status}


def send(ids: list[int], now: datetime | None = None) -> int:
    """Claim and send the rows among `ids` that are due, a chunk at a time; returns
    how many were taken."""
    ids = list(ids)
    taken = 0
    for start in range(0, len(ids), CHUNK):
        rows = claim(ids[start : start + CHUNK], now)
        taken += send_chunk(rows, now)
    return taken


def sweep(now: datetime | None = None, *, chunks: int = 50) -> int:
    """Beat's minute: pause subscriptions failing for a day, then send every due row
    (retries, rows never queued, claims of dead workers), a chunk at a time."""
    now = now or timezone.now()
    for subscription in WebhookSubscription.objects.filter(
        is_active=True, failing_since__lte=now - PAUSE_AFTER
    ):
        pause(subscription, now)
    taken = 0
    for _chunk in range(chunks):
        rows = claim_due(now)
        if not rows:
            break
        taken += send_chunk(rows, now)
    return taken


# --- Pausing and resending -----------------------------------------------------------------


def pause(subscription: WebhookSubscription, now: datetime) -> bool:
    """Stop sending to an endpoint that has failed for a day; its owner and the admins
    hear of it in the app. Its waiting deliveries are sent when it is resumed."""
    with override(settings.LANGUAGE_CODE):
        reason = gettext("Every delivery failed for 24 hours.")
    paused = WebhookSubscription.objects.filter(pk=subscription.pk, is_active=True).update(
        is_active=False, paused_reason=reason, paused_at=now
    )
    if not paused:
        return False
    subscriptions_changed()
    _notify_paused(subscription)
    return True


def _notify_paused(subscription: WebhookSubscription) -> None:
    from automation.notifications import notify

    people = {subscription.owner_id: subscription.owner}
    for admin in User.objects.filter(is_superuser=True, is_active=True):
        people.setdefault(admin.pk, admin)
    for person in people.values():
        if not person.is_active:
            continue
        with override(person.language or settings.LANGUAGE_CODE):
            notify(
                user=person,
                title=gettext("Webhook “%(name)s” paused") % {"name": subscription.name},
                body=gettext(
                    "Deliveries to %(url)s failed for 24 hours, so it was paused. Fix the "
                    "endpoint, then set the webhook active again in the admin."
                )
                % {"url": subscription.url},
            )


def resume(subscription: WebhookSubscription) -> None:
    """Active again (the admin fixed the endpoint): the failure clock starts over."""
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        is_active=True, paused_reason="", paused_at=None, failing_since=None
    )
    subscriptions_changed()


def resend(deliveries) -> list[int]:
    """Send deliveries again (the admin's button), delivered ones too, with their
    idempotency ids; returns the ids queued."""
    ids = list(deliveries.exclude(status=DeliveryStatus.SENDING).values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
    )
    if ids:
        transaction.on_commit(lambda: queue(ids), robust=True)
    return ids
