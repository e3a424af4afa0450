from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = _("Imports and exports")

    def ready(self) -> None:
        from crm.navigation import NavItem, register_nav_item

        from . import specs  # noqa: F401 - registers the importable record types

        def may_import_something(user) -> bool:
            from .services.jobs import importable_types

            return bool(importable_types(user))

        register_nav_item(
            NavItem(
                _("Imports"), "imports:index", "file-import", check=may_import_something, order=90
            )
        )
        from . import views_exports  # noqa: F401 - registers crm's background exporter
