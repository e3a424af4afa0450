"""API tokens in Django admin (section 安全 / Security): every person's tokens, to see
which exist, when and where they were last used, and to revoke them. Tokens are made
by their owner (the API tokens page) or from the shell (`manage.py create_api_token`),
never here: the admin would see the secret."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import STATUS_LABELS, ApiToken


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(STATUS_LABELS.items())

    def queryset(self, request, queryset):
        from django.utils import timezone

        now = timezone.now()
        if self.value() == "active":
            return queryset.usable()
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "user",
        "display_prefix",
        "status_display",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
    )
    list_filter = (StatusFilter,)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username", "user__name")
    date_hierarchy = "created_at"
    actions = ["revoke"]
    fields = (
        "name",
        "user",
        "display_prefix",
        "status_display",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
        "last_used_ip",
    )
    readonly_fields = fields

    @admin.display(description=_("token"))
    def display_prefix(self, obj: ApiToken) -> str:
        return f"{obj.display_prefix}…"

    @admin.display(description=_("status"))
    def status_display(self, obj: ApiToken) -> str:
        return obj.get_status_display()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Revoked, never deleted: the row says who revoked it and when.
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.action(description=_("Revoke the selected tokens"), permissions=["revoke"])
    def revoke(self, request, queryset):
        count = sum(services.revoke_token(token, by=request.user) for token in queryset)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
            % {"count": count},
            messages.SUCCESS,
        )
