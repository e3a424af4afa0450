"""The preview of an import: its plan (engine.plan, a true dry run) summed up as the page
shows it — counts, the first rows as they will be stored, the rows that will not go in.

A file of a few thousand rows is planned while the page loads; a bigger one in the
background (`request`), the page showing its progress and then the stored summary. The
summary is kept with the job for the settings it was made with (`key`): changing the
mapping or an option makes it stale.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from ..models import ImportJob
from . import engine

READY = "ready"
RUNNING = "running"
# Rows of the problem list the page shows (the error report has them all).
PROBLEM_ROWS = 200


def key_of(job: ImportJob) -> str:
    """The settings a preview depends on."""
    data = [
        job.mapping,
        job.defaults,
        job.owner_mode,
        job.owner_id,
        job.owner_department_id,
        job.duplicate_keys,
        job.duplicate_strategy,
        job.all_or_nothing,
        job.create_missing_items,
        job.sheet,
        job.header_row,
    ]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def inline(job: ImportJob) -> bool:
    return job.total_rows <= settings.CRM_IMPORT_PREVIEW_INLINE_ROWS


def summarize(job: ImportJob, result: engine.Plan) -> dict[str, Any]:
    """What the preview page shows, as JSON."""
    spec = result.spec
    columns = [
        result.targets[name]
        for name in dict.fromkeys(result.mapping.values())
        if name in result.targets
    ]
    owner_field = spec.owner_field
    rows = []
    for row in result.rows[: engine.PREVIEW_ROWS]:
        cells = []
        for target in columns:
            if row.pending and target.name in row.pending:
                cells.append(_("%(label)s (new option)") % {"label": row.pending[target.name]})
            else:
                value = row.values.get(target.name)
                cells.append(engine.shown(job.record_type, target.name, value))
        owner = ""
        if owner_field and row.action in (engine.Action.CREATE, engine.Action.UPDATE):
            owner = engine.shown(job.record_type, owner_field, row.values.get(owner_field))
        rows.append({"number": row.number, "action": row.action, "cells": cells, "owner": owner})
    problems = [r for r in result.rows if r.action in (engine.Action.ERROR, engine.Action.SKIP)]
    counts = result.counts
    return {
        "problems": list(result.problems),
        "counts": {name: counts.get(name, 0) for name in ("create", "update", "skip", "error")},
        "new_items": [sorted(labels) for labels in result.new_items.values()],
        "columns": [str(t.label) for t in columns],
        "owner_label": str(spec.model._meta.get_field(owner_field).verbose_name)
        if owner_field
        else "",
        "rows": rows,
        "problem_rows": [
            {
                "number": r.number,
                "action": r.action,
                "why": "; ".join(r.errors) if r.errors else r.note,
            }
            for r in problems[:PROBLEM_ROWS]
        ],
        "problem_count": len(problems),
    }


def current(job: ImportJob) -> dict[str, Any] | None:
    """The stored preview if it was made with the job's present settings."""
    stored = job.preview or {}
    return stored if stored.get("key") == key_of(job) else None


def compute(job: ImportJob) -> dict[str, Any]:
    """Plan the job now and keep the summary with it."""
    summary = summarize(job, engine.plan(job))
    job.preview = {"key": key_of(job), "state": READY, "summary": summary}
    ImportJob.objects.filter(pk=job.pk).update(preview=job.preview)
    return job.preview


def request(job: ImportJob, *, language: str) -> None:
    """Plan a big file in the background (once per settings)."""
    from .. import tasks

    job.preview = {"key": key_of(job), "state": RUNNING}
    ImportJob.objects.filter(pk=job.pk).update(preview=job.preview, language=language)
    transaction.on_commit(lambda: tasks.preview_import.delay(job.pk))


def run(job_id: int) -> None:
    """The background preview (imports.tasks.preview_import)."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or not job.preview or job.preview.get("state") != RUNNING:
        return
    key = job.preview.get("key")
    with translation.override(job.language or job.created_by.language or settings.LANGUAGE_CODE):
        if key != key_of(job):
            return  # the settings changed meanwhile: the page asks again
        compute(job)
