"""Background work of webhooks: thin tasks calling the services."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def send_deliveries(ids: list[int]) -> int:
    """Send the new (or resent) deliveries now; rows already taken are skipped."""
    return services.send(ids)


@shared_task
def sweep() -> int:
    """Every minute: retries that are due, deliveries never queued, claims a killed
    worker left, and pausing endpoints that have failed for a day."""
    return services.sweep()
