"""Admin for automation: rules with their ordered actions (checked as they are saved,
activation confirmed when it would act on many records, a page to try a rule), the runs
log with a retry, email templates and notifications."""

from __future__ import annotations

import json
import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, json_script
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Department, Role, User
from crm.dictionary_copy import dictionary_items_by_id
from crm.params import parse_id
from pipelines.models import Stage

from . import actions as action_registry
from . import conditions as conds
from . import engine, rules
from .models import (
    ActionRun,
    EmailTemplate,
    Notification,
    RecordType,
    Rule,
    RuleAction,
    RuleRun,
    RunStatus,
    ScheduledAction,
)
from .records import automated_type


class PrettyJSONWidget(forms.Textarea):
    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 4, "cols": 80, "class": "vLargeTextField", **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        return json.dumps(value, ensure_ascii=False, indent=1) if value not in (None, "") else ""


# --- The guided builder ----------------------------------------------------------------
#
# automation/static/automation/builder.js turns the JSON textareas of the rule form (the
# trigger's settings, the conditions, each action's settings) into inputs, and writes the
# same JSON back into them: the textarea stays what is posted and checked by the clean
# methods below, and without JavaScript it is edited as before. What the script needs
# (fields by record type, operators, people, stages...) and its labels are put into the
# page by the conditions' widget as one json_script block.

CATALOGUE_ID = "automation-builder-catalogue"
# More active people than this and a person is typed (a user name), not chosen.
BUILDER_USER_LIMIT = 500


def builder_labels() -> dict[str, str]:
    return {
        "show_json": gettext("Show JSON"),
        "json_unreadable": gettext(
            "The builder cannot show these settings; edit the JSON below instead."
        ),
        "match": gettext("Match"),
        "match_all": gettext("All of these conditions"),
        "match_any": gettext("Any of these conditions"),
        "group_all": gettext("all of"),
        "group_any": gettext("any of"),
        "group": gettext("Group"),
        "no_conditions": gettext("No conditions: the rule acts on every record."),
        "add_condition": gettext("Add a condition"),
        "add_group": gettext("Add a group"),
        "remove": gettext("Remove"),
        "field": gettext("Field"),
        "operator": gettext("Operator"),
        "value": gettext("Value"),
        "choose": gettext("— choose —"),
        "unknown_field": gettext("%(field)s (unknown field)"),
        "days": gettext("days"),
        "hours": gettext("hours"),
        "minutes": gettext("minutes"),
        "yes": gettext("yes"),
        "no": gettext("no"),
        "list_hint": gettext("Several values: separate them with commas."),
        "multi_hint": gettext("Hold Ctrl (⌘ on a Mac) to choose several."),
        "no_settings": gettext("This trigger has no settings."),
        "to_value": gettext("Changed to"),
        "any_value": gettext("— any value —"),
        "use_time_limit": gettext("Use the stage's time limit"),
        "time_in_stage": gettext("In the stage for"),
        "no_activity_days": gettext("No follow-up for (days)"),
        "date_field": gettext("Date field"),
        "at": gettext("At (time of day)"),
        "weekday": gettext("Day of the week"),
        "every_day": gettext("Every day"),
        "weekdays": [
            gettext("Monday"),
            gettext("Tuesday"),
            gettext("Wednesday"),
            gettext("Thursday"),
            gettext("Friday"),
            gettext("Saturday"),
            gettext("Sunday"),
        ],
        "title": gettext("Title"),
        "notes": gettext("Notes"),
        "body": gettext("Content"),
        "assignee": gettext("Assignee"),
        "recipients": gettext("Send to"),
        "owner": gettext("The owner"),
        "manager": gettext("The owner's manager"),
        "user": gettext("A person"),
        "role": gettext("A role in the owner's department"),
        "person": gettext("Person"),
        "role_name": gettext("Role"),
        "due_in": gettext("Due in"),
        "working_hours": gettext("Count working hours only"),
        "complete_on_leave": gettext("Complete it when the record leaves the stage"),
        "assign_to": gettext("Assign to"),
        "round_robin": gettext("Take turns in a department"),
        "fewest": gettext("Whoever in a department has the fewest open records"),
        "department": gettext("Department"),
        "new_value": gettext("New value"),
        "clear_value": gettext("— clear the field —"),
        "stage": gettext("Stage"),
        "tag": gettext("Tag"),
        "reason": gettext("Reason"),
        "template": gettext("Email template"),
        "to_contact": gettext("The record's contact"),
        "to_owner": gettext("The owner"),
        "wait": gettext("Wait"),
        "placeholders": gettext("Placeholders such as {{ record }}, {{ owner }} are filled in."),
        "other_action": gettext("Settings of this action are edited as JSON below."),
    }


