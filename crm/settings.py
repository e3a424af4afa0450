"""Settings, all driven by environment variables (django-environ).

`make run` and the tests set DEBUG on; everywhere else it defaults to off, and then
SECRET_KEY is required and the HTTPS protections are on unless switched off one by one.
"""

from pathlib import Path

import environ
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Required to serve with DEBUG off: crm/wsgi.py refuses to start without it and
# `check --deploy` reports it. Tools that sign nothing (makemigrations...) run without.
SECRET_KEY = env(
    "SECRET_KEY",
    default="dev-only-key-never-used-in-production-0123456789abcdef" if DEBUG else "",
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin, its index grouped by task (crm/admin_site.py).
    "crm.admin_site.CrmAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_filters",
    "django_htmx",
    "axes",
    "accounts",
    "crm",
    "pipelines",
    "reports",
    "import_export",
    "imports",
    "automation",
    "rest_framework",
    "drf_spectacular",
    "integrations.api",
    "integrations.webhooks",
    "integrations.webforms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Under /api/: an error answered outside the API's views (an unknown URL, a refused
    # parameter, a crash) as the API's JSON error.
    "integrations.api.errors.ApiErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    # A NUL byte in any parameter: a 400 in the user's language (crm.params).
    "crm.params.ParameterGuardMiddleware",
    "crm.config.middleware.ConfigActorMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during sign-in into a page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "crm.navigation.navigation",
                "crm.fields.schema.field_visibility",
                # The header's bell: unread notifications (one COUNT, when shown).
                "automation.context_processors.notifications",
            ],
        },
    },
]

