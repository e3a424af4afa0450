"""`make run` on a fresh machine prints no alarming noise: no SQLite index warnings during
migrate, and no Celery "running as root" warning from the dev worker."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core import checks
from django.db import connection

from crm.management.commands.devserver import ROOT_WARNING_FILTER, worker_env


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_sqlite_runs_no_covering_index_warning_and_nothing_else_is_silenced():
    # W040: covering indexes; W047: a unique constraint with NULLS NOT DISTINCT (the
    # import templates' names); crm/settings.py says why neither matters on SQLite.
    silenced = ("models.W040", "models.W047")
    assert list(silenced) == settings.SILENCED_SYSTEM_CHECKS
    found = checks.run_checks(include_deployment_checks=False)
    assert [m.id for m in found if m.id in silenced] == []


@pytest.mark.skipif(connection.vendor == "sqlite", reason="on SQLite it is silenced")
def test_postgresql_keeps_every_check():
    assert "models.W040" not in settings.SILENCED_SYSTEM_CHECKS
    assert "models.W047" not in settings.SILENCED_SYSTEM_CHECKS


def test_the_dev_worker_filters_the_root_warning_only_when_root():
    as_root = worker_env({"PATH": "/bin", "PYTHONWARNINGS": "default"}, euid=0)
    assert as_root["PYTHONWARNINGS"] == f"default,{ROOT_WARNING_FILTER}"
    assert as_root["PATH"] == "/bin"
    assert worker_env({"PATH": "/bin"}, euid=1000) == {"PATH": "/bin"}
    assert "C_FORCE_ROOT" not in as_root  # JSON only: Celery runs as root without it


def run_celerys_root_check(env) -> str:
    """What Celery prints when its worker starts as root (celery.platforms)."""
    code = (
        "from celery.platforms import _warn_or_raise_security_error as check; "
        "check(0, 0, 0, 0, False)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_filter_silences_exactly_celerys_root_warning():
    assert "superuser privileges" in run_celerys_root_check(dict(os.environ))
    assert run_celerys_root_check(worker_env(os.environ, euid=0)) == ""
