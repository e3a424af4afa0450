"""An import run by a real Celery worker: killed mid-import, it leaves a job whose counts
match what is stored, and a second worker finishes it without a duplicate."""

from __future__ import annotations

import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from crm.models import Customer
from imports import tasks
from imports.models import ImportJob, ImportStatus
from imports.services import jobs, runner

from .factories import UserFactory
from .test_background import celery_worker, wait_for

ROWS = 5000


def upload() -> SimpleUploadedFile:
    lines = ["客户名称,手机"] + [f"客户{i:05d},139{i:08d}" for i in range(ROWS)]
    data = "\n".join(lines).encode("utf-8-sig")
    return SimpleUploadedFile("big.csv", data)


@pytest.mark.worker
def test_a_killed_worker_leaves_a_resumable_job_never_half_counted(transactional_db, tmp_path):
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    file = upload()
    job, _table = jobs.create_job(file=file, name=file.name, record_type="customer", by=admin)
    job.duplicate_keys = ["phone"]
    job.save()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with celery_worker(tmp_path / "a", CRM_IMPORT_BATCH_SIZE="20") as first:
        assert runner.queue(job)  # on commit: at once (no transaction here)
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).rows_done >= 100,
            what="the first worker to write some batches",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING, "the job finished before the worker was killed"
    assert 0 < job.rows_done < ROWS and job.rows_done % 20 == 0
    # Never half-counted: what the job says it created is exactly what is stored.
    assert Customer.objects.count() == job.created_count == job.rows_done

    with (
        override_settings(CRM_IMPORT_STALLED_AFTER=0),
        celery_worker(tmp_path / "b", CRM_IMPORT_STALLED_AFTER="0") as _second,
    ):
        assert tasks.resume_stalled() == 1
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).status == ImportStatus.DONE,
            timeout=120,
            what="the second worker to finish the import",
        )
    job.refresh_from_db()
    assert job.created_count == ROWS == Customer.objects.count()
    assert Customer.objects.values("phone").distinct().count() == ROWS
    assert job.attempts == 2
