"""Settings of the load test's gunicorn (bench/load.py): bench/settings.py (DEBUG off,
cached templates, no HTTPS redirects) with static files served by WhiteNoise from the
apps' and project's static directories, as collectstatic would put them (no manifest
step needed on a checkout)."""

from bench.settings import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False
# Nothing is collected: WhiteNoise would warn at start about the missing directory.
STATIC_ROOT = None
