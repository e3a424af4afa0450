from django.core.management import call_command
from django.test import override_settings


def test_production_static_files_build(tmp_path, settings):
    """collectstatic with hashed names succeeds: no vendored file points at a missing one."""
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    assert (tmp_path / "staticfiles.json").exists()
