"""Background work of automation: thin tasks calling the engine."""

from celery import shared_task

from . import engine, notifications


@shared_task(acks_late=True)
def run_scheduled(ids: list[int]) -> int:
    """Run scheduled rows now (queued when a row is made outside a worker)."""
    return sum(1 for pk in ids if engine.run_scheduled(pk) is not None)


@shared_task
def tick() -> dict:
    """Every minute: fire time triggers, run what is due (delays, retries, rows a dead
    worker left)."""
    return engine.tick()


@shared_task
def send_digests() -> int:
    return notifications.send_digests()
