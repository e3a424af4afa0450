"""Where uploads, error reports and export files live: Django's storage named
"crm_files" (settings.STORAGES), a directory the web and worker processes share (a
named volume in docker-compose); an S3-compatible store replaces it by settings alone.

Files are served only through the views of this app, to who made them and to admins
(`may_read`), never from a public URL, and a periodic task deletes them after
settings.CRM_FILE_RETENTION_DAYS (`delete_expired_files`).
"""

from __future__ import annotations

from django.core.files.storage import Storage, storages


def private_storage() -> Storage:
    """The storage of import and export files (a callable, so settings can swap it)."""
    return storages["crm_files"]


def may_read(user, owner_id: int | None) -> bool:
    """Files are read by who made them and by admins (superusers)."""
    return bool(user.is_authenticated and (user.is_superuser or user.pk == owner_id))
