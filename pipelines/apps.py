from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = _("Pipelines, leads and deals")

    def ready(self) -> None:
        from crm.demo_config import register_demo_seeder

        from . import (
            config,  # noqa: F401 - config log, document, export/import, impact
            fields,  # noqa: F401 - registers lead and deal fields with crm
            search,  # noqa: F401 - leads and deals in the one search
        )
        from .demo import seed_for_demo
        from .merge import register as register_merge_participants

        register_demo_seeder(seed_for_demo)
        register_merge_participants()  # deals and converted leads follow a merged customer
