"""Background list exports: a list too long to write during the request becomes an
`ExportJob`, a worker writes its file, and who asked for it downloads it from the job's
page until the file's retention ends (services/retention.py deletes it).

The rows are the list's, rebuilt by the worker as the list view builds them (crm's
`export_queryset` over the list view named by the type's ExportSpec, with the stored
query string, as the job's creator, over what she may export); the columns are
`crm.exports.columns` for her, so data scope and field permissions are those of the
export in the request. The file is written in chunks to a temporary file and saved
through the job's FileField storage (settings.STORAGES["crm_files"]): the web and
worker processes share it, and the rows' output is never held in memory.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import access
from crm import exports
from crm.views.exports import (
    FilterErrors,
    export_queryset,
    list_view_for,
    standalone_request,
)

from ..models import ExportJob, ExportStatus
from .progress import Progress, measure

logger = logging.getLogger(__name__)


def start_export(*, user, record_type: str, fmt: str, query: str, title: str) -> ExportJob:
    """A queued job for `user`'s export of `record_type`'s list as `query` filters it;
    its task is sent once the job is committed."""
    from ..tasks import run_export

    job = ExportJob.objects.create(
        record_type=record_type,
        created_by=user,
        query=query,
        file_format=fmt,
        title=title[: ExportJob._meta.get_field("title").max_length],
    )
    transaction.on_commit(lambda: run_export.delay(job.pk))
    return job


class ExportFailed(Exception):
    """Why an export cannot be written, in words for who asked for it."""


# A running job whose worker gave no sign of life for this long died with it: the task,
# delivered again (it is acknowledged only once done), starts the file over.
STALLED_AFTER = timedelta(minutes=5)


def run_export(job_id: int) -> ExportJob | None:
    """Write the job's file, if this call is the one that claims it (queued -> running,
    or running but stalled: a task delivered twice writes once). Returns the finished
    job, or None when another run has it or it is gone."""
    now = timezone.now()
    claimable = Q(status=ExportStatus.QUEUED) | Q(
        status=ExportStatus.RUNNING, heartbeat_at__lt=now - STALLED_AFTER
    )
    claimed = ExportJob.objects.filter(claimable, pk=job_id).update(
        status=ExportStatus.RUNNING, started_at=now, heartbeat_at=now, rows_done=0, message=""
    )
    if not claimed:
        return None
    job = ExportJob.objects.select_related("created_by__role", "created_by__department").get(
        pk=job_id
    )
    user = job.created_by
    # Labels, texts and the messages in the language the user reads the pages in.
    with translation.override(user.language or settings.LANGUAGE_CODE):
        try:
            _write(job)
        except ExportFailed as exc:
            _finish(job, ExportStatus.FAILED, message=str(exc))
        except Exception:
            logger.exception("export job %s failed", job.pk)
            _finish(
                job,
                ExportStatus.FAILED,
                message=_("The export could not be written. Try again, or tell an administrator."),
            )
    job.refresh_from_db()
    return job


def _write(job: ExportJob) -> None:
    user, record_type = job.created_by, job.record_type
    if record_type not in exports.exportable_types():
        raise ExportFailed(_("This kind of record cannot be exported."))
    # Asked again at run time: a role changed since the request counts.
    if not access.has_permission(user, record_type, "export"):
        raise ExportFailed(_("You may no longer export these records."))
    request = standalone_request(user, job.query)
    try:
        queryset = export_queryset(list_view_for(record_type), request)
    except FilterErrors:
        raise ExportFailed(_("The list's filters are no longer valid: export it again.")) from None

    limit = settings.CRM_EXPORT_MAX_ROWS
    total = min(queryset.order_by()[: limit + 1].count(), limit)
    ExportJob.objects.filter(pk=job.pk).update(total_rows=total)

    def progress(rows: int) -> None:
        # Its own short UPDATE (autocommit): the job's page reads it while this runs.
        ExportJob.objects.filter(pk=job.pk).update(rows_done=rows, heartbeat_at=timezone.now())

    lookups = exports.Lookups()
    columns = exports.columns(user, record_type, lookups)
    extension, _content_type = exports.FORMATS[job.file_format]
    with tempfile.TemporaryFile() as out:
        written = exports.write_file(
            out,
            job.file_format,
            columns,
            exports.rows_of(queryset, limit=limit),
            title=job.title or record_type,
            limit=limit,
            progress=progress,
        )
        out.seek(0)
        job.file.save(f"export-{job.pk}.{extension}", File(out), save=False)
    message = ""
    if written.truncated:
        message = _(
            "The export holds only the first %(count)s rows. Narrow the filters to export the rest."
        ) % {"count": written.rows}
    _finish(
        job,
        ExportStatus.DONE,
        message=message,
        rows=written.rows,
        file=job.file.name,
        total_rows=written.rows,
    )
    logger.info(
        "background export %s %s %s: %s rows%s by user %s",
        job.pk,
        record_type,
        job.file_format,
        written.rows,
        " (cut off)" if written.truncated else "",
        user.pk,
    )


def _finish(job: ExportJob, status: str, *, message: str = "", rows: int | None = None, **fields):
    if rows is not None:
        fields["rows_done"] = rows
    ExportJob.objects.filter(pk=job.pk).update(
        status=status, message=message, finished_at=timezone.now(), **fields
    )


# --- what the pages show ------------------------------------------------------------


def jobs_for(user):
    """The exports `user` may see: her own; an admin (superuser) everyone's."""
    jobs = ExportJob.objects.select_related("created_by")
    return jobs if user.is_superuser else jobs.filter(created_by=user)


def is_active(job: ExportJob) -> bool:
    return job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)


def file_name(job: ExportJob) -> str:
    """The download's name: what and when ("Customers-2026-12-07.xlsx")."""
    extension, _content_type = exports.FORMATS.get(job.file_format, exports.FORMATS["csv"])
    day = timezone.localtime(job.created_at).date()
    return f"{job.title or job.record_type}-{day:%Y-%m-%d}.{extension}"


def progress_of(job: ExportJob) -> Progress:
    return measure(
        job.rows_done,
        job.total_rows,
        started_at=job.started_at,
        running=job.status == ExportStatus.RUNNING,
        finished=job.status == ExportStatus.DONE,
    )