def _options(ref: conds.FieldRef, items: dict) -> list | None:
    """The values a field may be compared with, as [stored value, label] pairs."""
    if ref.kind == conds.BOOL:
        return [[True, gettext("yes")], [False, gettext("no")]]
    if ref.kind == conds.ITEM:
        key = ("code", ref.dictionary)
    elif ref.kind in (conds.CHOICE, conds.MULTI) and ref.custom is not None:
        key = ("id", ref.custom.dictionary_id)
    elif ref.kind == conds.CHOICE and ref.model_field is not None:
        return [[value, str(label)] for value, label in ref.model_field.choices]
    else:
        return None
    if key not in items:
        # From the process's copy of every item, in ("order", "id") order: no query.
        items[key] = [
            [item.code, str(item)]
            for item in dictionary_items_by_id().values()
            if item.is_active
            and (item.dictionary.code if key[0] == "code" else item.dictionary_id) == key[1]
        ]
    return items[key]


def builder_catalogue() -> dict:
    """Everything the builder offers, for every record type (the record type is chosen
    in the same form): the fields a condition, trigger or action may name with their
    kinds and values, the operators of each kind, people, roles, departments, stages,
    email templates and the action types."""
    items: dict = {}
    fields = {}
    for record_type in RecordType.values:
        fields[record_type] = [
            {
                "name": ref.name,
                "label": ref.label,
                "kind": ref.kind,
                "options": _options(ref, items),
                "settable": ref.kind != conds.TAGS
                and not (ref.model_field is not None and ref.name in action_registry.NOT_SETTABLE),
            }
            for ref in conds.fields_of(record_type)
        ]
    people = list(
        User.objects.filter(is_active=True)
        .order_by("username")
        .values_list("username", "name")[: BUILDER_USER_LIMIT + 1]
    )
    stages: dict[str, list] = {"lead": [], "deal": []}
    for stage in Stage.objects.select_related("pipeline").order_by(
        "pipeline__kind", "pipeline__order", "pipeline_id", "order", "id"
    ):
        if stage.pipeline.kind in stages:
            stages[stage.pipeline.kind].append([stage.pk, f"{stage.pipeline} · {stage}"])
    return {
        "fields": fields,
        "operators": [[op, str(label)] for op, label in conds.OPERATORS.items()],
        "ops_by_kind": {
            kind: [op for op in conds.OPERATORS if op in ops]
            for kind, ops in conds.OPS_BY_KIND.items()
        },
        "no_value": sorted(conds.NO_VALUE),
        "list_ops": sorted(conds.LIST_OPS),
        "day_ops": sorted(conds.DAY_OPS),
        "users": [
            [username, f"{name} ({username})" if name else username]
            for username, name in people[:BUILDER_USER_LIMIT]
        ],
        "users_complete": len(people) <= BUILDER_USER_LIMIT,
        "roles": list(Role.objects.order_by("name").values_list("name", flat=True)),
        "departments": list(
            Department.objects.order_by("name").values_list("name", flat=True).distinct()
        ),
        "stages": stages,
        "email_templates": list(
            EmailTemplate.objects.order_by("name").values_list("name", flat=True)
        ),
        "actions": {
            a.key: sorted(a.record_types) if a.record_types is not None else None
            for a in action_registry.action_types()
        },
        "labels": builder_labels(),
    }


class BuilderWidget(PrettyJSONWidget):
    """A JSON textarea the builder script enhances: `builder` is "conditions",
    "trigger" or "action"."""

    class Media:
        js = ("automation/builder.js",)
        css = {"all": ("automation/builder.css",)}

    def __init__(self, builder: str, attrs=None):
        super().__init__(attrs={"data-builder": builder, **(attrs or {})})


