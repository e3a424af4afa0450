"""What `make run` serves: runserver plus a Celery worker and beat, stopped together."""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the CRM with background work: runserver, a Celery worker and Celery beat."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="Serve only.")

    def handle(self, *args, addrport, no_worker, **options):
        # runserver's autoreloader runs this command again in a child process
        # (RUN_MAIN=true); only the outer process starts the background processes.
        children: list[subprocess.Popen] = []
        if os.environ.get("RUN_MAIN") != "true":
            # A plain `kill` stops everything as Ctrl-C does: the reloader kills the
            # serving child on the way out and `finally` stops worker and beat.
            signal.signal(signal.SIGTERM, _interrupt)
            if not no_worker:
                children = self._start_background()
        try:
            call_command("runserver", addrport)
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _start_background(self) -> list[subprocess.Popen]:
        celery = [sys.executable, "-m", "celery", "-A", "crm"]
        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        self.stdout.write(f"Background work: Celery worker and beat on the {broker} broker.")
        return [
            # solo pool: one process, which SQLite (the default database) prefers.
            subprocess.Popen(
                [*celery, "worker", "--pool", "solo", "--loglevel", "INFO"], env=worker_env()
            ),
            subprocess.Popen([*celery, "beat", "--loglevel", "INFO"]),
        ]


# Celery warns at length when its worker runs as root. A fresh container or VM often
# runs `make run` as root, and on this development server that warning is noise: the
# worker accepts JSON only (Celery refuses to start as root only when pickle is
# accepted), listens on a local broker, and dropping privileges would leave it unable to
# write the SQLite files in var/ that the web process created. So for this dev worker
# alone, and only as root, the warning is filtered out (C_FORCE_ROOT would not do it:
# Celery still warns with it set). A production worker (docker-compose) runs as its own
# user and never needs this.
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


def worker_env(environ=None, *, euid=None) -> dict[str, str]:
    """The dev worker's environment: ours, plus the root warning's filter when root."""
    env = dict(os.environ if environ is None else environ)
    euid = os.geteuid() if euid is None and hasattr(os, "geteuid") else euid
    if euid == 0:
        env["PYTHONWARNINGS"] = ",".join(
            part for part in (env.get("PYTHONWARNINGS", ""), ROOT_WARNING_FILTER) if part
        )
    return env


def _interrupt(signum, frame):
    raise KeyboardInterrupt
