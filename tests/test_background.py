"""Background work with the real things: a Celery worker process, a broker (Redis when
REDIS_URL is set, else the embedded SQLite broker), the test database and SMTP."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import SecurityNotice
from crm.celery import app as celery_app

from .conftest import PASSWORD
from .factories import UserFactory
from .fakes.smtp import FakeSMTPServer

ROOT = Path(settings.BASE_DIR)


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, *, timeout: float = 60, what: str = "condition"):
    """Poll another process's effect; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def smtp_server():
    with FakeSMTPServer() as server:
        yield server


@contextmanager
def celery_worker(tmp_path, **env_extra):
    """A real `celery worker` process on the test queue, sharing the test database."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        conn.default_channel.queue_purge(queue)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "0",
        "SECRET_KEY": "worker-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CRM_TEST_QUEUE": queue,
        # Import and export files: the test run's directory.
        "CRM_FILES_ROOT": settings.STORAGES["crm_files"]["OPTIONS"]["location"],
        # The test run's cache (custom fields, the department tree): what a test changes,
        # the worker sees.
        "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        **env_extra,
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool", "solo",
             "--queues", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.returncode not in (0, -15) or os.environ.get("SHOW_WORKER_LOG"):
            print(log.read_text())


@pytest.fixture
def worker(transactional_db, smtp_server, tmp_path):
    with celery_worker(tmp_path, EMAIL_URL=smtp_server.url) as process:
        yield process


@pytest.mark.worker
def test_password_change_notice_is_sent_by_a_worker_after_commit(worker, smtp_server, client):
    user = UserFactory(email="wangfang@example.com", language="zh-hans", name="王芳")
    client.force_login(user)

    new = "Spring-Tea-2026"
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )

    assert response.status_code == 302
    notice = SecurityNotice.objects.get(user=user)
    # The worker records the send after the mail server has the message: wait for that.
    wait_for(
        lambda: SecurityNotice.objects.filter(pk=notice.pk, sent_at__isnull=False).exists(),
        what="the worker to send the notice and record it",
    )
    notice.refresh_from_db()
    assert notice.sent_at is not None
    assert notice.result == "sent"
    [(_sender, recipients, message)] = smtp_server.sink
    assert recipients == ["wangfang@example.com"]
    assert "王芳" in message.get_content()
    assert user.username in message.get_content()


def test_every_periodic_task_names_a_registered_task():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks, entry["task"]