class ConditionsWidget(BuilderWidget):
    """The conditions' textarea, followed by the builder's catalogue (once a page)."""

    def __init__(self, attrs=None):
        super().__init__("conditions", attrs)

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        return html + json_script(builder_catalogue(), CATALOGUE_ID)


def _action_choices():
    return [(a.key, a.label) for a in action_registry.action_types()]


class RuleActionForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("action"), choices=_action_choices)

    class Meta:
        model = RuleAction
        fields = ("order", "kind", "params")
        widgets = {"params": BuilderWidget("action")}

    def has_changed(self):
        # The kind's select always posts a choice: an extra row whose settings were never
        # filled in is not an action to add (nor one to check and refuse).
        changed = self.changed_data
        if self.instance.pk is None and set(changed) <= {"kind"}:
            return False
        return bool(changed)


class RuleActionFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        record_type = getattr(self, "record_type", None)
        if not record_type or any(self.errors):
            return
        errors = []
        for index, form in enumerate(self.forms, start=1):
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            kind = form.cleaned_data.get("kind")
            try:
                form.cleaned_data["params"] = action_registry.clean_params(
                    kind, record_type, form.cleaned_data.get("params") or {}
                )
                form.instance.params = form.cleaned_data["params"]
            except ValidationError as exc:
                errors.append(
                    gettext("Action %(n)s (%(action)s): %(error)s")
                    % {
                        "n": index,
                        "action": action_registry.action_label(kind),
                        "error": " ".join(exc.messages),
                    }
                )
        if errors:
            raise ValidationError(errors)


class RuleActionInline(admin.StackedInline):
    model = RuleAction
    form = RuleActionForm
    formset = RuleActionFormSet
    extra = 1
    fields = ("order", "kind", "params")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        record_type = request.POST.get("record_type") or (obj.record_type if obj else None)

        class Bound(formset):
            pass

        Bound.record_type = record_type
        return Bound


