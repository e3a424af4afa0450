"""Web-to-lead forms: admin-designed forms embedded on a website that create leads."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebformsConfig(AppConfig):
    name = "integrations.webforms"
    label = "webforms"
    verbose_name = _("Web forms")

    def ready(self) -> None:
        from crm.config.log import register_config_model

        from .models import WebForm, WebFormField

        # Every change of a form is in the configuration log, like pipelines and rules
        # (the public key left out: it is a secret of sorts; the round robin's pointer
        # moves by UPDATE and is no configuration).
        register_config_model(WebForm, key_fields=("name",), exclude=("key", "last_assigned"))
        register_config_model(WebFormField, key_fields=("form.name", "name"))
