"""Admin for web forms: the form with its fields as ordered inlines, where its leads go
and who gets them; its change page shows the snippet to paste into the company's site
and the JSON endpoint. Submissions are a read-only log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import DictionaryItem

from . import catalogue, services
from .models import WebForm, WebFormField, WebFormSubmission


class WebFormFieldForm(forms.ModelForm):
    name = forms.ChoiceField(label=_("field"), choices=())

    class Meta:
        model = WebFormField
        fields = ["name", "label", "required", "order"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = catalogue.field_choices()
        current = self.instance.name if self.instance.pk else None
        if current and current not in dict(choices):
            choices.append((current, current))
        self.fields["name"].choices = [("", "---------"), *choices]


class WebFormFieldInline(admin.TabularInline):
    model = WebFormField
    form = WebFormFieldForm
    extra = 3
    ordering = ["order", "id"]


class WebFormForm(forms.ModelForm):
    regenerate = forms.BooleanField(
        label=_("New public key"),
        required=False,
        help_text=_("Tick to give the form a new address: copies pasted before stop working."),
    )

    class Meta:
        model = WebForm
        fields = [
            "name",
            "title",
            "intro",
            "is_active",
            "pipeline",
            "stage",
            "source",
            "assignment",
            "owner",
            "department",
            "thank_you",
            "redirect_url",
            "allowed_origins",
        ]


@admin.register(WebForm)
class WebFormAdmin(admin.ModelAdmin):
    form = WebFormForm
    inlines = [WebFormFieldInline]
    list_display = ("name", "is_active", "assignment", "pipeline", "stage", "submission_count")
    list_filter = ("is_active", "assignment")
    search_fields = ("name",)
    change_form_template = "admin/webforms/webform/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "title", "intro", "is_active")}),
        (_("New leads"), {"fields": ("pipeline", "stage", "source")}),
        (_("Owner"), {"fields": ("assignment", "owner", "department")}),
        (_("After sending"), {"fields": ("thank_you", "redirect_url")}),
        (_("Embedding"), {"fields": ("allowed_origins", "regenerate")}),
    )

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        source = DictionaryItem.objects.filter(
            dictionary__code="lead_source", code="website_form", is_active=True
        ).first()
        if source is not None:
            initial.setdefault("source", source.pk)
        return initial

    @admin.display(description=_("submissions"))
    def submission_count(self, obj: WebForm) -> int:
        return obj.submissions.count()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The snippet and addresses need the request (absolute URLs): passed to the
        change page's template, below the fields."""
        from .views import form_html, urls

        obj = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if obj is not None:
            addresses = urls(request, obj)
            snippet = (
                form_html(request, obj).strip()
                + f'\n<script src="{addresses["embed"]}" async></script>\n'
            )
            extra_context["webform_embed"] = {"snippet": snippet, "urls": addresses}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("regenerate"):
            obj.regenerate_key()
            messages.warning(
                request,
                gettext("The form has a new address: paste its new snippet into your site."),
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        stage = obj.starting_stage()
        asked = {f.name for f in obj.fields.all() if f.required}
        missing = [n for n in (stage.required_fields if stage else []) if n not in asked]
        if missing:
            messages.warning(
                request,
                gettext(
                    "The stage “%(stage)s” requires %(fields)s: add them to the form as "
                    "required fields, or submissions will be refused."
                )
                % {
                    "stage": stage.display_name,
                    "fields": "、".join(catalogue.label_of(n) for n in missing),
                },
            )
        if not services.form_fields(obj):
            messages.warning(request, gettext("The form has no fields yet."))


@admin.register(WebFormSubmission)
class WebFormSubmissionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "form_name", "outcome", "lead_link", "ip", "utm_source")
    list_filter = ("outcome", "form")
    search_fields = ("form_name", "ip")
    date_hierarchy = "created_at"
    fields = (
        "form",
        "form_name",
        "outcome",
        "lead_link",
        "created_at",
        "ip",
        "user_agent",
        "page",
        "referrer",
        "utm",
        "payload",
    )
    readonly_fields = fields

    @admin.display(description=_("lead"))
    def lead_link(self, obj: WebFormSubmission):
        if obj.lead_id is None:
            return "—"
        url = reverse("leads:detail", args=[obj.lead_id])
        return format_html('<a href="{}">{}</a>', url, obj.lead)

    @admin.display(description="utm_source")
    def utm_source(self, obj: WebFormSubmission) -> str:
        return (obj.utm or {}).get("utm_source", "")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
