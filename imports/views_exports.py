"""Background exports' pages: the job (status, a progress bar polled while it runs, the
download when done), its file, and the list of one's recent exports.

A job and its file are seen only by who asked for it and by admins (imports.files.
may_read); to anyone else it does not exist (404). The hand-off from a list's export
(`hand_off`) is registered with crm.exports when ImportsConfig.ready() imports this
module.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from crm.exports import FORMATS, register_background_exporter
from crm.params import parse_id

from .files import may_read
from .models import ExportJob
from .services import exports as services

RECENT = 50  # exports listed


def hand_off(request, *, record_type: str, fmt: str, query: str, title: str):
    """crm's export view, for a list too long to write during the request: a job for a
    worker, and its page."""
    job = services.start_export(
        user=request.user, record_type=record_type, fmt=fmt, query=query, title=title
    )
    return redirect("imports:export_job", job.pk)


def _job_for(request, job_id) -> ExportJob:
    pk = parse_id(job_id)
    job = ExportJob.objects.select_related("created_by").filter(pk=pk).first() if pk else None
    if job is None or not may_read(request.user, job.created_by_id):
        raise Http404
    return job


def _context(job: ExportJob) -> dict:
    return {
        "job": job,
        "active": services.is_active(job),
        "progress": services.progress_of(job),
        "download_name": services.file_name(job),
    }


@login_required
@require_GET
def export_list(request):
    jobs = list(services.jobs_for(request.user)[:RECENT])
    return render(
        request,
        "imports/exports/list.html",
        {"jobs": jobs, "everyone": request.user.is_superuser},
    )


@login_required
@require_GET
def export_job(request, job_id):
    return render(request, "imports/exports/job.html", _context(_job_for(request, job_id)))


@login_required
@require_GET
def export_progress(request, job_id):
    """The job's status card, polled every second while the job is queued or running;
    the card of a finished job polls no more."""
    return render(
        request, "imports/exports/partials/progress.html", _context(_job_for(request, job_id))
    )


@login_required
@require_GET
def export_download(request, job_id):
    job = _job_for(request, job_id)
    if not job.file:
        raise Http404
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    _extension, content_type = FORMATS.get(job.file_format, FORMATS["csv"])
    return FileResponse(
        handle,
        as_attachment=True,
        filename=services.file_name(job),
        content_type=content_type,
    )


register_background_exporter(hand_off)
