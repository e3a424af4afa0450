from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self) -> None:
        from crm.navigation import NavItem, register_nav_item

        from . import catalogue  # noqa: F401 - registers every report
        from .dashboard import team_cards  # noqa: F401 - the manager's cards on /

        # Reports read deals: a role that may view them gets the menu entry.
        register_nav_item(
            NavItem(
                _("Reports"),
                "reports:index",
                "report-analytics",
                permission="deal.view",
                order=80,
            )
        )
