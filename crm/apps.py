import sqlite3

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _

SQLITE_INTEGER = range(-(2**63), 2**63)


def _sqlite_int(value: int):
    """SQLite (the demo database) cannot bind an int past 64 bits: a form's id field given
    one ("99999999999999999999999" for a tag, a department) raised OverflowError in
    Django's own lookups. Bound as text, it compares equal to no stored id, as on
    PostgreSQL (where the literal becomes a numeric)."""
    return value if value in SQLITE_INTEGER else str(value)


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self) -> None:
        from .fields import definitions, indexes, schema  # noqa: F401 - connects their signals

        schema.register_with_access()
        if any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values()):
            sqlite3.register_adapter(int, _sqlite_int)
        from .config import admin as _config_admin  # noqa: F401 - configuration log + its admin
