"""Test settings: the real settings, made fast and HTTP-friendly for the test client."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
ALLOWED_HOSTS = ["*"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
AXES_COOLOFF_TIME = 0.25

# A test-only record model, to prove the access rules on.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
# Serve static files through the finders; there is no collectstatic in tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# Tests that start a real worker publish to their own queue (and, without Redis, their
# own broker file), so a `make run` worker on the same machine never takes their tasks.
# Each test database has its own queue, so two test runs on one machine (one Redis)
# never take or purge each other's messages; a worker a test starts is told its queue.
# Likewise each process of a run spread over the CPUs (pytest-xdist's gw0, gw1...).
_RUN = "{}{}{}".format(
    Path(str(DATABASES["default"]["NAME"])).name,  # noqa: F405
    os.environ.get("TEST_DB_SUFFIX", ""),
    os.environ.get("PYTEST_XDIST_WORKER", ""),
)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CRM_TEST_QUEUE") or f"crm-test-{_RUN}"
if REDIS_URL:  # noqa: F405
    # Likewise the Redis cache: one run's cached department tree or custom fields are not
    # another's (without Redis the cache is the process's own memory).
    CACHES["default"]["KEY_PREFIX"] = f"test-{_RUN}"  # noqa: F405
if not REDIS_URL:  # noqa: F405
    CELERY_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker-test.sqlite3'}"  # noqa: F405
# Import and export files of this run, apart from any other run's and from `make run`'s.
STORAGES["crm_files"]["OPTIONS"]["location"] = str(VAR_DIR / f"test-files-{_RUN}")  # noqa: F405
# Webhook tests send to a receiver on 127.0.0.1 (the SSRF tests turn this off again).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
# The API's rate limit counts per user in the cache, which outlives a test and, on
# SQLite, sees the next test's user under the same id: tests of the limit set their own.
API_RATE_LIMIT = "100000/min"
