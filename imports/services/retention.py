"""Files are kept for settings.CRM_FILE_RETENTION_DAYS, then deleted (the job rows stay,
with their counts, so the history of imports and exports is complete)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from ..models import ExportJob, ImportJob


def delete_expired_files(*, now=None) -> int:
    """Delete the files of jobs past their `expires_at`; returns how many were deleted."""
    now = now or timezone.now()
    deleted = 0
    for model, names in ((ImportJob, ("file", "error_report")), (ExportJob, ("file",))):
        holding = Q()
        for name in names:
            holding |= ~Q(**{name: ""})
        for job in model.objects.filter(holding, expires_at__lte=now).iterator():
            for name in names:
                stored = getattr(job, name)
                if stored:
                    stored.storage.delete(stored.name)
                    deleted += 1
            model.objects.filter(pk=job.pk).update(**dict.fromkeys(names, ""))
    return deleted
