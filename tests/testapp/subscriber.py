"""A background subscriber for the record-event tests: it writes what it handled.

Registered by the tests in their own process (a fixture) and, in a worker process they
start, from TestAppConfig.ready() when CRM_TEST_EVENT_SUBSCRIBER is set."""

import os

from crm import events

NAME = "tests.record-log"
# A test sets this to make the next handlings fail (a subscriber that crashes).
FAILURES = {"left": 0}


def handle(event) -> None:
    from .models import HandledEvent

    HandledEvent.objects.create(
        event_id=event.pk, kind=event.kind, fields=event.fields, pid=os.getpid()
    )
    if FAILURES["left"]:
        FAILURES["left"] -= 1
        raise RuntimeError("the subscriber failed")


SUBSCRIBER = events.Subscriber(name=NAME, handle=handle)
