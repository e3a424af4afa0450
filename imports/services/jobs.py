"""Import jobs from upload to settings: the steps the pages, `manage.py import_records`
and the benchmarks share."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import File
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from accounts import access
from crm.fields import coerce

from ..models import DuplicateStrategy, ImportJob, ImportTemplate, OwnerMode
from ..readers import Table, read_table
from ..specs import import_spec, import_specs
from . import engine


def importable_types(user) -> list:
    """The specs of the record types `user` may import."""
    return [s for s in import_specs() if access.has_permission(user, s.record_type, "import")]


def may_import(user, record_type: str) -> bool:
    return any(s.record_type == record_type for s in importable_types(user))


@transaction.atomic
def create_job(
    *,
    file,
    name: str,
    record_type: str,
    by,
    sheet: str | None = None,
    header_row: int | None = None,
) -> tuple[ImportJob, Table]:
    """Store an uploaded file as a new job, read it (raising readers.UnreadableFile with
    the reason), and map its columns: by a template whose headers match, else by header."""
    if not may_import(by, record_type):
        raise PermissionDenied
    file.seek(0)
    table = read_table(file, name=name, sheet=sheet, header_row=header_row)
    file.seek(0)
    job = ImportJob(
        record_type=record_type,
        created_by=by,
        file_name=name[:255],
        file_size=getattr(file, "size", 0) or 0,
        file_format=table.format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        sheet=table.sheet,
        header_row=table.header_row,
        headers=table.headers,
        total_rows=len(table.rows),
    )
    job.file.save(name.replace("/", "_")[-100:], File(file), save=False)
    job.save()
    apply_mapping(job, table, by=by)
    return job, table


def templates_for(user, record_type: str):
    return ImportTemplate.objects.filter(record_type=record_type).filter(
        Q(owner__isnull=True) | Q(owner=user)
    )


def matching_template(user, record_type: str, headers: list[str]) -> ImportTemplate | None:
    """The template made for files with these headers: every non-empty header of the
    file is one the template knows (own templates first, then the most specific)."""
    keys = {coerce.match_key(str(h)) for h in headers if h}
    best = None
    for template in templates_for(user, record_type).order_by("owner", "-updated_at"):
        known = set(template.columns)
        fits = bool(keys) and keys <= known
        if fits and (best is None or len(known) < len(best.columns)):
            best = template
    return best


def apply_mapping(job: ImportJob, table: Table, *, by, template: ImportTemplate | None = None):
    """Map the job's columns: the given template, a matching one, or by header."""
    spec = import_spec(job.record_type)
    template = template or matching_template(by, job.record_type, table.headers)
    user = engine.principal_for(job)
    targets = engine.targets_for(spec, user)
    if template is not None:
        mapping = {}
        for index, header in enumerate(table.headers):
            name = template.columns.get(coerce.match_key(str(header)))
            if name and name in targets:
                mapping[index] = name
        options = template.options or {}
        job.template = template
        job.defaults = {k: v for k, v in (options.get("defaults") or {}).items() if k in targets}
        job.duplicate_keys = [k for k in options.get("duplicate_keys") or [] if k in targets]
        if options.get("duplicate_strategy") in DuplicateStrategy.values:
            job.duplicate_strategy = options["duplicate_strategy"]
        if options.get("owner_mode") in OwnerMode.values:
            job.owner_mode = options["owner_mode"]
    else:
        mapping = engine.auto_map(spec, table.headers, user)
        job.template = None
    job.mapping = {str(index): name for index, name in mapping.items()}
    if not job.duplicate_keys:
        keys = [k for k, _label in engine.duplicate_key_choices(spec, user)]
        # Match on the phone, else the first key the file has a column for.
        mapped = set(mapping.values())
        preferred = [k for k in ("phone", "mobile", "email") if k in mapped and k in keys]
        job.duplicate_keys = preferred[:1] or [k for k in keys if k in mapped][:1]
    job.save()
    return job


def save_template(job: ImportJob, *, name: str, shared: bool, by) -> ImportTemplate:
    """Keep the job's mapping and options for files with the same headers."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Give the template a name."))
    if len(name) > 100:
        raise ValidationError(_("The name is too long: at most 100 characters."))
    columns = {}
    for index, header in enumerate(job.headers):
        if header:
            columns[coerce.match_key(str(header))] = (job.mapping or {}).get(str(index), "")
    options: dict[str, Any] = {
        "defaults": job.defaults or {},
        "duplicate_keys": job.duplicate_keys or [],
        "duplicate_strategy": job.duplicate_strategy,
        "owner_mode": job.owner_mode,
    }
    owner = None if shared else by
    taken = ImportTemplate.objects.filter(
        record_type=job.record_type, owner=owner, name=name
    ).first()
    if taken is not None and owner is None and taken.created_by_id != by.pk and not by.is_superuser:
        raise ValidationError(_("A shared template of someone else has this name: choose another."))
    template, _created = ImportTemplate.objects.update_or_create(
        record_type=job.record_type,
        owner=owner,
        name=name,
        defaults={"columns": columns, "options": options, "created_by": by},
    )
    ImportJob.objects.filter(pk=job.pk).update(template=template)
    return template