class RuleForm(forms.ModelForm):
    confirm_activation = forms.BooleanField(
        label=_("Yes, act on the records it matches now"), required=False
    )

    class Meta:
        model = Rule
        fields = (
            "name",
            "description",
            "record_type",
            "pipeline",
            "stage",
            "trigger",
            "trigger_params",
            "conditions",
            "is_active",
        )
        widgets = {"trigger_params": BuilderWidget("trigger"), "conditions": ConditionsWidget}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        data = super().clean()
        record_type = data.get("record_type")
        trigger = data.get("trigger")
        if not record_type or not trigger:
            return data
        stage, pipeline = data.get("stage"), data.get("pipeline")
        if stage is not None:
            if pipeline is None:
                data["pipeline"] = pipeline = stage.pipeline
            elif stage.pipeline_id != pipeline.pk:
                self.add_error("stage", _("The stage belongs to another pipeline."))
        if pipeline is not None and pipeline.kind != record_type:
            self.add_error("pipeline", _("Choose a pipeline of this record type."))
        try:
            data["trigger_params"] = rules.clean_trigger(
                record_type, trigger, data.get("trigger_params") or {}, stage=stage
            )
        except ValidationError as exc:
            self.add_error("trigger_params", exc)
        try:
            data["conditions"] = conds.clean_conditions(record_type, data.get("conditions"))
        except ValidationError as exc:
            self.add_error("conditions", exc)
        if self.errors:
            return data
        was_active = (
            bool(self.instance.pk)
            and Rule.objects.filter(pk=self.instance.pk, is_active=True).exists()
        )
        if data.get("is_active") and not was_active and not data.get("confirm_activation"):
            probe = Rule(
                record_type=record_type,
                pipeline=pipeline,
                stage=stage,
                trigger=trigger,
                conditions=data["conditions"],
            )
            count = rules.needs_confirmation(probe, self.user)
            if count is not None:
                self.add_error(
                    "confirm_activation",
                    _(
                        "Its conditions match %(count)s existing records now. Tick the box "
                        "to activate it anyway, or save it inactive and try it first."
                    )
                    % {"count": f"{count:,}"},
                )
        return data


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    inlines = [RuleActionInline]
    list_display = (
        "name",
        "record_type",
        "stage",
        "trigger",
        "is_active",
        "try_link",
        "updated_at",
    )
    list_filter = ("is_active", "record_type", "trigger")
    search_fields = ("name", "description")
    actions = ("deactivate",)
    fieldsets = (
        (None, {"fields": ("name", "description", "record_type", "pipeline", "stage")}),
        (
            pgettext_lazy("automation rule", "When"),
            {
                "fields": ("trigger", "trigger_params"),
                "description": _(
                    'Settings by trigger: field changed {"field": "cf_level", "to": "vip"}; '
                    'time in stage {"days": 3} or {"hours": 4} or {"use_time_limit": true}; no '
                    'follow-up {"days": 30}; anniversary {"field": "birthday", "at": "09:00"}; '
                    'schedule {"at": "09:00", "weekday": 1}.'
                ),
            },
        ),
        (
            pgettext_lazy("automation rule", "If"),
            {
                "fields": ("conditions",),
                "description": _(
                    '{"match": "all", "conditions": [{"field": "level", "op": "ne", '
                    '"value": "vip"}, {"match": "any", "conditions": [...]}]} — fields by key, '
                    "dictionary items by code. Operators: eq, ne, in, not_in, contains, empty, "
                    "not_empty, gt, lt, within_next, within_last."
                ),
            },
        ),
        (
            pgettext_lazy("automation rule", "Active"),
            {"fields": ("is_active", "confirm_activation")},
        ),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        user = request.user

        class Bound(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=user, **kw)

        return Bound

    def get_changeform_initial_data(self, request):
        # Plain fields (?record_type=deal&pipeline=3&stage=12) are pre-filled by Django;
        # a stage robot's pipeline and record type follow from its stage, and an id that
        # names nothing is dropped.
        from .stage_robots import robot_stage

        initial = super().get_changeform_initial_data(request)
        for name in ("pipeline", "stage"):
            if name in initial and parse_id(initial[name]) is None:
                del initial[name]
        stage = robot_stage(request.GET.get("stage"))
        if stage is not None:
            initial.update(
                record_type=stage.pipeline.kind, pipeline=stage.pipeline_id, stage=stage.pk
            )
        preset = ROBOT_TEMPLATES.get(request.GET.get("template"))
        if preset:
            initial.update(preset["rule"])
            if stage is not None:
                initial["name"] = (
                    gettext("%(stage)s: %(robot)s")
                    % {"stage": stage.name, "robot": preset["rule"]["name"]}
                )[:100]
        return initial

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        preset = ROBOT_TEMPLATES.get(request.GET.get("template"))
        # On the add page `obj` is the form's new, unsaved rule.
        if preset and request.method == "GET" and (obj is None or obj.pk is None):
            kwargs["initial"] = [
                {"order": i, "kind": kind, "params": params}
                for i, (kind, params) in enumerate(preset["actions"])
            ]
        return kwargs

    def get_inline_instances(self, request, obj=None):
        instances = super().get_inline_instances(request, obj)
        preset = ROBOT_TEMPLATES.get(request.GET.get("template"))
        if preset and obj is None:
            for inline in instances:
                inline.extra = len(preset["actions"])
        return instances

    def save_model(self, request, obj, form, change):
        if obj.created_by_id is None:
            # The id, not request.user (a lazy object the configuration log cannot read).
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)

    @admin.display(description=_("try"))
    def try_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:automation_rule_try", args=[obj.pk]),
            gettext("Try"),
        )

    @admin.action(description=_("Deactivate the selected rules"))
    def deactivate(self, request, queryset):
        for rule in queryset:
            rule.is_active = False
            rule.save(update_fields=["is_active", "updated_at"])

    def get_urls(self):
        return [
            path(
                "<path:object_id>/try/",
                self.admin_site.admin_view(self.try_view),
                name="automation_rule_try",
            ),
            *super().get_urls(),
        ]

    def try_view(self, request, object_id):
        rule_id = parse_id(object_id)
        rule = (
            Rule.objects.filter(pk=rule_id).select_related("pipeline", "stage").first()
            if rule_id
            else None
        )
        if rule is None or not self.has_view_permission(request, rule):
            raise Http404
        spec = automated_type(rule.record_type)
        matches = rules.matching(rule, request.user)
        count = rules.match_count(rule, request.user)
        trial = None
        record_error = ""
        raw = request.GET.get("record", "")
        if raw:
            record_id = parse_id(raw)
            record = (
                spec.model.objects.visible_to(request.user).filter(pk=record_id).first()
                if record_id
                else None
            )
            if record is None:
                record_error = gettext("No record #%(id)s that you may see.") % {"id": raw[:20]}
            else:
                trial = rules.try_on(rule, record)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Try “%(rule)s”") % {"rule": rule},
            "rule": rule,
            "count": count,
            "capped": count >= 10000,
            "first": [(r, spec.url(r)) for r in matches[:20]],
            "trial": trial,
            "record_error": record_error,
            "record_value": raw[:20],
            "conditions": [
                conds.describe_leaf(rule.record_type, leaf)
                for leaf in conds.leaves(rule.conditions)
            ],
            "runs": rule.runs.order_by("-created_at")[:20],
        }
        return TemplateResponse(request, "admin/automation/rule/try.html", context)


