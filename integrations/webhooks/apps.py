from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "integrations.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from crm.events import Subscriber, register_subscriber

        from . import services
        from .models import WebhookSubscription

        # Listening only while a subscription is active (a cached list: no query per
        # event), so without webhooks an event costs nothing more.
        register_subscriber(
            Subscriber(
                name="webhooks",
                handle=services.handle_event,
                wants=services.wants,
                listening=services.listening,
                batch=services.pinned,
            )
        )

        def changed(**kwargs):
            services.subscriptions_changed()

        # weak=False: `changed` is local to ready() and would be collected at once.
        post_save.connect(
            changed, sender=WebhookSubscription, weak=False, dispatch_uid="webhooks-save"
        )
        post_delete.connect(
            changed, sender=WebhookSubscription, weak=False, dispatch_uid="webhooks-delete"
        )
