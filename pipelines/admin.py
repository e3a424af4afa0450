"""Admin for the sales process: pipelines with their stages as ordered inlines (guides,
probabilities, time limits, required fields), and read-only lists of leads and deals.
Stages are assigned only by pipelines.services (DESIGN rule 3), never here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .config import pipeline_in_use, requirable_fields, stage_rule_errors, stages_in_use
from .models import Deal, Lead, Pipeline, PipelineKind, Stage, StageKind
from .stage_panels import StagePanel, stage_panels

# Tabler's colour names (the board's columns and badges use them).
COLORS = [
    ("blue", _("blue")),
    ("azure", _("azure")),
    ("indigo", _("indigo")),
    ("purple", _("purple")),
    ("pink", _("pink")),
    ("red", _("red")),
    ("orange", _("orange")),
    ("yellow", _("yellow")),
    ("lime", _("lime")),
    ("green", _("green")),
    ("teal", _("teal")),
    ("cyan", _("cyan")),
    ("secondary", _("grey")),
    ("dark", _("dark")),
]
CLOSED_PROBABILITY = {StageKind.WON: 100, StageKind.LOST: 0}


def _both_kinds_choices() -> list[tuple[str, str]]:
    """A new pipeline's kind is not known yet: every requirable field, by record type."""
    choices = []
    for kind, label in PipelineKind.choices:
        fields = [(name, f"{name_label}") for name, name_label in requirable_fields(kind)]
        choices.append((str(label), fields))
    return choices


# --- Stages ---------------------------------------------------------------------------


