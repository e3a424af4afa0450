"""Record events and their outbox: how the rest of the system hears that a record
changed.

Every service that changes a record writes one event row (`crm.models.Change`, the
same row the history pages show) in the transaction of the change
(`crm.services.history.record_change`). After the commit:

- `record_event` (a Django signal) is sent in the process that made the change, for
  in-process listeners (caches, counters). It is sent once, and not again if the
  process dies right after the commit: a listener that must not miss an event is a
  background subscriber instead.
- Background subscribers (`register_subscriber`), registered from an app's `ready()`,
  get each event from a Celery task (`crm.tasks.deliver_events`). A subscriber's
  work and its receipt (`EventReceipt`) commit together, so a delivery retried after a
  crash or twice over never handles an event twice. An event is delivered
  (`delivered_at`) once every subscriber has a receipt.
- The sweep (`crm.tasks.sweep_events`, every minute from beat) hands on events still
  undelivered a minute after they were written: the broker was down at commit, the
  message was lost, a worker was killed, a subscriber failed. After `MAX_ATTEMPTS`
  failed deliveries an event is left for an admin to look at (Django admin lists it).

With no background subscriber registered, an event is written as delivered and costs
no message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from .models import Change, EventReceipt

log = logging.getLogger(__name__)

# sender: the record's model class; event: the Change row (its `fields`, `kind`...)
record_event = Signal()

MAX_ATTEMPTS = 10
SWEEP_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Subscriber:
    """A background consumer of record events. `handle(event)` runs inside the
    transaction that writes its receipt; raising rolls both back (retried later)."""

    name: str
    handle: Callable[[Change], None]
    # Which events it wants (None: all); others get a receipt without a call.
    wants: Callable[[Change], bool] | None = None
    # Whether it listens at all right now (None: always), asked when an event is
    # written: automation listens only while a rule is active. An event written while
    # no subscriber listens is written delivered and costs no message.
    listening: Callable[[], bool] | None = None


_subscribers: dict[str, Subscriber] = {}


def register_subscriber(subscriber: Subscriber) -> Subscriber:
    """Add a background subscriber (from an AppConfig.ready()); names are unique."""
    _subscribers[subscriber.name] = subscriber
    return subscriber


def unregister_subscriber(name: str) -> None:
    _subscribers.pop(name, None)


def subscribers() -> list[Subscriber]:
    return list(_subscribers.values())


def has_subscribers() -> bool:
    """Whether a new event has anyone to be handed to."""
    return any(s.listening is None or s.listening() for s in _subscribers.values())


# --- After the commit -------------------------------------------------------------------


def dispatch_on_commit(events: list[Change]) -> None:
    """Hand the new event rows on once (and only if) the transaction commits."""
    if not events:
        return
    transaction.on_commit(lambda: _dispatch(events), robust=True)


def _dispatch(events: list[Change]) -> None:
    for event in events:
        responses = record_event.send_robust(sender=event.record_type.model_class(), event=event)
        for receiver, response in responses:
            if isinstance(response, Exception):
                log.error(
                    "record_event listener %r failed on event %s",
                    receiver,
                    event.pk,
                    exc_info=response,
                )
    pending = [event.pk for event in events if event.delivered_at is None]
    if pending:
        enqueue(pending)


def enqueue(ids: list[int]) -> bool:
    """Queue delivery; a broker that is down only delays it until the sweep."""
    from .tasks import deliver_events

    try:
        deliver_events.delay(ids)
    except Exception:
        log.warning("could not queue delivery of events %s; the sweep will", ids[:10])
        return False
    return True


# --- Delivery (in a worker) -------------------------------------------------------------


def deliver(ids: Iterable[int]) -> int:
    """Hand each undelivered event to every subscriber that has not handled it yet;
    returns how many events are delivered now."""
    delivered = 0
    for event in Change.objects.filter(pk__in=list(ids), delivered_at__isnull=True).order_by("pk"):
        if deliver_one(event):
            delivered += 1
    return delivered


def deliver_one(event: Change) -> bool:
    handled = set(EventReceipt.objects.filter(event=event).values_list("subscriber", flat=True))
    failed = False
    for subscriber in subscribers():
        if subscriber.name in handled:
            continue
        try:
            _handle_once(subscriber, event)
        except Exception:
            failed = True
            log.exception("subscriber %s failed on event %s", subscriber.name, event.pk)
    if failed:
        Change.objects.filter(pk=event.pk).update(delivery_attempts=F("delivery_attempts") + 1)
        return False
    Change.objects.filter(pk=event.pk, delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )
    return True


def _handle_once(subscriber: Subscriber, event: Change) -> None:
    """The receipt is inserted first: a second delivery running at the same time waits
    on its unique key and then finds the event handled."""
    try:
        with transaction.atomic():
            EventReceipt.objects.create(event=event, subscriber=subscriber.name)
            if subscriber.wants is None or subscriber.wants(event):
                subscriber.handle(event)
    except IntegrityError:
        if not EventReceipt.objects.filter(event=event, subscriber=subscriber.name).exists():
            raise


def pending_ids(*, older_than: timedelta = SWEEP_AFTER, limit: int = SWEEP_BATCH) -> list[int]:
    """Events nobody handed on: written more than `older_than` ago, still undelivered,
    not given up on."""
    return list(
        Change.objects.filter(
            delivered_at__isnull=True,
            created_at__lt=timezone.now() - older_than,
            delivery_attempts__lt=MAX_ATTEMPTS,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def sweep(*, older_than: timedelta = SWEEP_AFTER) -> int:
    """Deliver what was never handed on; returns how many events it delivered."""
    ids = pending_ids(older_than=older_than)
    if ids and not has_subscribers():
        # Nobody listens (any more): nothing to hand on.
        return Change.objects.filter(pk__in=ids).update(delivered_at=timezone.now())
    return deliver(ids)
