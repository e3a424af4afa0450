"""The admin's site: its index grouped by what an administrator does, not by Python app.

`SECTIONS` lists, in order, each section of the index (and of the admin's side menu)
and the models it holds, by "app_label.ModelName". A registered model no section names
shows under "Other", so every registered model appears exactly once; a named model that
is not registered (an app left out) is skipped.

Third-party models shown here (django-axes') have English names; their msgids are
listed in `THIRD_PARTY_MSGIDS` so that the project's catalogue translates them wherever
the third-party code shows them (axes calls gettext with the same msgids).

Installed by naming `CrmAdminConfig` instead of "django.contrib.admin" in
INSTALLED_APPS; this module is imported while the apps load, so it imports no models.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop


@dataclass(frozen=True)
class Section:
    key: str
    title: object  # a lazy translation
    models: tuple[str, ...]


SECTIONS: tuple[Section, ...] = (
    Section(
        "organisation",
        _("Organisation and permissions"),
        ("accounts.Department", "accounts.User", "accounts.Role"),
    ),
    Section(
        "fields",
        _("Fields and dictionaries"),
        ("crm.CustomField", "crm.Dictionary", "crm.DictionaryItem", "crm.Tag", "crm.SavedView"),
    ),
    Section(
        "sales",
        _("Sales process"),
        (
            "pipelines.Pipeline",
            "pipelines.Lead",
            "pipelines.Deal",
        ),
    ),
    Section(
        "automation",
        _("Automation"),
        (
            "automation.Rule",
            "automation.EmailTemplate",
            "automation.RuleRun",
            "automation.Notification",
            "crm.Change",
        ),
    ),
    Section(
        "integrations",
        _("Integrations"),
        (
            "webforms.WebForm",
            "webforms.WebFormSubmission",
            "webhooks.WebhookSubscription",
            "webhooks.WebhookDelivery",
            "api.ApiToken",
        ),
    ),
    Section(
        "security",
        _("Security"),
        (
            "crm.ConfigChange",
            "accounts.SecurityNotice",
            "axes.AccessAttempt",
            "axes.AccessFailureLog",
            "axes.AccessLog",
        ),
    ),
)
OTHER = Section("other", _("Other"), ())

# django-axes ships no Chinese: these are its msgids, translated in our catalogue.
THIRD_PARTY_MSGIDS = (
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Access Attempt"),
    gettext_noop("Access lock out"),
    gettext_noop("Attempt Remaining"),
    gettext_noop("Attempt Time"),
    gettext_noop("Clean up expired attempts"),
    gettext_noop("Expires At"),
    gettext_noop("Failed Logins"),
    gettext_noop("Form Data"),
    gettext_noop("GET Data"),
    gettext_noop("HTTP Accept"),
    gettext_noop("IP Address"),
    gettext_noop("Locked Out"),
    gettext_noop("Logout Time"),
    gettext_noop("Meta Data"),
    gettext_noop("Not set"),
    gettext_noop("POST Data"),
    gettext_noop("Path"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("User Agent"),
    gettext_noop("Account locked: too many login attempts. Please try again later."),
)
# Apps whose name the admin shows (breadcrumbs, an app's own index page).
APP_NAMES = {"axes": _("Sign-in security")}


def section_of(label: str) -> Section:
    for section in SECTIONS:
        if label in section.models:
            return section
    return OTHER


def _admin_title():
    """ "客道 CRM 管理后台": the product's name (settings.CRM_PRODUCT_NAME), then the word."""
    from django.conf import settings

    return format_lazy(_("{product} administration"), product=settings.CRM_PRODUCT_NAME)


class CrmAdminSite(admin.AdminSite):
    site_header = _admin_title()
    site_title = _admin_title()
    index_title = _("Configuration")

    def get_app_list(self, request, app_label=None):
        if app_label is not None:
            # An app's own page (/admin/crm/) lists that app's models as Django does.
            return super().get_app_list(request, app_label)
        return self.get_sections(request)

    def get_sections(self, request) -> list[dict]:
        """The index's sections, in the shape of Django's app list (name, app_label,
        app_url, models) so the admin's templates and side menu show them."""
        by_label: dict[str, dict] = {}
        for app in self._build_app_dict(request).values():
            for model in app["models"]:
                by_label[model["model"]._meta.label] = model
        sections = []
        for section in (*SECTIONS, OTHER):
            if section is OTHER:
                labels = sorted(
                    (label for label in by_label if section_of(label) is OTHER),
                    key=lambda label: str(by_label[label]["name"]),
                )
            else:
                labels = [label for label in section.models if label in by_label]
            if labels:
                sections.append(
                    {
                        "name": section.title,
                        "app_label": section.key,
                        "app_url": "",
                        "has_module_perms": True,
                        "models": [by_label[label] for label in labels],
                    }
                )
        return sections


class CrmAdminConfig(AdminConfig):
    default_site = "crm.admin_site.CrmAdminSite"

    def ready(self):
        super().ready()
        from django.apps import apps

        for label, name in APP_NAMES.items():
            if apps.is_installed(label):
                apps.get_app_config(label).verbose_name = name
