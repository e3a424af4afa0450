"""The configuration log in the admin (read-only) and the configuration document page
(/admin/crm/configchange/document/). Imported from crm/admin.py."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..models import ConfigChange
from . import document
from .log import (
    config_models,
    model_for_label,
    object_text,
    readable_changes,
    source_label,
)


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


class SourceFilter(admin.SimpleListFilter):
    """Where changes came from, by the names people read ("Demo data")."""

    title = _("source")
    parameter_name = "source"

    def lookups(self, request, model_admin):
        sources = set(ConfigChange.objects.values_list("source", flat=True).distinct())
        return sorted(((s, source_label(s)) for s in sources if s), key=lambda x: x[1])

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(source=self.value())
        return queryset


@admin.register(ConfigChange)
class ConfigChangeAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "source_name",
        "model_name",
        "object_name",
        "action",
        "summary",
    )
    list_display_links = ("created_at", "object_name")
    list_filter = (
        ConfigModelFilter,
        "action",
        ("user", admin.RelatedOnlyFieldListFilter),
        SourceFilter,
    )
    list_select_related = ("user",)
    search_fields = ("object_repr", "object_id", "source", "user__username", "user__name")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "user",
        "source_name",
        "model_name",
        "object_name",
        "object_id",
        "action",
        "changes_table",
    )
    readonly_fields = fields
    change_list_template = "admin/config/configchange_change_list.html"
    change_form_template = "admin/config/configchange_change_form.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("source"), ordering="source")
    def source_name(self, obj):
        return source_label(obj.source)

    @admin.display(description=_("object"), ordering="object_repr")
    def object_name(self, obj):
        return object_text(obj)

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The page's title names the object as people read it (not its natural key).
        obj = self.get_object(request, unquote(object_id))
        extra = {"subtitle": object_text(obj)} if obj is not None else {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

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
