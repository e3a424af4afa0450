"""Running an import: queue it, let one worker claim it, write it batch by batch, resume
it after a killed worker, and finish with its counts and error report.

A batch's records, its row errors and the job's counters are committed together: the
job's `rows_done` is always the number of rows whose outcome is stored, so a job whose
worker died (its heartbeat stops) is claimed again by the beat task `resume_stalled`
and goes on after its last batch. "All or nothing" writes every batch in one
transaction: a killed worker leaves nothing, and the job starts over.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import ImportJob, ImportRowError, ImportStatus
from ..readers import write_error_report
from . import engine, writers
from .engine import Action, Row

logger = logging.getLogger(__name__)


def stalled_after() -> timedelta:
    """A running job whose heartbeat is older than this lost its worker."""
    return timedelta(seconds=settings.CRM_IMPORT_STALLED_AFTER)


# Claims of one job before it is failed for good.
MAX_ATTEMPTS = 3


class RolledBack(Exception):
    """An all-or-nothing import met a row the services refused: nothing stays."""


def progress_key(job_id: int) -> str:
    return f"imports:progress:{job_id}"


def rows_done(job: ImportJob) -> int:
    """Rows handled so far: the committed count, or further for an all-or-nothing run
    whose batches are not committed yet."""
    live = cache.get(progress_key(job.pk)) or 0
    return max(job.rows_done, live) if job.status == ImportStatus.RUNNING else job.rows_done


def queue(job: ImportJob, *, enqueue: bool = True, language: str = "") -> bool:
    """Hand a job that was previewed to a worker (once: a second press does nothing).
    `enqueue=False`: the caller runs it itself (`manage.py import_records`)."""
    from .. import tasks

    queued = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DRAFT).update(
        status=ImportStatus.QUEUED,
        language=language or translation.get_language() or "",
        heartbeat_at=timezone.now(),
    )
    if queued and enqueue:
        transaction.on_commit(lambda: tasks.run_import.delay(job.pk))
    job.refresh_from_db()
    return bool(queued)


def claim(job_id: int) -> ImportJob | None:
    """Take a queued job, or a running one whose worker stopped; None if another worker
    has it (or it is finished)."""
    now = timezone.now()
    if _beating(job_id, now):
        return None  # an all-or-nothing run is alive inside its transaction
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(status=ImportStatus.QUEUED)
            | Q(status=ImportStatus.RUNNING, heartbeat_at__lt=now - stalled_after())
        )
        .update(
            status=ImportStatus.RUNNING,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            started_at=Coalesce("started_at", now),
        )
    )
    return ImportJob.objects.select_related("created_by").get(pk=job_id) if claimed else None


def stalled_jobs() -> list[int]:
    now = timezone.now()
    # Running without a sign of life, or queued and never taken (a lost message).
    running = ImportJob.objects.filter(
        status__in=(ImportStatus.RUNNING, ImportStatus.QUEUED),
        heartbeat_at__lt=now - stalled_after(),
    ).values_list("pk", flat=True)
    return [pk for pk in running if not _beating(pk, now)]


def stalled_undos() -> list[int]:
    """Undos asked for longer ago than the stall time and not finished: their worker died
    (its transaction took nothing with it) or their message was lost."""
    return list(
        ImportJob.objects.filter(
            status=ImportStatus.UNDOING, heartbeat_at__lt=timezone.now() - stalled_after()
        ).values_list("pk", flat=True)
    )


def _beating(job_id: int, now) -> bool:
    beat = cache.get(f"imports:beat:{job_id}")
    return bool(beat) and now - datetime.fromisoformat(beat) < stalled_after()


def run(job_id: int) -> ImportJob | None:
    """Claim and run a job (the Celery task and `manage.py import_records` call this)."""
    job = claim(job_id)
    if job is None:
        return None
    language = job.language or job.created_by.language or settings.LANGUAGE_CODE
    with translation.override(language):
        if job.attempts > MAX_ATTEMPTS:
            _fail(job, _("The import was interrupted too often and was stopped."))
            return job
        try:
            _run(job)
        except Exception:
            logger.exception("import %s failed", job.pk)
            _fail(
                job,
                _("The import stopped on an unexpected error after %(rows)d rows.")
                % {"rows": job.rows_done},
            )
    job.refresh_from_db()
    return job


def _batches(rows: list[Row], start: int):
    size = settings.CRM_IMPORT_BATCH_SIZE
    for offset in range(start, len(rows), size):
        yield rows[offset : offset + size]


def _run(job: ImportJob) -> None:
    result = engine.plan(job)
    if result.problems:
        _fail(job, "\n".join(result.problems))
        return
    if result.new_items:
        with transaction.atomic():
            engine.create_missing_items(result)
        result = engine.plan(job)
    rows = result.rows
    ImportJob.objects.filter(pk=job.pk).update(total_rows=len(rows))
    by = engine.principal_for(job)
    if job.all_or_nothing:
        bad = [row for row in rows if row.action == Action.ERROR]
        if bad:
            _store_all_errors(job, [(row, "; ".join(row.errors)) for row in bad])
            _fail(
                job,
                _("%(count)d rows have errors, so nothing was imported (all or nothing).")
                % {"count": len(bad)},
                report=True,
            )
            return
        try:
            with transaction.atomic():
                counts: Counter = Counter()
                done = 0
                for batch in _batches(rows, 0):
                    batch_counts, errors = _write(job, result, batch, by)
                    if errors:
                        raise RolledBack(errors)
                    counts += batch_counts
                    done += len(batch)
                    cache.set(progress_key(job.pk), done, 3600)
                    _beat(job)
                _advance(job, len(rows), counts)
        except RolledBack as refused:
            _store_all_errors(job, refused.args[0])
            _fail(
                job,
                _("%(count)d rows were refused, so nothing was imported (all or nothing).")
                % {"count": len(refused.args[0])},
                report=True,
            )
            return
    else:
        for batch in _batches(rows, job.rows_done):
            with transaction.atomic():
                counts, errors = _write(job, result, batch, by)
                _store_errors(job, errors)
                if not _advance(job, len(batch), counts):
                    raise RuntimeError("the job was taken over by another worker")
            cache.set(progress_key(job.pk), job.rows_done + len(batch), 3600)
            job.rows_done += len(batch)
    _finish(job)


def _write(job: ImportJob, result: engine.Plan, batch: list[Row], by) -> tuple[Counter, list]:
    counts: Counter = Counter()
    errors: list[tuple[Row, str]] = []
    record_type = job.record_type
    for row in batch:
        if row.action in (Action.CREATE, Action.UPDATE):
            row.record = engine.build_record(result, row)
    creates = [row for row in batch if row.action == Action.CREATE]
    if creates and result.spec.bulk_create:
        outcomes = writers.bulk_create_customers(creates, by)
    else:
        outcomes = [writers.write_row(record_type, row, by) for row in creates]
    for row, error in zip(creates, outcomes, strict=True):
        if error:
            errors.append((row, error))
        else:
            counts["created"] += 1
    for row in batch:
        if row.action == Action.UPDATE:
            error = writers.write_row(record_type, row, by)
            if error:
                errors.append((row, error))
            else:
                counts["updated"] += 1
        elif row.action == Action.SKIP:
            counts["skipped"] += 1
        elif row.action == Action.ERROR:
            errors.append((row, "; ".join(row.errors)))
    counts["errors"] = len(errors)
    for row in batch:
        row.record = None
    return counts, errors


def _store_all_errors(job: ImportJob, errors: list[tuple[Row, str]]) -> None:
    """An all-or-nothing import's refused rows: the job's only outcome."""
    _store_errors(job, errors)
    ImportJob.objects.filter(pk=job.pk).update(error_count=len(errors))


def _store_errors(job: ImportJob, errors: list[tuple[Row, str]]) -> None:
    ImportRowError.objects.bulk_create(
        ImportRowError(job=job, row_index=row.index, row_number=row.number, message=message)
        for row, message in errors
    )


def _advance(job: ImportJob, rows: int, counts: Counter) -> bool:
    return bool(
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
            rows_done=F("rows_done") + rows,
            created_count=F("created_count") + counts["created"],
            updated_count=F("updated_count") + counts["updated"],
            skipped_count=F("skipped_count") + counts["skipped"],
            error_count=F("error_count") + counts["errors"],
            heartbeat_at=timezone.now(),
        )
    )


def _beat(job: ImportJob) -> None:
    """A sign of life from inside a long transaction (its own connection's write would
    wait for the transaction; the cache does not)."""
    cache.set(f"imports:beat:{job.pk}", timezone.now().isoformat(), 3600)


def _finish(job: ImportJob) -> None:
    job.refresh_from_db()
    if job.error_count:
        _write_report(job)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.DONE, finished_at=timezone.now(), heartbeat_at=None
    )
    cache.delete(progress_key(job.pk))


def _fail(job: ImportJob, message: str, *, report: bool = False) -> None:
    if report:
        _write_report(job)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.FAILED, finished_at=timezone.now(), message=message, heartbeat_at=None
    )
    cache.delete(progress_key(job.pk))


def _write_report(job: ImportJob) -> None:
    """The rows not imported, as uploaded, with an error column: fix and upload again."""
    table = engine.read_job_table(job)
    errors = job.row_errors.order_by("row_index").values_list("row_index", "row_number", "message")
    rows = [(number, table.rows[index], message) for index, number, message in errors]
    data = write_error_report(table, rows, error_header=_("Error"))
    stem = job.file_name.rsplit(".", 1)[0][:80]
    name = f"{stem}-{_('errors')}.{job.file_format}"
    job.error_report.save(name, ContentFile(data), save=False)
    ImportJob.objects.filter(pk=job.pk).update(error_report=job.error_report.name)
