"""The Celery app. Tasks are thin: they call services, and are enqueued after commit."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """What Django does around a request, around a task: drop a connection that is
    broken or older than CONN_MAX_AGE (CELERY_DB_REUSE_MAX keeps the rest open). Not
    for a task run in the caller's process (eagerly), inside its transaction."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
