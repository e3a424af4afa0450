from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = _("Pipelines, leads and deals")

    def ready(self) -> None:
        from crm.demo_config import register_demo_seeder
        from crm.navigation import NavItem, register_nav_item
        from crm.record_cards import register_card

        from . import (
            config,  # noqa: F401 - config log, document, export/import, impact
            fields,  # noqa: F401 - registers lead and deal fields with crm
            search,  # noqa: F401 - leads and deals in the one search
        )
        from .cards import CUSTOMER_DEALS_CARD
        from .demo import seed_for_demo
        from .merge import register as register_merge_participants

        register_demo_seeder(seed_for_demo)
        register_merge_participants()  # deals and converted leads follow a merged customer
        # The menu's entries of leads, deals and the board; the customer page's deal card.
        for item in (
            NavItem(_("Leads"), "leads:list", "user-circle", permission="lead.view", order=40),
            NavItem(_("Deals"), "deals:list", "briefcase", permission="deal.view", order=50),
            NavItem(_("Board"), "board:index", "timeline", permission="deal.view", order=60),
        ):
            register_nav_item(item)
        register_card(CUSTOMER_DEALS_CARD)
