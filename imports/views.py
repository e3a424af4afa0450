"""The import pages: upload → map → preview → run (progress) → result → undo, and the
history of imports. Thin: the steps are services (imports/services/)."""

from __future__ import annotations

import logging
import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.params import page_param, parse_id

from .files import may_read
from .forms import MappingForm, UploadForm
from .models import ImportJob, ImportStatus, ImportTemplate
from .readers import UnreadableFile
from .services import engine, jobs, previews, runner, undo
from .services.progress import measure
from .specs import import_spec

logger = logging.getLogger(__name__)


def _job_for(request, job_id) -> ImportJob:
    """The job, for who made it and admins; anyone else gets a 404."""
    pk = parse_id(job_id)
    job = ImportJob.objects.select_related("created_by", "template").filter(pk=pk).first()
    if job is None or not may_read(request.user, job.created_by_id):
        raise Http404
    return job


def _history(request):
    jobs_qs = ImportJob.objects.select_related("created_by", "template")
    if not request.user.is_superuser:
        jobs_qs = jobs_qs.filter(created_by=request.user)
    return Paginator(jobs_qs, 20).get_page(page_param(request.GET))


@login_required
def index(request):
    types = jobs.importable_types(request.user)
    form = None
    if types:
        if request.method == "POST":
            form = UploadForm(request.POST, request.FILES, user=request.user)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    job, _table = jobs.create_job(
                        file=upload,
                        name=upload.name,
                        record_type=form.cleaned_data["record_type"],
                        by=request.user,
                    )
                except UnreadableFile as exc:
                    form.add_error("file", str(exc))
                else:
                    return redirect("imports:job", job.pk)
        else:
            initial = {}
            wanted = request.GET.get("type")
            if any(spec.record_type == wanted for spec in types):
                initial["record_type"] = wanted
            form = UploadForm(user=request.user, initial=initial)
    elif request.method == "POST":
        raise PermissionDenied
    return render(
        request,
        "imports/index.html",
        {"form": form, "page": _history(request), "types": types},
    )


def _table_or_message(request, job):
    try:
        return engine.read_job_table(job)
    except (UnreadableFile, FileNotFoundError, OSError) as exc:
        messages.error(
            request,
            str(exc)
            if isinstance(exc, UnreadableFile)
            else _("The uploaded file is no longer kept."),
        )
        return None


@login_required
def job_page(request, job_id):
    job = _job_for(request, job_id)
    if job.status != ImportStatus.DRAFT:
        return _status_page(request, job)
    if not jobs.may_import(request.user, job.record_type):
        raise PermissionDenied
    table = _table_or_message(request, job)
    if table is None:
        return redirect("imports:index")
    if request.method == "POST" and "reread" in request.POST:
        return _reread(request, job)
    form = MappingForm(request.POST or None, job=job, table=table, user=request.user)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            name = form.cleaned_data.get("template_name", "").strip()
            if name:
                try:
                    jobs.save_template(
                        job, name=name, shared=form.cleaned_data["template_shared"], by=request.user
                    )
                    messages.success(
                        request, _("The mapping was saved as “%(name)s”.") % {"name": name}
                    )
                except ValidationError as exc:
                    form.add_error("template_name", exc)
        if form.is_valid():
            return redirect("imports:preview", job.pk)
    return render(
        request,
        "imports/mapping.html",
        {
            "job": job,
            "table": table,
            "form": form,
            "spec": import_spec(job.record_type),
            "templates": jobs.templates_for(request.user, job.record_type),
        },
    )


def _reread(request, job):
    """Another sheet or header row: read the file again and map it afresh."""
    sheet = request.POST.get("sheet", "")[:100]
    header_row = request.POST.get("header_row", "")
    number = parse_id(header_row) if header_row.strip() else None
    if number is not None and number > 1000:
        number = None
    job.sheet, job.header_row = sheet, number or 0
    try:
        table = engine.read_job_table(job)
    except UnreadableFile as exc:
        messages.error(request, str(exc))
        return redirect("imports:job", job.pk)
    job.sheet, job.header_row, job.headers = table.sheet, table.header_row, table.headers
    job.total_rows = len(table.rows)
    job.mapping = {}
    job.save()
    template = None
    template_id = parse_id(request.POST.get("template") or None)
    if template_id:
        template = jobs.templates_for(request.user, job.record_type).filter(pk=template_id).first()
    jobs.apply_mapping(job, table, by=request.user, template=template)
    return redirect("imports:job", job.pk)


