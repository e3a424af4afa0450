import os
import subprocess
import sys

from django.conf import settings

ROOT = settings.BASE_DIR


def run(code: str, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "crm.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serving_with_debug_off_needs_a_secret_key():
    result = run("import crm.wsgi", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_serving_with_debug_off_and_a_secret_key_starts():
    result = run("import crm.wsgi", DEBUG="0", SECRET_KEY="x" * 60, ALLOWED_HOSTS="crm.example.com")
    assert result.returncode == 0, result.stderr


def test_tools_run_without_a_secret_key():
    result = run(
        "import django; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('makemigrations', check=True, dry_run=True, verbosity=0)",
        DEBUG="0",
    )
    assert result.returncode == 0, result.stderr


def test_postgresql_connections_run_without_jit_compilation(db):
    """The CRM's short queries are estimated far above what they cost; compiled, a
    manager's task page query took 4x as long (crm/settings.py)."""
    import pytest
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
