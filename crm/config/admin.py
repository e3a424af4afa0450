"""The configuration log in the admin (read-only) and the configuration document page
(/admin/crm/configchange/document/). Imported from crm/admin.py."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..models import ConfigChange
from . import document
from .log import config_models, model_for_label, readable_changes


def model_title(label: str) -> str:
    model = model_for_label(label)
    return str(model._meta.verbose_name) if model else label


class ConfigModelFilter(admin.SimpleListFilter):
    title = _("what")
    parameter_name = "model"

    def lookups(self, request, model_admin):
        labels = {entry.label for entry in config_models()}
        labels |= set(ConfigChange.objects.values_list("model", flat=True).distinct())
        return sorted(((label, model_title(label)) for label in labels), key=lambda x: x[1])

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(model=self.value())
        return queryset


@admin.register(ConfigChange)
class ConfigChangeAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "source",
        "model_name",
        "object_repr",
        "action",
        "summary",
    )
    list_display_links = ("created_at", "object_repr")
    list_filter = (
        ConfigModelFilter,
        "action",
        ("user", admin.RelatedOnlyFieldListFilter),
        "source",
    )
    list_select_related = ("user",)
    search_fields = ("object_repr", "object_id", "source", "user__username", "user__name")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "user",
        "source",
        "model_name",
        "object_repr",
        "object_id",
        "action",
        "changes_table",
    )
    readonly_fields = fields
    change_list_template = "admin/config/configchange_change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("what"), ordering="model")
    def model_name(self, obj):
        return model_title(obj.model)

    @admin.display(description=_("changed fields"))
    def summary(self, obj):
        labels = list(dict.fromkeys(label.split(":")[0] for label, _o, _n in readable_changes(obj)))
        text = "、".join(labels[:6])
        return text + ("…" if len(labels) > 6 else "")

    @admin.display(description=_("changes"))
    def changes_table(self, obj):
        rows = readable_changes(obj)
        if not rows:
            return "—"
        body = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", ((f, o, n) for f, o, n in rows)
        )
        return format_html(
            '<table class="config-changes"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            _("field"),
            _("before"),
            _("after"),
            body,
        )

    def get_urls(self):
        urls = [
            path(
                "document/",
                self.admin_site.admin_view(self.document_view),
                name="crm_configchange_document",
            )
        ]
        return urls + super().get_urls()

    def document_view(self, request):
        return document.document_view(request, self.admin_site)