@login_required
def preview(request, job_id):
    """The dry run's result; for a big file, planned in the background first."""
    job = _job_for(request, job_id)
    if job.status != ImportStatus.DRAFT:
        return redirect("imports:job", job.pk)
    if not jobs.may_import(request.user, job.record_type):
        raise PermissionDenied
    stored = previews.current(job)
    if stored is None or (stored.get("state") == previews.RUNNING and previews.inline(job)):
        if previews.inline(job):
            if _table_or_message(request, job) is None:
                return redirect("imports:index")
            stored = previews.compute(job)
        else:
            previews.request(job, language=translation.get_language() or "")
            stored = job.preview
    context = {"job": job, "spec": import_spec(job.record_type)}
    if stored.get("state") != previews.READY:
        response = render(request, "imports/preview_waiting.html", context)
        if request.htmx:
            response = render(request, "imports/partials/preview_waiting.html", context)
        return response
    if request.htmx:
        # The background preview is ready: the whole page shows it.
        response = render(request, "imports/partials/preview_waiting.html", context)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "imports/preview.html", {**context, "summary": stored["summary"]})


@login_required
@require_POST
def start(request, job_id):
    job = _job_for(request, job_id)
    if not jobs.may_import(request.user, job.record_type):
        raise PermissionDenied
    if job.status == ImportStatus.DRAFT:
        runner.queue(job)
    return redirect("imports:job", job.pk)


def _status_page(request, job):
    errors = job.row_errors.all()[:100]
    return render(
        request,
        "imports/job.html",
        {
            "job": job,
            "spec": import_spec(job.record_type),
            "progress": _progress(job),
            "errors": errors,
            "may_undo": undo.may_undo(job, request.user),
        },
    )


def _progress(job: ImportJob):
    return measure(
        runner.rows_done(job),
        job.total_rows or 0,
        started_at=job.started_at,
        running=job.status == ImportStatus.RUNNING,
        finished=job.status == ImportStatus.DONE,
    )


@login_required
def progress(request, job_id):
    job = _job_for(request, job_id)
    response = render(
        request, "imports/partials/progress.html", {"job": job, "progress": _progress(job)}
    )
    if not job.is_active and request.htmx:
        # Finished: the whole page shows the result.
        response["HX-Refresh"] = "true"
    return response


@login_required
def undo_page(request, job_id):
    job = _job_for(request, job_id)
    if job.status in (ImportStatus.UNDOING, ImportStatus.UNDONE):
        return redirect("imports:job", job.pk)  # asked for already
    if not undo.may_undo(job, request.user):
        raise PermissionDenied
    if request.method == "POST":
        force = request.POST.get("force") == "1"
        if undo.request_undo(job, by=request.user, force=force):
            messages.info(request, _("The import is being undone."))
        else:
            messages.error(request, _("This import cannot be undone now."))
        return redirect("imports:job", job.pk)
    plan = undo.plan_undo(job)
    return render(
        request,
        "imports/undo.html",
        {"job": job, "plan": plan, "conflicts": undo.describe(plan.conflicts[:200])},
    )


def _download(stored, filename: str):
    if not stored:
        raise Http404
    try:
        handle = stored.storage.open(stored.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)


@login_required
def download_file(request, job_id):
    job = _job_for(request, job_id)
    return _download(job.file, job.file_name)


@login_required
def download_errors(request, job_id):
    job = _job_for(request, job_id)
    stem = job.file_name.rsplit(".", 1)[0]
    return _download(job.error_report, f"{stem}-{_('errors')}.{job.file_format}")


@login_required
@require_POST
def delete_template(request, template_id):
    template = ImportTemplate.objects.filter(pk=parse_id(template_id)).first()
    allowed = template is not None and (
        request.user.is_superuser
        or template.owner_id == request.user.pk
        or template.created_by_id == request.user.pk
    )
    if not allowed:
        raise Http404
    template.delete()
    messages.success(request, _("The template “%(name)s” was deleted.") % {"name": template.name})
    return redirect("imports:index")
