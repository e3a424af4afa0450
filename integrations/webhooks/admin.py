"""Admin for webhooks: subscriptions (the URL checked against SSRF as it is saved, the
signing secret shown and rotatable, the owner whose permissions the payloads follow)
and the delivery log with its attempts and a resend."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.params import parse_id

from . import services, targets
from .models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    record_types = forms.MultipleChoiceField(
        label=_("record types"), widget=forms.CheckboxSelectMultiple, choices=()
    )
    events = forms.MultipleChoiceField(
        label=_("events"), widget=forms.CheckboxSelectMultiple, choices=WebhookEvent.choices
    )

    class Meta:
        model = WebhookSubscription
        fields = ("name", "url", "record_types", "events", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["record_types"].choices = services.record_type_choices()
        self.fields["url"].help_text = _(
            "An https:// address on the internet; internal addresses are refused."
        )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        targets.check(url)  # raises a ValidationError in the user's language
        return url


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("name", "url", "is_active", "failing_since", "owner", "deliveries_link")
    list_filter = ("is_active",)
    search_fields = ("name", "url")
    readonly_fields = (
        "secret",
        "owner",
        "paused_reason",
        "paused_at",
        "failing_since",
        "deliveries_link",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "url", "record_types", "events", "is_active")}),
        (
            _("Signing"),
            {
                "fields": ("secret",),
                "description": _(
                    "Each delivery carries X-Kedao-Signature: sha256= and the HMAC-SHA256 of "
                    "“timestamp.body” with this secret. Rotate it with the action on the "
                    "list; the new one is used from the next attempt."
                ),
            },
        ),
        (
            _("State"),
            {
                "fields": (
                    "owner",
                    "paused_reason",
                    "paused_at",
                    "failing_since",
                    "deliveries_link",
                    "created_at",
                )
            },
        ),
    )
    actions = ("rotate_secret", "resume")
    list_select_related = ("owner",)

    def save_model(self, request, obj, form, change):
        if obj.owner_id is None:
            # The admin who creates it: payloads hold what they may see.
            obj.owner_id = request.user.pk
        if change and "is_active" in form.changed_data and obj.is_active:
            obj.paused_reason, obj.paused_at, obj.failing_since = "", None, None
        super().save_model(request, obj, form, change)

    @admin.display(description=_("delivery log"))
    def deliveries_link(self, obj):
        if obj.pk is None:
            return ""
        url = reverse("admin:webhooks_webhookdelivery_changelist")
        return format_html(
            '<a href="{}?subscription__id__exact={}">{}</a>', url, obj.pk, gettext("Deliveries")
        )

    @admin.action(description=_("Rotate the signing secret"))
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            services.rotate_secret(subscription)
        self.message_user(
            request,
            gettext("New secrets made for %(n)s webhooks.") % {"n": queryset.count()},
            messages.SUCCESS,
        )

    @admin.action(description=_("Resume the selected paused webhooks"))
    def resume(self, request, queryset):
        for subscription in queryset.filter(is_active=False):
            services.resume(subscription)
        self.message_user(request, gettext("Resumed."), messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("started_at", "status_code", "duration_ms", "ok", "error", "response_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "subscription",
        "event_name",
        "record_link",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
    )
    list_filter = ("status", "subscription", "event_name")
    search_fields = ("idempotency_id",)
    readonly_fields = (
        "subscription", "event", "idempotency_id", "event_name", "status", "attempts",
        "next_attempt_at", "last_status_code", "last_error", "delivered_at", "created_at",
        "payload",
    )  # fmt: skip
    exclude = ("claim", "claimed_until")
    inlines = [AttemptInline]
    actions = ("resend",)
    list_select_related = ("subscription",)
    change_form_template = "admin/webhooks/webhookdelivery/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("record"))
    def record_link(self, obj):
        return f"{obj.payload.get('record_type', '')} #{obj.payload.get('record_id', '')}"

    @admin.action(description=_("Resend the selected deliveries"))
    def resend(self, request, queryset):
        ids = services.resend(queryset)
        self.message_user(
            request,
            gettext("%(n)s deliveries will be sent again.") % {"n": len(ids)},
            messages.SUCCESS if ids else messages.WARNING,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name="webhooks_webhookdelivery_resend",
            ),
            *super().get_urls(),
        ]

    def resend_view(self, request, object_id):
        pk = parse_id(object_id)
        delivery = WebhookDelivery.objects.filter(pk=pk).first() if pk else None
        if delivery is None or not self.has_view_permission(request, delivery):
            raise Http404
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
            )
        if delivery.status == DeliveryStatus.SENDING:
            self.message_user(request, gettext("It is being sent right now."), messages.WARNING)
        else:
            services.resend(WebhookDelivery.objects.filter(pk=delivery.pk))
            self.message_user(request, gettext("It will be sent again."), messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
        )
