from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from crm.events import Subscriber, register_subscriber

        from . import (
            actions,  # noqa: F401 - registers the built-in actions
            engine,
        )
        from .models import Rule, RuleAction

        register_subscriber(
            Subscriber(
                name="automation",
                handle=engine.handle_event,
                wants=engine.wants,
                listening=engine.listening,
            )
        )

        def changed(**kwargs):
            engine.rules_changed()

        for model in (Rule, RuleAction):
            post_save.connect(
                changed, sender=model, dispatch_uid=f"automation-{model.__name__}-save"
            )
            post_delete.connect(
                changed, sender=model, dispatch_uid=f"automation-{model.__name__}-delete"
            )
