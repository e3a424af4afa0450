"""Background work of crm: handing record events on (crm/events.py). Thin tasks."""

from celery import shared_task

from . import events


@shared_task(acks_late=True)
def deliver_events(ids: list[int]) -> int:
    return events.deliver(ids)


@shared_task
def sweep_events() -> int:
    return events.sweep()
