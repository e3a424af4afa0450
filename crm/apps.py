from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self) -> None:
        from .fields import definitions, indexes, schema  # noqa: F401 - connects their signals

        schema.register_with_access()
        from .config import admin as _config_admin  # noqa: F401 - configuration log + its admin