# Django's form renderer with the plainest widget templates built in Python (a
# datetime field cost ~1.5 ms through three templates): crm/renderers.py.
FORM_RENDERER = "crm.renderers.FastRenderer"

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the Celery worker share the file: WAL and immediate
    # transactions turn "database is locked" errors into short waits.
    _db.setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # A file, not memory, so a worker process can share the test database. Two test
    # runs in one checkout at once each need their own: TEST_DB_SUFFIX=-b make test.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test{env('TEST_DB_SUFFIX', default='')}.sqlite3")}
    # The covering indexes (Index(include=...)) of activities and stage history speed
    # up PostgreSQL; SQLite has no such indexes and builds plain ones instead, which is
    # all a development database needs. Without this, every migrate on SQLite prints
    # the same two warnings. W047 likewise: an import mapping template's name is unique
    # per owner, shared ones (no owner) included, a constraint SQLite cannot make; the
    # form checks it (Model.validate_constraints) on every database. Only here: on
    # PostgreSQL both stay checks.
    SILENCED_SYSTEM_CHECKS = ["models.W040", "models.W047"]
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    _db["CONN_HEALTH_CHECKS"] = True
    # No JIT compilation (unless DATABASE_URL's options say otherwise): PostgreSQL
    # compiles a query whose estimated cost is over jit_above_cost, and the estimates of
    # this CRM's short queries (a LIMIT, a key probe per row) are far above what they
    # cost: a manager's /tasks/ page query took 74.5 ms with JIT against 16.5 ms without.
    _options = _db.setdefault("OPTIONS", {})
    if "jit" not in _options.get("options", ""):
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
    # Trigram search on Chinese text needs a UTF-8 ctype: the test database is
    # cloned from a template created that way (see .ci/run).
    _db["TEST"] = {"TEMPLATE": env("DATABASE_TEST_TEMPLATE", default=None), "CHARSET": "UTF8"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts and sign-in -------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.UserBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Forgotten password (/accounts/password/reset/): a link in the email works once, for
# this many seconds (Django's default is three days; an hour is what people expect).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
# Reset emails asked for, per IP address and per email address, in `window` seconds:
# enough for a typo and a retry, too few to flood a mailbox or probe many addresses.
PASSWORD_RESET_LIMITS = {
    "ip": {"limit": env.int("PASSWORD_RESET_LIMIT_PER_IP", default=10), "window": 60 * 60},
    "email": {"limit": env.int("PASSWORD_RESET_LIMIT_PER_EMAIL", default=3), "window": 60 * 60},
}

# Failed sign-ins: lock a username on one IP after AXES_FAILURE_LIMIT failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# django-filter's empty choice in list filters.
FILTERS_EMPTY_CHOICE_LABEL = gettext_lazy("Any")

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
# Sessions read from the cache (Redis in production), written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="CN")

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Uploaded import files, error reports and export files (imports/files.py): a
    # directory the web and worker processes share. Never served by URL; the app's
    # views check who may read each file. An S3-compatible store can replace it here.
    "crm_files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(env.path("CRM_FILES_ROOT", default=VAR_DIR / "files"))},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Imports and exports (imports/) -------------------------------------------------------
# Uploads above these limits are refused with a message, before anything is read.
CRM_IMPORT_MAX_BYTES = env.int("CRM_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
CRM_IMPORT_MAX_ROWS = env.int("CRM_IMPORT_MAX_ROWS", default=200_000)
# A file of more rows than this is previewed in the background (progress, then the result).
CRM_IMPORT_PREVIEW_INLINE_ROWS = env.int("CRM_IMPORT_PREVIEW_INLINE_ROWS", default=5_000)
# Rows an import writes per transaction (and per step of its progress bar).
CRM_IMPORT_BATCH_SIZE = env.int("CRM_IMPORT_BATCH_SIZE", default=1000)
# A running import whose worker gave no sign of life for this many seconds is resumed.
CRM_IMPORT_STALLED_AFTER = env.int("CRM_IMPORT_STALLED_AFTER", default=120)
# Uploads, error reports and export files are deleted this many days after they were made.
CRM_FILE_RETENTION_DAYS = env.int("CRM_FILE_RETENTION_DAYS", default=30)
# A list export of more rows than this runs in the background (progress, a download link).
CRM_EXPORT_BACKGROUND_ROWS = env.int("CRM_EXPORT_BACKGROUND_ROWS", default=5_000)
# The most rows one export writes.
CRM_EXPORT_MAX_ROWS = env.int("CRM_EXPORT_MAX_ROWS", default=1_000_000)

# --- Automation ---------------------------------------------------------------------
# Rules triggering rules stop at this depth (a rule's change fires rules at depth 2...).
CRM_AUTOMATION_MAX_DEPTH = env.int("CRM_AUTOMATION_MAX_DEPTH", default=3)
# A failed action is tried this many times in all, waiting RETRY_BASE seconds, then
# twice that..., before its run shows as failed.
CRM_AUTOMATION_MAX_ATTEMPTS = env.int("CRM_AUTOMATION_MAX_ATTEMPTS", default=5)
CRM_AUTOMATION_RETRY_BASE = env.int("CRM_AUTOMATION_RETRY_BASE", default=30)
# A claimed run whose worker gave no sign for this many seconds is taken again.
CRM_AUTOMATION_STALE_CLAIM = env.int("CRM_AUTOMATION_STALE_CLAIM", default=300)
# Outbound webhooks (integrations.webhooks): allow private, loopback and link-local
# targets and plain http (a receiver on this machine or network); off, only https to
# public addresses (no SSRF).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)
# Activating a rule that matches more existing records than this asks for confirmation.
CRM_AUTOMATION_CONFIRM_OVER = env.int("CRM_AUTOMATION_CONFIRM_OVER", default=100)
# Runs one time-triggered rule starts per minute at most (the rest the next minute).
CRM_AUTOMATION_SCAN_LIMIT = env.int("CRM_AUTOMATION_SCAN_LIMIT", default=1000)
# Working hours for "due in N working hours/days" (local time, hours 0-24) and days
# (ISO weekdays: 1 = Monday).
CRM_WORKING_HOURS = tuple(env.list("CRM_WORKING_HOURS", cast=int, default=[9, 18]))
CRM_WORKING_DAYS = tuple(env.list("CRM_WORKING_DAYS", cast=int, default=[1, 2, 3, 4, 5]))

# --- Email ----------------------------------------------------------------------------
# consolemail:// prints mail to the worker log; smtp+tls://user:pass@host:587 sends it.
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
# The product's name: in page titles, the header, the footer, the sign-in page and the
# emails. By default "Kedao CRM", which reads "客道 CRM" in Chinese; CRM_PRODUCT_NAME (or
# the older CRM_SITE_NAME) in the environment sets one name for every language.
CRM_PRODUCT_NAME = (
    env("CRM_PRODUCT_NAME", default="")
    or env("CRM_SITE_NAME", default="")
    or gettext_lazy("Kedao CRM")
)
CRM_SITE_NAME = CRM_PRODUCT_NAME  # the name the code used before
# Mail to ADMINS / MANAGERS (mail_admins) starts with the name too.
EMAIL_SUBJECT_PREFIX = format_lazy("[{}] ", CRM_PRODUCT_NAME)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="CRM <crm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Background work (Celery) ---------------------------------------------------------
# With REDIS_URL: Redis is the broker. Without it (make run): an SQLite file under var/
# through kombu's SQLAlchemy transport, so a worker and beat run with no server at all.
REDIS_URL = env("REDIS_URL", default=None)
CELERY_BROKER_URL = env(
    "CELERY_BROKER_URL",
    default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}",
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens after a commit; if the broker is down the request must not hang.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# Celery's Django fix-up closes the database connection around every task unless this
# is set: a new PostgreSQL connection per message costs more than most tasks. With it,
# crm/celery.py closes a connection only as Django would (CONN_MAX_AGE, health checks).
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "accounts.tasks.clear_expired_sessions",
        "schedule": 60 * 60 * 6,
    },
    "clear-old-sign-in-logs": {
        "task": "accounts.tasks.clear_old_sign_in_logs",
        "schedule": 60 * 60 * 24,
    },
    "sweep-record-events": {
        "task": "crm.tasks.sweep_events",
        "schedule": 60,
    },
    "delete-expired-files": {
        "task": "imports.tasks.delete_expired_files",
        "schedule": 60 * 60,
    },
    "resume-stalled-imports": {
        "task": "imports.tasks.resume_stalled",
        "schedule": 60,
    },
    "automation-tick": {
        "task": "automation.tasks.tick",
        "schedule": 60,
    },
    "notification-digests": {
        "task": "automation.tasks.send_digests",
        "schedule": 60 * 15,
    },
    "send-pending-security-notices": {
        "task": "accounts.tasks.send_pending_security_notices",
        "schedule": 60 * 5,
    },
    "webhooks-sweep": {
        "task": "integrations.webhooks.tasks.sweep",
        "schedule": 60,
    },
}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Processes that share data share the prefix (a test run and its worker).
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default=""),
        }
    }

