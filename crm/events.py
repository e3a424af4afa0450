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
  get each event from a Celery task (`crm.tasks.deliver_events`): one message per
  committed transaction, whose events are handled in one transaction of the worker.
  A subscriber's work and its receipt (`EventReceipt`) commit together, so a delivery
  retried after a crash or twice over never handles an event twice. An event is
  delivered (`delivered_at`) once every subscriber has a receipt.
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
from contextlib import AbstractContextManager, ExitStack
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
    # Entered around the handling of a message's events (before `wants` is asked): a
    # context manager factory taking them, so a subscriber reads once what they share.
    batch: Callable[[list[Change]], AbstractContextManager] | None = None


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


class _Batch:
    """The events one transaction wrote, queued as one delivery message once it commits
    (a 100-move transaction sends one message, not 100)."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.sent = False
        self.mixed = False  # parts written in different savepoints
        self.savepoints: set = set()

    def send(self) -> None:
        """Queue every event of the transaction that committed (once, from whichever
        part runs first after the commit)."""
        self.sent = True
        ids = [e.pk for part in self.parts for e in part.events if e.delivered_at is None]
        if ids and self.mixed:
            # A part whose savepoint was rolled back never runs, and its rows are gone.
            ids = list(Change.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if ids:
            enqueue(sorted(set(ids)))


class _Part:
    """One `dispatch_on_commit` call: an on_commit callback of its own, so a savepoint's
    rollback drops exactly its events (Django discards the callback), and the signal is
    sent for exactly the events that were committed."""

    def __init__(self, batch: _Batch, events: list[Change]) -> None:
        self.batch, self.events = batch, events

    def __call__(self) -> None:
        _signal(self.events)
        if not self.batch.sent:
            self.batch.send()


def dispatch_on_commit(events: list[Change]) -> None:
    """Hand the new event rows on once (and only if) the transaction commits."""
    if not events:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _signal(events)
        _enqueue_pending(events)
        return
    batch = _open_batch(connection)
    part = _Part(batch, list(events))
    savepoints = set(connection.savepoint_ids)
    if batch.parts and savepoints != batch.savepoints:
        batch.mixed = True
    elif not batch.parts:
        batch.savepoints = savepoints
    batch.parts.append(part)
    transaction.on_commit(part, robust=True)


def _open_batch(connection) -> _Batch:
    """This transaction's batch: the connection's last one while it is unsent and a part
    of it still waits to run (a rolled-back transaction drops them all)."""
    batch = getattr(connection, "_crm_event_batch", None)
    if batch is not None and not batch.sent and batch.parts:
        # The last part, looked for from the end (where it usually is: an automation
        # message writes thousands of events in one transaction), then any other.
        last = batch.parts[-1]
        if any(func is last for _sids, func, _robust in reversed(connection.run_on_commit)):
            return batch
        waiting = {id(func) for _sids, func, _robust in connection.run_on_commit}
        if any(id(part) in waiting for part in batch.parts):
            return batch
    batch = _Batch()
    connection._crm_event_batch = batch
    return batch


def _signal(events: list[Change]) -> None:
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


def _enqueue_pending(events: list[Change]) -> None:
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
    returns how many events are delivered now. A message's events are handled in one
    transaction (one receipt insert, one update); if that fails, one at a time, so a
    failing event holds back no other."""
    events = list(Change.objects.filter(pk__in=list(ids), delivered_at__isnull=True).order_by("pk"))
    if len(events) > 1:
        try:
            with transaction.atomic():
                _deliver_together(events)
        except Exception:
            log.warning("events %s failed together; one at a time", [e.pk for e in events[:10]])
        else:
            return len(events)
    return sum(1 for event in events if deliver_one(event))


def _deliver_together(events: list[Change]) -> None:
    """Every subscriber's work on the events, their receipts (inserted first: a second
    delivery running at the same time waits on their unique key and then fails over to
    one at a time, finding them handled) and `delivered_at`, in the caller's
    transaction."""
    handled = set(
        EventReceipt.objects.filter(event__in=events).values_list("event_id", "subscriber")
    )
    todo = [(e, s) for e in events for s in subscribers() if (e.pk, s.name) not in handled]
    EventReceipt.objects.bulk_create(EventReceipt(event=e, subscriber=s.name) for e, s in todo)
    with ExitStack() as stack:
        for subscriber in {s.name: s for _e, s in todo if s.batch}.values():
            stack.enter_context(subscriber.batch([e for e, s in todo if s is subscriber]))
        for event, subscriber in todo:
            if subscriber.wants is None or subscriber.wants(event):
                subscriber.handle(event)
    Change.objects.filter(pk__in=[e.pk for e in events], delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )


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
