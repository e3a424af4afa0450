"""Background work of imports and exports: thin Celery tasks calling the services."""

from __future__ import annotations

from celery import shared_task


@shared_task
def delete_expired_files() -> int:
    from .services.retention import delete_expired_files as delete

    return delete()


@shared_task
def resume_stalled() -> int:
    return 0
