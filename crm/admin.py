"""Admin for the CRM's configuration: data dictionaries and their items, custom fields,
tags and saved views. Items and fields in use are deactivated, not deleted, after the
admin has seen where they are used (crm.fields.impact)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.sheets import SheetAdminMixin

from .config.log import acting_as
from .fields import impact
from .models import Change, CustomField, Dictionary, DictionaryItem, FieldType, SavedView, Tag
from .resources import DictionaryItemResource

CONFIRM_LABEL = _("I have read where it is used")
CHOICE_TYPES = [FieldType.CHOICE, FieldType.MULTI_CHOICE]


def confirm_field() -> forms.BooleanField:
    return forms.BooleanField(
        label=CONFIRM_LABEL,
        required=False,
        help_text=_("Needed to deactivate something that is still in use."),
    )


def impact_error(name, groups: list[impact.UsageGroup]) -> ValidationError:
    """ "Tick the box": the message listing every usage of `name`."""
    lines = impact.describe(groups)
    head = gettext(
        "“%(name)s” is still used; read where below and tick “%(confirm)s” to deactivate it."
    ) % {"name": name, "confirm": CONFIRM_LABEL}
    return ValidationError([head, *lines])


class DeactivateActionMixin:
    """A "Deactivate" action that first shows, like Django's delete confirmation, where
    each selected object is used, and deactivates only once the admin confirms."""

    deactivate_template = "admin/crm/deactivate_confirmation.html"

    def usages_of(self, obj):  # pragma: no cover - each admin says how
        raise NotImplementedError

    def deactivate_selected(self, request, queryset):
        opts = self.model._meta
        targets = list(queryset.filter(is_active=True))
        if not targets:
            self.message_user(request, _("Nothing to deactivate: they are inactive already."))
            return None
        if request.POST.get("post") == "yes":
            for obj in targets:
                obj.is_active = False
                obj.save()
                self.log_change(request, obj, [{"changed": {"fields": ["is_active"]}}])
            self.message_user(
                request,
                ngettext(
                    "Deactivated %(count)d %(name)s.",
                    "Deactivated %(count)d %(name)s.",
                    len(targets),
                )
                % {
                    "count": len(targets),
                    "name": opts.verbose_name if len(targets) == 1 else opts.verbose_name_plural,
                },
                messages.SUCCESS,
            )
            return None
        rows = [(obj, self.usages_of(obj)) for obj in targets]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"),
            "subtitle": None,
            "opts": opts,
            "rows": rows,
            "any_usage": any(groups for _obj, groups in rows),
            "queryset": queryset,
            "action_name": "deactivate_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.deactivate_template, context)

    deactivate_selected.short_description = _("Deactivate selected %(verbose_name_plural)s")
    deactivate_selected.allowed_permissions = ("change",)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["usages"] = self.usages_of(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Data dictionaries -------------------------------------------------------------------


class DictionaryItemInlineForm(forms.ModelForm):
    class Meta:
        model = DictionaryItem
        fields = ("code", "label", "label_en", "order", "color", "is_default", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The code is stored on records and in custom values: fixed once saved.
            self.fields["code"].disabled = True


class DictionaryItemFormSet(forms.BaseInlineFormSet):
    usage_counts: dict[int, int] = {}

    def add_fields(self, form, index):
        super().add_fields(form, index)
        pk = form.instance.pk
        if pk and self.usage_counts.get(pk) and forms.formsets.DELETION_FIELD_NAME in form.fields:
            field = form.fields[forms.formsets.DELETION_FIELD_NAME]
            field.disabled = True
            field.help_text = _("In use: deactivate it instead.")

    def clean(self):
        super().clean()
        defaults = []
        in_use_deleted = []
        deactivated = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            item = form.instance
            if self.can_delete and self._should_delete_form(form):
                if item.pk and self.usage_counts.get(item.pk):
                    in_use_deleted.append(item)
                continue
            if form.cleaned_data.get("is_default"):
                defaults.append(form.cleaned_data.get("label") or form.cleaned_data.get("code"))
            if item.pk and form.initial.get("is_active") and not form.cleaned_data.get("is_active"):
                deactivated.append(item)
        errors = []
        if len(defaults) > 1:
            errors.append(
                gettext("Only one item may be the default; now %(items)s are.")
                % {"items": "、".join(str(d) for d in defaults)}
            )
        for item in in_use_deleted:
            errors.append(
                gettext("“%(item)s” is in use and cannot be deleted; deactivate it instead.")
                % {"item": item.label}
            )
        if not self.data.get("confirm_impact"):
            for item in deactivated:
                groups = impact.usages_of_item(DictionaryItem.objects.get(pk=item.pk))
                if groups:
                    errors.extend(impact_error(item.label, groups).messages)
        if errors:
            raise ValidationError(errors)


class DictionaryItemInline(admin.TabularInline):
    model = DictionaryItem
    form = DictionaryItemInlineForm
    formset = DictionaryItemFormSet
    fields = ("code", "label", "label_en", "order", "color", "is_default", "is_active", "in_use")
    readonly_fields = ("in_use",)
    extra = 0
    ordering = ("order", "id")
    show_change_link = True
    # Django's own bound on the items one save takes (an industry list of a few hundred
    # fits); made absolute, a posted TOTAL_FORMS of 2**63 builds (and renders) 1,000 forms
    # with errors instead of 2,000.
    max_num = 1000

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("absolute_max", self.max_num)
        formset = super().get_formset(request, obj, **kwargs)
        self._counts = dict(impact.item_usage_counts(obj)) if obj is not None and obj.pk else {}
        formset.usage_counts = self._counts
        return formset

    @admin.display(description=_("in use by"))
    def in_use(self, obj):
        if obj is None or not obj.pk:
            return "—"
        return getattr(self, "_counts", {}).get(obj.pk, 0)


class DictionaryForm(forms.ModelForm):
    confirm_impact = confirm_field()

    class Meta:
        model = Dictionary
        fields = ("code", "name")


@admin.register(Dictionary)
class DictionaryAdmin(admin.ModelAdmin):
    form = DictionaryForm
    list_display = ("name", "code", "item_count")
    search_fields = ("name", "code")
    inlines = [DictionaryItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_items=Count("items"))

    def get_fields(self, request, obj=None):
        return ("code", "name", "confirm_impact") if obj else ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("items"), ordering="_items")
    def item_count(self, obj):
        return obj._items


class DictionaryItemAdminForm(forms.ModelForm):
    confirm_impact = confirm_field()

    class Meta:
        model = DictionaryItem
        fields = (
            "dictionary",
            "code",
            "label",
            "label_en",
            "order",
            "color",
            "is_default",
            "is_active",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["dictionary"].disabled = True
            self.fields["code"].disabled = True

    def clean(self):
        data = super().clean()
        dictionary = data.get("dictionary")
        if data.get("is_default") and dictionary is not None:
            others = DictionaryItem.objects.filter(dictionary=dictionary, is_default=True)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            other = others.first()
            if other is not None:
                self.add_error(
                    "is_default",
                    _("Only one item may be the default; “%(item)s” is already.")
                    % {"item": other.label},
                )
        if self.instance.pk and self.instance.is_active and not data.get("is_active"):
            groups = impact.usages_of_item(self.instance)
            if groups and not data.get("confirm_impact"):
                self.add_error("confirm_impact", impact_error(self.instance.label, groups))
        return data


@admin.register(DictionaryItem)
class DictionaryItemAdmin(SheetAdminMixin, DeactivateActionMixin, admin.ModelAdmin):
    form = DictionaryItemAdminForm
    resource_classes = [DictionaryItemResource]
    import_help = (
        _(
            "One row per item, the first row holding the headers, in Chinese or English. "
            "An item is found by its dictionary and code: an existing one is updated, a "
            "new code adds an item. Nothing is deleted; a column left out of the file "
            "leaves that field as it is, and a blank cell empties it (排序 and 启用 aside)."
        ),
        _(
            "An item still in use is not deactivated by an import: use the “Deactivate” "
            "action of this list, which shows where it is used first. Nothing is imported "
            "until every row passes. CSV files may be in UTF-8 or GBK (as Excel saves them)."
        ),
    )
    list_display = ("label", "label_en", "code", "dictionary", "order", "is_default", "is_active")
    list_filter = ("dictionary", "is_active")
    list_select_related = ("dictionary",)
    search_fields = ("label", "label_en", "code")
    ordering = ("dictionary", "order", "id")
    actions = ["deactivate_selected"]
    change_form_template = "admin/crm/impact_change_form.html"

    def usages_of(self, obj):
        return impact.usages_of_item(obj)

    def process_dataset(self, dataset, form, request, **kwargs):
        # The configuration log names the import as how the items changed.
        with acting_as(request.user, "admin import"):
            return super().process_dataset(dataset, form, request, **kwargs)

    def get_fields(self, request, obj=None):
        fields = list(DictionaryItemAdminForm.Meta.fields)
        return [*fields, "confirm_impact"] if obj is not None else fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting in bulk would skip the "in use" check of each item.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.pk and impact.item_usage_counts(obj.dictionary).get(obj.pk):
            return False
        return super().has_delete_permission(request, obj)


# --- Custom fields -------------------------------------------------------------------------


class CustomFieldAdminForm(forms.ModelForm):
    confirm_impact = confirm_field()

    class Meta:
        model = CustomField
        fields = (
            "record_type",
            "key",
            "label",
            "label_en",
            "field_type",
            "dictionary",
            "required",
            "unique",
            "max_length",
            "min_value",
            "max_value",
            "pattern",
            "pattern_message",
            "pattern_message_en",
            "default",
            "help_text",
            "help_text_en",
            "section",
            "order",
            "is_active",
            "show_in_list",
            "filterable",
        )

    def clean(self):
        data = super().clean()
        cf = self.instance
        if cf.pk and cf.is_active and "is_active" in data and not data["is_active"]:
            groups = impact.usages_of_field(cf)
            if groups and not data.get("confirm_impact"):
                self.add_error("confirm_impact", impact_error(cf.display_label, groups))
        return data


@admin.register(CustomField)
class CustomFieldAdmin(DeactivateActionMixin, admin.ModelAdmin):
    form = CustomFieldAdminForm
    list_display = (
        "label",
        "record_type",
        "key",
        "field_type",
        "required",
        "unique",
        "is_active",
        "show_in_list",
        "filterable",
        "order",
    )
    list_display_links = ("label",)
    list_filter = (
        "record_type",
        "field_type",
        "is_active",
        "required",
        "unique",
        "show_in_list",
        "filterable",
    )
    search_fields = ("label", "label_en", "key")
    ordering = ("record_type", "order", "id")
    list_select_related = ("dictionary",)
    actions = ["deactivate_selected"]
    change_form_template = "admin/crm/customfield/change_form.html"

    def usages_of(self, obj):
        return impact.usages_of_field(obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        # A field that is used anywhere (values, views, permissions...) is deactivated.
        if obj is not None and obj.pk and impact.usages_of_field(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        display = [
            "help_text",
            "help_text_en",
            "section",
            "order",
            "is_active",
            "show_in_list",
            "filterable",
        ]
        if obj is not None:
            display.append("confirm_impact")
        return (
            (
                _("Identity"),
                {
                    "fields": (
                        "record_type",
                        "key",
                        "label",
                        "label_en",
                        "field_type",
                        "dictionary",
                    )
                },
            ),
            (
                _("Rules"),
                {
                    "fields": (
                        "required",
                        "unique",
                        "max_length",
                        ("min_value", "max_value"),
                        "pattern",
                        "pattern_message",
                        "pattern_message_en",
                        "default",
                    ),
                    "description": _(
                        "Changing the type of a field that holds values converts them, or is "
                        "refused with the values that do not convert."
                    ),
                },
            ),
            (_("Display"), {"fields": display}),
        )

    def get_readonly_fields(self, request, obj=None):
        return ("record_type", "key") if obj is not None else ()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["choice_types"] = [str(t) for t in CHOICE_TYPES]
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- Tags and saved views ---------------------------------------------------------------------


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "color")
    search_fields = ("name",)


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    list_display = ("name", "record_type", "owner", "shared", "created_at")
    list_filter = ("record_type", "shared")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username", "owner__name")


# --- Record events (the outbox) ------------------------------------------------------------


class DeliveryFilter(admin.SimpleListFilter):
    title = _("delivery")
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [
            ("pending", _("Waiting")),
            ("failing", _("Failing")),
            ("given_up", _("Given up")),
        ]

    def queryset(self, request, queryset):
        from .events import MAX_ATTEMPTS

        value = self.value()
        if value == "pending":
            return queryset.filter(delivered_at__isnull=True, delivery_attempts=0)
        if value == "failing":
            return queryset.filter(
                delivered_at__isnull=True,
                delivery_attempts__gt=0,
                delivery_attempts__lt=MAX_ATTEMPTS,
            )
        if value == "given_up":
            return queryset.filter(delivered_at__isnull=True, delivery_attempts__gte=MAX_ATTEMPTS)
        return queryset


@admin.register(Change)
class RecordEventAdmin(admin.ModelAdmin):
    """Record events as written: read-only, to see what subscribers get and to hand
    on again events whose delivery was given up."""

    list_display = (
        "created_at",
        "kind",
        "record_type",
        "record_id",
        "user",
        "actor_type",
        "actor_name",
        "delivered_at",
        "delivery_attempts",
    )
    list_filter = (DeliveryFilter, "kind", "actor_type", "record_type")
    list_select_related = ("user", "record_type")
    date_hierarchy = None
    show_full_result_count = False
    actions = ["deliver_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Hand the chosen events on again"), permissions=["view"])
    def deliver_again(self, request, queryset):
        from . import events

        ids = list(queryset.filter(delivered_at__isnull=True).values_list("pk", flat=True)[:500])
        Change.objects.filter(pk__in=ids).update(delivery_attempts=0)
        delivered = events.deliver(ids)
        self.message_user(
            request,
            ngettext("%(n)s event delivered.", "%(n)s events delivered.", delivered)
            % {"n": delivered},
            messages.SUCCESS if delivered == len(ids) else messages.WARNING,
        )