# Stage robot templates offered on a stage's settings (?template=...&stage=...).
ROBOT_TEMPLATES = {
    "owner_task": {
        "label": _("Task for the owner"),
        "rule": {"trigger": "stage_entered", "name": _("Task for the owner")},
        "actions": [
            (
                "create_task",
                {
                    "title": "跟进 {{ record }}",
                    "assignee": {"type": "owner"},
                    "due": {"amount": 1, "unit": "days"},
                    "working_hours": True,
                    "complete_on_leave": True,
                },
            ),
        ],
    },
    "notify_manager": {
        "label": _("Notify the manager after N days"),
        "rule": {"trigger": "stage_entered", "name": _("Notify the manager after 2 days")},
        "actions": [
            ("delay", {"amount": 2, "unit": "days"}),
            (
                "notify",
                {
                    "title": "{{ record }} 已在“{{ stage }}”停留 2 天",
                    "body": "",
                    "to": {"type": "manager"},
                },
            ),
        ],
    },
    "complete_on_leave": {
        "label": _("Auto-complete when the record leaves the stage"),
        "rule": {"trigger": "stage_entered", "name": _("Stage checklist task")},
        "actions": [
            (
                "create_task",
                {
                    "title": "完成“{{ stage }}”阶段的工作",
                    "assignee": {"type": "owner"},
                    "due": {"amount": 2, "unit": "days"},
                    "working_hours": False,
                    "complete_on_leave": True,
                },
            ),
        ],
    },
}


class ActionRunInline(admin.TabularInline):
    model = ActionRun
    fields = ("step", "kind", "status", "result", "duration_ms", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ScheduledInline(admin.TabularInline):
    model = ScheduledAction
    fields = ("step", "due_at", "status", "attempts", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RuleRun)
class RuleRunAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "rule",
        "record_type",
        "record_label",
        "trigger",
        "status",
        "duration_ms",
    )
    list_filter = ("status", "record_type", "rule")
    search_fields = ("record_label", "rule__name", "error")
    readonly_fields = (
        "rule", "record_type", "record_id", "record_label", "occurrence", "trigger", "event",
        "depth", "status", "trace", "error", "created_at", "finished_at", "duration_ms",
    )  # fmt: skip
    inlines = [ActionRunInline, ScheduledInline]
    actions = ("retry",)
    list_select_related = ("rule",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Retry the selected failed runs"))
    def retry(self, request, queryset):
        done = 0
        for run in queryset.filter(status=RunStatus.FAILED):
            if engine.retry(run):
                done += 1
        ids = list(
            ScheduledAction.objects.filter(run__in=queryset, status="pending").values_list(
                "pk", flat=True
            )
        )
        if ids:
            from .tasks import run_scheduled

            transaction.on_commit(lambda: _queue(run_scheduled, ids))
        self.message_user(
            request,
            gettext("%(n)s runs will be tried again.") % {"n": done},
            messages.SUCCESS if done else messages.WARNING,
        )
        return redirect(request.get_full_path())


def _queue(task, ids):
    try:
        task.delay(ids)
    except Exception:  # the broker is down: the minute's tick runs them
        logging.getLogger(__name__).warning("could not queue the retried runs %s", ids[:10])


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "subject", "updated_at")
    search_fields = ("name", "subject")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "title", "kind", "read_at")
    list_filter = ("kind",)
    search_fields = ("title", "user__username", "user__name")
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
