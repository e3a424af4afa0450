"""Import jobs, their mapping templates, and background export jobs.

An `ImportJob` is one uploaded file on its way in: how it was read (format, encoding,
sheet, header row), how its columns map to fields, what to do with duplicates and
owners, and — once run — its counts, progress and error report. The records it wrote
are not listed here: each write is a record event (crm.models.Change) whose actor is the
import (`actor_type="import"`, `actor_id=job.pk`), so its history, its undo and its
subscribers all read the same rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .files import private_storage

USER = settings.AUTH_USER_MODEL


class ImportStatus(models.TextChoices):
    DRAFT = "draft", _("Not started")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    UNDOING = "undoing", _("Undoing")
    UNDONE = "undone", _("Undone")


class DuplicateStrategy(models.TextChoices):
    SKIP = "skip", _("Skip the row")
    UPDATE = "update", _("Update the existing record")
    CREATE = "create", _("Create a new record anyway")


class OwnerMode(models.TextChoices):
    IMPORTER = "importer", _("Me")
    FIXED = "fixed", _("A chosen person")
    COLUMN = "column", _("From a column")
    ROUND_ROBIN = "round_robin", _("In turn, over a department's people")
    NONE = "none", _("Nobody (the public pool)")


class FileFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (.xlsx)"


def _upload_path(instance, filename: str) -> str:
    return f"imports/{timezone.now():%Y/%m}/{filename}"


def _report_path(instance, filename: str) -> str:
    return f"imports/reports/{timezone.now():%Y/%m}/{filename}"


def _export_path(instance, filename: str) -> str:
    return f"exports/{timezone.now():%Y/%m}/{filename}"


def _retention() -> timedelta:
    return timedelta(days=settings.CRM_FILE_RETENTION_DAYS)


class ImportTemplate(models.Model):
    """A saved column mapping for a record type, applied when a file's headers match:
    shared with everyone who imports the type, or the owner's own."""

    name = models.CharField(_("name"), max_length=100)
    record_type = models.CharField(_("record type"), max_length=20)
    # None: shared; else only this person sees and applies it.
    owner = models.ForeignKey(
        USER,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    # {header as folded by crm.fields.coerce.match_key: field name}; ignored columns
    # map to "".
    columns = models.JSONField(_("columns"), default=dict)
    # The rest of an import's settings ({"defaults": {...}, "duplicates": {...}, ...}).
    options = models.JSONField(_("options"), default=dict, blank=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("import template")
        verbose_name_plural = _("import templates")
        ordering = ["record_type", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["record_type", "owner", "name"],
                name="import_template_unique_name",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    record_type = models.CharField(_("record type"), max_length=20)
    created_by = models.ForeignKey(
        USER, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)

    # The file and how it is read.
    file = models.FileField(_("file"), storage=private_storage, upload_to=_upload_path)
    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.PositiveBigIntegerField(_("size"), default=0)
    file_format = models.CharField(_("format"), max_length=10, choices=FileFormat.choices)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=2, blank=True)
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    # 1-based row of the headers in the file (rows above it are titles).
    header_row = models.PositiveIntegerField(_("header row"), default=1)
    headers = models.JSONField(_("headers"), default=list, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)

    # What goes where: {column index as text: field name} (unmapped columns absent),
    # defaults {field name: raw value} for the fields no column gives.
    mapping = models.JSONField(_("mapping"), default=dict, blank=True)
    defaults = models.JSONField(_("defaults"), default=dict, blank=True)
    template = models.ForeignKey(
        ImportTemplate,
        verbose_name=_("template"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owner_mode = models.CharField(
        _("owner"), max_length=20, choices=OwnerMode.choices, default=OwnerMode.IMPORTER
    )
    owner = models.ForeignKey(
        USER,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owner_department = models.ForeignKey(
        "accounts.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    duplicate_keys = models.JSONField(_("match duplicates on"), default=list, blank=True)
    duplicate_strategy = models.CharField(
        _("duplicates"),
        max_length=10,
        choices=DuplicateStrategy.choices,
        default=DuplicateStrategy.SKIP,
    )
    all_or_nothing = models.BooleanField(_("all or nothing"), default=False)
    create_missing_items = models.BooleanField(_("create missing dictionary items"), default=False)
    run_automation = models.BooleanField(_("run automation rules"), default=False)
    # The importer's language when the import was started: its messages and report.
    language = models.CharField(max_length=10, blank=True)
    # The preview's summary for the settings it was made with (imports/services/previews.py).
    preview = models.JSONField(default=dict, blank=True)

    # The run.
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.DRAFT
    )
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The worker's last sign of life: a running job whose heartbeat stopped is resumed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Rows handled so far, counted in the same transaction as their writes, so a killed
    # worker's job resumes after the last committed batch, never half-counted.
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    message = models.TextField(_("message"), blank=True)
    error_report = models.FileField(
        _("error report"), storage=private_storage, upload_to=_report_path, blank=True
    )

    # Undo.
    undone_at = models.DateTimeField(_("undone"), null=True, blank=True)
    undone_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    undo_summary = models.JSONField(default=dict, blank=True)

    expires_at = models.DateTimeField(_("file kept until"), null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="import_job_by"),
            models.Index(fields=["status"], name="import_job_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.file_name}"

    def save(self, *args, **kwargs):
        if self.expires_at is None:
            self.expires_at = (self.created_at or timezone.now()) + _retention()
        super().save(*args, **kwargs)

    @property
    def type_label(self) -> str:
        from .specs import import_spec

        try:
            return import_spec(self.record_type).label
        except LookupError:
            return self.record_type

    @property
    def is_active(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.UNDOING)

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def seconds(self) -> float | None:
        """The run's duration in seconds, to a tenth (what the pages show)."""
        return round(self.duration.total_seconds(), 1) if self.duration else None


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ExportJob(models.Model):
    """A list export too big to write during the request: written by a worker, kept
    for download by who asked for it until `expires_at`."""

    record_type = models.CharField(_("record type"), max_length=20)
    created_by = models.ForeignKey(
        USER, verbose_name=_("by"), on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"), default=timezone.now)
    # The list's query string (its filters, search and sort) as the user had it.
    query = models.TextField(_("filters"), blank=True)
    file_format = models.CharField(_("format"), max_length=10, choices=FileFormat.choices)
    title = models.CharField(_("title"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    file = models.FileField(_("file"), storage=private_storage, upload_to=_export_path, blank=True)
    message = models.TextField(_("message"), blank=True)
    expires_at = models.DateTimeField(_("kept until"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="export_job_by")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title or self.record_type}"

    def save(self, *args, **kwargs):
        if self.expires_at is None:
            self.expires_at = (self.created_at or timezone.now()) + _retention()
        super().save(*args, **kwargs)


class ImportRowError(models.Model):
    """A row of the file that was not imported, and why: written with its batch, read for
    the result page and the error report."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_index = models.PositiveIntegerField()  # among the table's data rows
    row_number = models.PositiveIntegerField(_("row"))  # in the file
    message = models.TextField(_("error"))

    class Meta:
        verbose_name = _("row error")
        verbose_name_plural = _("row errors")
        ordering = ["job", "row_index"]
        indexes = [models.Index(fields=["job", "row_index"], name="import_row_error_job")]

    def __str__(self) -> str:
        return f"{self.row_number}: {self.message}"
