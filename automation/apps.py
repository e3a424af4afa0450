from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from crm.demo_config import register_demo_seeder
        from crm.events import Subscriber, register_subscriber

        from . import (
            actions,  # noqa: F401 - registers the built-in actions
            cards,
            engine,
        )
        from .models import Rule, RuleAction

        # The card of a record's automation runs on customer, lead and deal pages.
        cards.register_cards()

        register_subscriber(
            Subscriber(
                name="automation",
                handle=engine.handle_event,
                wants=engine.wants,
                listening=engine.listening,
                batch=engine.batch,
            )
        )

        from .demo import seed_for_demo

        register_demo_seeder(seed_for_demo)

        # Stage robots on a pipeline's stage settings (stage_robots.py); rules in the
        # configuration file, the configuration document and the impact view (config.py).
        from crm.config.document import register_document_section
        from crm.config.transfer import register_section
        from crm.fields.impact import register_impact
        from pipelines.stage_panels import register_stage_panel

        from . import config as rules_config
        from .stage_robots import ROBOTS_PANEL

        register_stage_panel(ROBOTS_PANEL)
        register_section(rules_config.EMAIL_TEMPLATES_SECTION)
        register_section(rules_config.RULES_SECTION)
        register_document_section(rules_config.DOCUMENT_SECTION)
        register_impact(rules_config.rules_using)

        # Every change to a rule, its actions or an email template is in the
        # configuration log (who changed what, from what to what).
        from crm.config.log import register_config_model

        from .models import EmailTemplate

        register_config_model(Rule, key_fields=("record_type", "name"), exclude=("scanned_until",))
        register_config_model(
            RuleAction, key_fields=("rule.record_type", "rule.name", "order"), exclude=("state",)
        )
        register_config_model(EmailTemplate, key_fields=("name",))

        def changed(**kwargs):
            engine.rules_changed()

        for model in (Rule, RuleAction):
            # weak=False: `changed` is local to ready() and would be collected at once.
            post_save.connect(
                changed,
                sender=model,
                weak=False,
                dispatch_uid=f"automation-{model.__name__}-save",
            )
            post_delete.connect(
                changed,
                sender=model,
                weak=False,
                dispatch_uid=f"automation-{model.__name__}-delete",
            )
