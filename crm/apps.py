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
        from . import (
            dictionary_copy,  # noqa: F401 - connects its signals
            people_copy,  # noqa: F401 - connects its signals
        )
        from .fields import definitions, indexes, schema  # noqa: F401 - connects their signals
        from .record_types import ACTIVITY, CONTACT, CUSTOMER, TASK
        from .records import register_record_type

        # crm's record types, one registration each (crm/records.py; ARCHITECTURE.md,
        # "Adding a record type"). The order is the role form's and the search's.
        register_record_type(CUSTOMER)
        register_record_type(CONTACT)
        register_record_type(ACTIVITY)
        register_record_type(TASK)
        if any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values()):
            sqlite3.register_adapter(int, _sqlite_int)
        from .config import admin as _config_admin  # noqa: F401 - configuration log + its admin
