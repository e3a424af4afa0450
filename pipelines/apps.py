from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = _("Pipelines, leads and deals")

    def ready(self) -> None:
        from crm.navigation import NavItem, register_nav_item
        from crm.records import register_record_type

        from .record_types import DEAL, LEAD

        # Leads and deals, one registration each (crm/records.py; ARCHITECTURE.md,
        # "Adding a record type").
        register_record_type(LEAD)
        register_record_type(DEAL)
        # The 2-character search's bigram indexes (migration 0007).
        from crm.services.search import register_bigram_index

        from .models import Deal, Lead

        for name in ("company_name", "person_name", "email", "wechat"):
            register_bigram_index(Lead, name)
        register_bigram_index(Deal, "title")
        # The board is no record type's list: its own menu entry.
        register_nav_item(
            NavItem(_("Board"), "board:index", "timeline", permission="deal.view", order=60)
        )
        # The start page's deals closing soon and recent leads (crm.dashboard_cards).
        from .dashboard import register_panels

        register_panels()