# --- Security -------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    # Each can be switched off for a deployment behind a TLS-terminating proxy that
    # already redirects and sets HSTS itself.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.bool("USE_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Health checks come over plain HTTP from inside the deployment.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"one_line_4xx": {"()": "crm.logs.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["one_line_4xx"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Through the root's handler only: Django's own console handler (DEBUG) and
        # mail to ADMINS (none are set) would log each record a second time.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# The REST API (integrations.api): Django REST framework and its OpenAPI document.
# Requests per token (and per person for the browser's session) in a period: "120/min",
# "5000/hour"; empty: no limit. Counted in the cache above.
API_RATE_LIMIT = env("API_RATE_LIMIT", default="120/min")
REST_FRAMEWORK = {
    # A personal token first (Authorization: Bearer ...); the browser's session keeps its
    # CSRF check.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.api.throttling.ApiRateThrottle"],
    # JSON in, JSON out; every error in one JSON shape (integrations/api/errors.py).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["integrations.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "integrations.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kedao CRM API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "The CRM's REST API. Authenticate with a personal API token "
        "(Authorization: Bearer kd_..., made on the API tokens page of the user menu); "
        "a call acts as the token's user, with that user's data scope and field "
        "permissions. Every error is a JSON object with `detail` (a message in the "
        "user's language) and `code`, and for invalid input `errors` (the messages by "
        "field). Rate limit per token: 429 with Retry-After when exceeded."
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The docs page is our own (templates/api/docs.html, Swagger UI vendored); these only
    # keep drf-spectacular's own views, were one used, off the CDN.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/favicon.ico",
    # Read-only fields are left out of request bodies' schemas.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "integrations.api.openapi.add_error_responses",
    ],
}

# Web forms (integrations.webforms): submissions per IP address ("10/min", "100/h"),
# the least seconds between loading a form and sending it (faster is a bot), and the
# largest request body accepted.
WEBFORMS_RATE_LIMIT = env("WEBFORMS_RATE_LIMIT", default="10/min")
WEBFORMS_MIN_SECONDS = env.float("WEBFORMS_MIN_SECONDS", default=2)
WEBFORMS_MAX_BYTES = env.int("WEBFORMS_MAX_BYTES", default=32 * 1024)
