from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = _("Pipelines, leads and deals")

    def ready(self) -> None:
        from . import (
            config,  # noqa: F401 - config log, document, export/import, impact
            fields,  # noqa: F401 - registers lead and deal fields with crm
            search,  # noqa: F401 - leads and deals in the one search
        )