class StageInlineForm(forms.ModelForm):
    required_fields = forms.MultipleChoiceField(
        label=_("required fields"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "crm-checks"}),
        help_text=_("Fields a record must have filled before it may enter this stage."),
    )
    color = forms.ChoiceField(label=_("colour"), choices=COLORS, initial="blue")

    class Meta:
        model = Stage
        fields = (
            "name",
            "name_en",
            "order",
            "kind",
            "probability",
            "color",
            "time_limit_days",
            "required_fields",
            "guide",
            "guide_en",
        )
        widgets = {
            "name": forms.TextInput(attrs={"size": 12}),
            "name_en": forms.TextInput(attrs={"size": 12}),
            # Set by dragging the stages (static/crm/js/admin_stages.js).
            "order": forms.HiddenInput(attrs={"data-stage-order": ""}),
            "probability": forms.NumberInput(attrs={"min": 0, "max": 100}),
            "time_limit_days": forms.NumberInput(attrs={"min": 0}),
            "guide": forms.Textarea(attrs={"rows": 3}),
            "guide_en": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, record_kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        choices = requirable_fields(record_kind) if record_kind else _both_kinds_choices()
        offered = {
            name
            for choice in choices
            for name in ([choice[0]] if isinstance(choice[1], str) else [n for n, _l in choice[1]])
        }
        stored = [n for n in (self.instance.required_fields or []) if n not in offered]
        # A name no longer offered (a deleted custom field) stays visible until removed.
        choices = [*choices, *((n, gettext("%(name)s (unknown)") % {"name": n}) for n in stored)]
        self.fields["required_fields"].choices = choices
        color = self.instance.color
        if color and color not in dict(COLORS):
            self.fields["color"].choices = [*COLORS, (color, color)]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        expected = CLOSED_PROBABILITY.get(kind)
        if expected is not None and data.get("probability") != expected:
            self.add_error(
                "probability",
                gettext("A %(kind)s stage has a win probability of %(value)s%%.")
                % {"kind": StageKind(kind).label, "value": expected},
            )
        return data

    def clean_required_fields(self):
        return list(self.cleaned_data.get("required_fields") or [])


class StageFormSet(forms.BaseInlineFormSet):
    record_kind: str | None = None
    usage: dict[int, dict[str, int]] = {}

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        kwargs["record_kind"] = self.record_kind
        return kwargs

    def add_fields(self, form, index):
        super().add_fields(form, index)
        pk = form.instance.pk
        if pk and self.usage.get(pk) and forms.formsets.DELETION_FIELD_NAME in form.fields:
            field = form.fields[forms.formsets.DELETION_FIELD_NAME]
            field.disabled = True
            field.help_text = _("In use: move its records to another stage first.")

    def clean(self):
        super().clean()
        errors, live, names = [], [], set()
        kind = self.instance.kind
        offered = {n for n, _label in requirable_fields(kind)} if kind else set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            stage = form.instance
            if self.can_delete and self._should_delete_form(form):
                if stage.pk and self.usage.get(stage.pk):
                    errors.append(self._in_use_message(stage, self.usage[stage.pk]))
                continue
            data = form.cleaned_data
            name = data.get("name")
            if name in names:
                errors.append(
                    gettext("Two stages are called “%(name)s”; stage names must differ.")
                    % {"name": name}
                )
            names.add(name)
            live.append({"name": name, "kind": data.get("kind"), "probability": None})
            if data.get("kind") in CLOSED_PROBABILITY:
                live[-1]["probability"] = CLOSED_PROBABILITY[data["kind"]]  # checked per form
            if stage.pk and "kind" in form.changed_data:
                use = self.usage.get(stage.pk, {})
                if use.get("leads") or use.get("deals"):
                    errors.append(
                        gettext(
                            "“%(name)s” holds records: move them to another stage before "
                            "changing its kind."
                        )
                        % {"name": form.initial.get("name") or name}
                    )
            unknown = [
                n
                for n in data.get("required_fields") or []
                if kind
                and n not in offered
                and n not in (form.initial.get("required_fields") or [])
            ]
            if unknown:
                errors.append(
                    gettext("“%(stage)s”: %(names)s cannot be required for %(kind)s.")
                    % {
                        "stage": name,
                        "names": ", ".join(unknown),
                        "kind": PipelineKind(kind).label,
                    }
                )
        errors += stage_rule_errors(self.instance.name or "", live)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _in_use_message(stage: Stage, use: dict[str, int]) -> str:
        parts = []
        if use.get("leads"):
            parts.append(gettext("%(n)d leads") % {"n": use["leads"]})
        if use.get("deals"):
            parts.append(gettext("%(n)d deals") % {"n": use["deals"]})
        if use.get("history"):
            parts.append(gettext("%(n)d stage moves in the history") % {"n": use["history"]})
        return gettext(
            "“%(stage)s” is in use (%(uses)s) and cannot be deleted. Move its records to "
            "another stage first; a stage with history is kept — rename or reorder it instead."
        ) % {"stage": stage.name, "uses": "、".join(parts)}


class StageInline(admin.StackedInline):
    """One card per stage (templates/admin/pipelines/stage_inline.html), dragged to
    reorder; it fits a 1,280 px screen and a phone."""

    model = Stage
    template = "admin/pipelines/stage_inline.html"
    form = StageInlineForm
    formset = StageFormSet
    extra = 0
    ordering = ("order", "id")
    fields = (
        "name",
        "name_en",
        "order",
        "kind",
        "probability",
        "color",
        "time_limit_days",
        "required_fields",
        "guide",
        "guide_en",
        "in_use",
    )
    readonly_fields = ("in_use",)
    # A pipeline of more stages is no pipeline; the bound also keeps a posted
    # TOTAL_FORMS of 2**63 from building (and rendering) Django's 2,000 forms.
    max_num = 50

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("absolute_max", self.max_num)
        formset = super().get_formset(request, obj, **kwargs)
        formset.record_kind = obj.kind if obj is not None and obj.pk else None
        self._usage = stages_in_use(obj.stages.all()) if obj is not None and obj.pk else {}
        formset.usage = self._usage
        return formset

    @admin.display(description=_("in use by"))
    def in_use(self, obj):
        if obj is None or not obj.pk:
            return "—"
        use = getattr(self, "_usage", {}).get(obj.pk, {})
        if not use:
            return gettext("not used")
        records = use.get("leads", 0) + use.get("deals", 0)
        return gettext("%(records)d records, %(moves)d stage moves") % {
            "records": records,
            "moves": use.get("history", 0),
        }

    # Columns of other apps' stage panels (pipelines.stage_panels), read-only, after the
    # stage's own fields, each named "stage_panel_<key>" and read as an attribute of the
    # inline (an inline is made per request, so it knows the request it renders).

    def get_fields(self, request, obj=None):
        self._request = request
        return [*super().get_fields(request, obj), *_panel_names()]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *_panel_names()]

    def __getattr__(self, name):
        panel = _panel_named(name)
        if panel is None:
            raise AttributeError(name)
        request = self.__dict__.get("_request")

        def column(obj):
            if obj is None or not obj.pk or request is None:
                return "—"
            return panel.render(obj, request)

        column.__name__ = name
        return admin.display(description=panel.title)(column)


