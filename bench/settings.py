"""Settings for the benchmark: production-like (DEBUG off, cached templates, no query
log) but runnable on a laptop without HTTPS or collected static files."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only-key-not-secret-0123456789abcdefghijklmnop")
os.environ.setdefault("DEBUG", "0")

from crm.settings import *  # noqa: F403
from crm.settings import LOGGING, STORAGES

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# {% static %} without a collectstatic manifest.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
