"""Background work of imports and exports: thin Celery tasks calling the services."""

from __future__ import annotations

from celery import shared_task


@shared_task
def run_import(job_id: int) -> None:
    from .services import runner

    runner.run(job_id)


@shared_task
def preview_import(job_id: int) -> None:
    from .services import previews

    previews.run(job_id)


@shared_task
def undo_import(job_id: int) -> None:
    from .services import undo

    undo.run_undo(job_id)


@shared_task
def resume_stalled() -> int:
    """Jobs whose worker died go on after their last committed batch; undos whose worker
    died (nothing of them was kept) are sent again."""
    from .services import runner

    stalled = runner.stalled_jobs()
    for job_id in stalled:
        run_import.delay(job_id)
    undos = runner.stalled_undos()
    for job_id in undos:
        undo_import.delay(job_id)
    return len(stalled) + len(undos)


@shared_task
def delete_expired_files() -> int:
    from .services.retention import delete_expired_files as delete

    return delete()


@shared_task
def run_export(job_id: int) -> None:
    """Write a background list export's file (imports/services/exports.py)."""
    from .services.exports import run_export as run

    run(job_id)