PANEL_PREFIX = "stage_panel_"


def _panel_names() -> list[str]:
    return [PANEL_PREFIX + panel.key for panel in stage_panels()]


def _panel_named(name: str) -> StagePanel | None:
    if not name.startswith(PANEL_PREFIX):
        return None
    key = name[len(PANEL_PREFIX) :]
    return next((panel for panel in stage_panels() if panel.key == key), None)


# --- Pipelines ------------------------------------------------------------------------


class PipelineForm(forms.ModelForm):
    class Meta:
        model = Pipeline
        fields = ("kind", "name", "name_en", "order", "is_default", "is_active")

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or self.instance.kind
        if data.get("is_default") and kind:
            other = Pipeline.objects.filter(kind=kind, is_default=True)
            if self.instance.pk:
                other = other.exclude(pk=self.instance.pk)
            other = other.first()
            if other is not None:
                self.add_error(
                    "is_default",
                    gettext(
                        "“%(other)s” is the default pipeline for %(kind)s; untick it there first."
                    )
                    % {"other": other.name, "kind": PipelineKind(kind).label},
                )
            if data.get("is_active") is False:
                self.add_error("is_active", gettext("The default pipeline must stay active."))
        name = data.get("name")
        if name and kind:
            same = Pipeline.objects.filter(kind=kind, name=name)
            if self.instance.pk:
                same = same.exclude(pk=self.instance.pk)
            if same.exists():
                self.add_error(
                    "name",
                    gettext("There is already a pipeline called “%(name)s”.") % {"name": name},
                )
        return data


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    form = PipelineForm
    list_display = ("name", "name_en", "kind", "order", "is_default", "is_active", "stage_count")
    list_display_links = ("name",)
    list_filter = ("kind", "is_active")
    search_fields = ("name", "name_en")
    ordering = ("kind", "order", "id")
    inlines = [StageInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_stages=Count("stages"))

    def get_readonly_fields(self, request, obj=None):
        # Its stages' required fields and its records are of one kind.
        return ("kind",) if obj is not None and obj.pk else ()

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would skip the "in use" check
        return actions

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.pk and pipeline_in_use(obj):
            return False
        return super().has_delete_permission(request, obj)

    class Media:
        js = ("vendor/sortablejs/Sortable.min.js", "crm/js/admin_stages.js")

    @admin.display(description=_("stages"), ordering="_stages")
    def stage_count(self, obj):
        return obj._stages


# --- Leads and deals: read-only ---------------------------------------------------------


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    """Leads and deals are worked on their own pages, where access, field permissions
    and the stage service apply; the admin only lists them (visible ones only)."""

    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return self.model.objects.visible_to(request.user).select_related(*self.list_select_related)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(ReadOnlyRecordAdmin):
    list_display = (
        "__str__",
        "phone",
        "owner",
        "pipeline",
        "stage",
        "status",
        "lost_reason",
        "created_at",
    )
    list_filter = ("status", "stage", "source")
    list_select_related = ("owner", "pipeline", "stage", "lost_reason")
    search_fields = ("person_name", "company_name", "phone", "email")
    date_hierarchy = "created_at"


@admin.register(Deal)
class DealAdmin(ReadOnlyRecordAdmin):
    list_display = (
        "title",
        "customer",
        "amount",
        "owner",
        "pipeline",
        "stage",
        "status",
        "expected_close_date",
    )
    list_filter = ("status", "pipeline", "stage")
    list_select_related = ("customer", "owner", "pipeline", "stage")
    search_fields = ("title", "customer__name")
    date_hierarchy = "created_at"
