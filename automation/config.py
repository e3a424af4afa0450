"""Automation rules are configuration: they move between systems with `export_config` /
`import_config` (crm.config.transfer), the configuration document lists them
(crm.config.document), and the impact view shown before an admin deactivates a custom
field or a dictionary item lists the rules that use it (crm.fields.impact). Registered
from AutomationConfig.ready().

In the file, email templates are keyed by name and rules by record type and name; no
database id appears. A rule names its pipeline and stage by their names (the pipeline is
of the rule's record type, as the pipelines section keys it), people by username, roles
and departments by name, fields by key and dictionary items by code (as conditions store
them), and a "move to a stage" action its stage by pipeline and stage name:

    {"record_type": "deal", "name": "报价提醒", "pipeline": "零售", "stage": "报价",
     "trigger": "stage_entered", "trigger_params": {}, "conditions": {...},
     "actions": [{"order": 0, "kind": "move_stage",
                  "params": {"pipeline": "零售", "stage": "成交"}}], ...}

Importing checks every rule with the admin's own checks (automation.rules.clean_trigger,
automation.conditions.clean_conditions, automation.actions.clean_params) once the
sections before it (dictionaries, custom fields, pipelines, email templates) are in
place; anything that does not resolve — a stage, a user, a dictionary item, a field —
refuses the whole file, naming it. A rule's actions are its own: the file's list replaces
them in order. A rule in the file is the whole rule: what it leaves out (conditions,
actions, a stage) it does not have. Importing the same file twice changes nothing. An
imported rule keeps the file's `is_active`: the confirmation the admin asks before
activating a rule that matches many records is not asked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.config import transfer
from crm.config.document import DocumentSection
from crm.config.log import diff, snapshot
from crm.fields import impact, types
from crm.models import CustomField, DictionaryItem
from pipelines.models import Pipeline, Stage

from . import actions as action_registry
from . import conditions as conds
from .models import EmailTemplate, RecordType, Rule, RuleAction, Trigger
from .rules import clean_trigger

MOVE_STAGE = "move_stage"
ACTION_KEYS = ("order", "kind", "params")


# --- Export and import: email templates -------------------------------------------------


class EmailTemplateSection(transfer.Section):
    """Email templates by name; before the rules, whose "send an email" actions name them."""

    key = "email_templates"
    order = 37
    model = EmailTemplate
    key_fields = ("name",)
    fields = ("subject", "body")

    @property
    def title(self) -> str:
        return _("Email templates")

    def export(self) -> list[dict[str, Any]]:
        return [
            {"name": t.name, **transfer.export_values(t, self.fields)}
            for t in self.queryset().order_by("name")
        ]


# --- Export and import: rules -----------------------------------------------------------


def _stage_names(stage_id: Any) -> dict[str, Any]:
    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first()
    if stage is None:
        return {"pipeline": None, "stage": None}
    return {"pipeline": stage.pipeline.name, "stage": stage.name}


def export_params(kind: str, params: dict) -> dict:
    """An action's settings as the file has them (a stage by names, not by id)."""
    if kind == MOVE_STAGE:
        return {
            **{k: v for k, v in params.items() if k != "stage"},
            **_stage_names(params.get("stage")),
        }
    return params


def _action_rows(rule: Rule) -> list[dict[str, Any]]:
    return [
        {"order": a.order, "kind": a.kind, "params": export_params(a.kind, a.params or {})}
        for a in rule.actions.all()
    ]


class RulesSection(transfer.Section):
    """Rules keyed by record type and name, each with its ordered actions."""

    key = "rules"
    # After pipelines (35) and email templates (37), which rules name.
    order = 38
    model = Rule
    key_fields = ("record_type", "name")
    fields = ("description", "is_active", "trigger", "trigger_params", "conditions")
    extra_keys = ("pipeline", "stage", "actions")

    @property
    def title(self) -> str:
        return _("Automation rules")

    # export ------------------------------------------------------------------------

    def export(self) -> list[dict[str, Any]]:
        rules = (
            self.queryset()
            .select_related("pipeline", "stage__pipeline")
            .prefetch_related("actions")
            .order_by("record_type", "name", "id")
        )
        rows = []
        for rule in rules:
            pipeline = rule.pipeline or (rule.stage.pipeline if rule.stage_id else None)
            values = transfer.export_values(rule, self.fields)
            rows.append(
                {
                    "record_type": rule.record_type,
                    "name": rule.name,
                    "description": values.pop("description"),
                    "pipeline": pipeline.name if pipeline else None,
                    "stage": rule.stage.name if rule.stage_id else None,
                    **values,
                    "actions": _action_rows(rule),
                }
            )
        return rows

    # import: the file's shape (no database writes yet) ------------------------------

    def check_entry(self, entry: transfer.Entry, ctx: transfer.Context) -> None:
        where = entry.where
        record_type = entry.values.get("record_type")
        if record_type not in RecordType.values:
            ctx.error(
                f"{where}.record_type",
                _("unknown record type “%(value)s”; use one of: %(choices)s")
                % {"value": record_type, "choices": ", ".join(RecordType.values)},
            )
        trigger = entry.values.get("trigger")
        if trigger is None:
            ctx.error(where, _("“%(name)s” is missing") % {"name": "trigger"})
        elif trigger not in Trigger.values:
            ctx.error(
                f"{where}.trigger",
                _("unknown trigger “%(value)s”; use one of: %(choices)s")
                % {"value": trigger, "choices": ", ".join(Trigger.values)},
            )
        for name in ("pipeline", "stage"):
            value = entry.extra.get(name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                ctx.error(f"{where}.{name}", _("must be a name or null"))
        if entry.extra.get("stage") and not entry.extra.get("pipeline"):
            ctx.error(f"{where}.stage", _("a stage needs its pipeline"))
        if entry.extra.get("pipeline") and record_type not in ("lead", "deal"):
            ctx.error(f"{where}.pipeline", _("only lead and deal rules have a pipeline"))
        raw = entry.extra.get("actions", [])
        if not isinstance(raw, list):
            ctx.error(f"{where}.actions", _("must be a list"))
            raw = []
        actions = []
        for index, item in enumerate(raw):
            at = f"{where}.actions[{index}]"
            if not isinstance(item, dict):
                ctx.error(at, _("must be an object"))
                continue
            for name in sorted(set(item) - set(ACTION_KEYS)):
                ctx.error(at, _("unknown attribute “%(name)s”") % {"name": name})
            kind, params = item.get("kind"), item.get("params", {})
            order = item.get("order", index)
            if not isinstance(kind, str) or not kind:
                ctx.error(at, _("“%(name)s” is missing") % {"name": "kind"})
                continue
            if not isinstance(params, dict):
                ctx.error(f"{at}.params", _("must be an object"))
                continue
            if isinstance(order, bool) or not isinstance(order, int) or order < 0:
                ctx.error(f"{at}.order", _("must be a whole number"))
                continue
            actions.append({"order": order, "kind": kind, "params": params})
        entry.extra["actions"] = actions

    # import: resolving names and checking each rule (inside the transaction) -------

    def apply(self, entries: list[transfer.Entry], ctx: transfer.Context) -> None:
        for entry in entries:
            errors_before = len(ctx.errors)
            resolved = self._resolve(entry, ctx)
            if resolved is None or len(ctx.errors) > errors_before:
                continue
            self._sync(entry, resolved, ctx)

    def _resolve(self, entry: transfer.Entry, ctx: transfer.Context) -> dict[str, Any] | None:
        """The rule's values in stored form, or None with the reasons in ctx.errors."""
        where, values = entry.where, entry.values
        record_type, trigger = values["record_type"], values["trigger"]
        pipeline = stage = None
        pipeline_name, stage_name = entry.extra.get("pipeline"), entry.extra.get("stage")
        if pipeline_name:
            pipeline = Pipeline.objects.filter(kind=record_type, name=pipeline_name).first()
            if pipeline is None:
                ctx.error(
                    f"{where}.pipeline",
                    _("no %(type)s pipeline “%(name)s”: neither in the file nor in this system")
                    % {"type": record_type, "name": pipeline_name},
                )
                return None
        if stage_name:
            stage = pipeline.stages.filter(name=stage_name).first()
            if stage is None:
                ctx.error(
                    f"{where}.stage",
                    _("no stage “%(stage)s” in the pipeline “%(pipeline)s”")
                    % {"stage": stage_name, "pipeline": pipeline_name},
                )
                return None
        resolved: dict[str, Any] = {"pipeline": pipeline, "stage": stage}
        try:
            resolved["trigger_params"] = clean_trigger(
                record_type, trigger, values.get("trigger_params") or {}, stage=stage
            )
        except ValidationError as exc:
            ctx.validation_error(f"{where}.trigger_params", exc)
        try:
            resolved["conditions"] = conds.clean_conditions(record_type, values.get("conditions"))
        except ValidationError as exc:
            ctx.validation_error(f"{where}.conditions", exc)
        actions = []
        for index, action in enumerate(entry.extra.get("actions", [])):
            at = f"{where}.actions[{index}]"
            kind = action["kind"]
            params = action["params"]
            if kind == MOVE_STAGE:
                params = self._stage_param(record_type, params, at, ctx)
                if params is None:
                    continue
            try:
                params = action_registry.clean_params(kind, record_type, params)
            except ValidationError as exc:
                label = action_registry.action_label(kind)
                for message in exc.messages:
                    ctx.error(at, f"{label}: {message}")
                continue
            actions.append({"order": action["order"], "kind": kind, "params": params})
        resolved["actions"] = actions
        return resolved

    @staticmethod
    def _stage_param(record_type: str, params: dict, at: str, ctx) -> dict | None:
        """A move's {"pipeline": name, "stage": name} as {"stage": id}."""
        pipeline_name, stage_name = params.get("pipeline"), params.get("stage")
        if not isinstance(pipeline_name, str) or not isinstance(stage_name, str):
            ctx.error(
                f"{at}.params",
                _('name the stage by its pipeline: {"pipeline": "零售", "stage": "报价"}'),
            )
            return None
        stage = Stage.objects.filter(
            pipeline__kind=record_type, pipeline__name=pipeline_name, name=stage_name
        ).first()
        if stage is None:
            ctx.error(
                f"{at}.params",
                _("no stage “%(stage)s” in the pipeline “%(pipeline)s”")
                % {"stage": stage_name, "pipeline": pipeline_name},
            )
            return None
        rest = {k: v for k, v in params.items() if k not in ("pipeline", "stage")}
        return {**rest, "stage": stage.pk}

    def _sync(self, entry: transfer.Entry, resolved: dict[str, Any], ctx) -> None:
        values = entry.values
        same = list(Rule.objects.filter(record_type=values["record_type"], name=values["name"])[:2])
        if len(same) > 1:
            ctx.error(
                entry.where,
                _("this system has two rules called “%(name)s”; rename one first")
                % {"name": values["name"]},
            )
            return
        rule = same[0] if same else None
        created = rule is None
        if created:
            rule = Rule(record_type=values["record_type"], name=values["name"])
            before = None
        else:
            before = {**snapshot(rule), "actions": _action_rows(rule)}
        for name in ("description", "is_active", "trigger"):
            if name in values:
                setattr(rule, name, values[name])
        rule.pipeline, rule.stage = resolved["pipeline"], resolved["stage"]
        rule.trigger_params = resolved["trigger_params"]
        rule.conditions = resolved["conditions"]
        wanted = [
            {**a, "params": export_params(a["kind"], a["params"])} for a in resolved["actions"]
        ]
        after = {**snapshot(rule), "actions": wanted}
        changes = diff(before, after)
        if not created and not changes:
            ctx.result.unchanged += 1
            return
        try:
            rule.full_clean()
        except ValidationError as exc:
            ctx.validation_error(entry.where, exc)
            return
        rule.save()
        _replace_actions(rule, resolved["actions"])
        ctx.result.changes.append(
            transfer.ObjectChange(
                self.key,
                entry.key,
                "create" if created else "update",
                changes,
                Rule._meta.label_lower,
            )
        )


def _replace_actions(rule: Rule, rows: list[dict[str, Any]]) -> None:
    """The rule's actions become `rows`, in order; an action whose kind stays keeps its
    state (round-robin's last assignee)."""
    existing = list(rule.actions.all())
    for index, row in enumerate(rows):
        if index < len(existing):
            action = existing[index]
            if (action.order, action.kind, action.params) == (
                row["order"],
                row["kind"],
                row["params"],
            ):
                continue
            if action.kind != row["kind"]:
                action.state = {}
            action.order, action.kind, action.params = row["order"], row["kind"], row["params"]
            action.save()
        else:
            RuleAction.objects.create(rule=rule, **row)
    for action in existing[len(rows) :]:
        action.delete()


EMAIL_TEMPLATES_SECTION = EmailTemplateSection()
RULES_SECTION = RulesSection()


# --- Impact: rules using a custom field or a dictionary item ----------------------------


def _texts(value: Any) -> Iterable[str]:
    """Every string inside an action's settings (placeholders may be in any of them)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _placeholders(*texts: str) -> set[str]:
    return {name for text in texts for name in action_registry.PLACEHOLDER.findall(text or "")}


def _values(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _field_places(rule: Rule, name: str, templates: dict[str, EmailTemplate]) -> list[str]:
    """Where the rule names the field `name`."""
    places = []
    if any(leaf.get("field") == name for leaf in conds.leaves(rule.conditions)):
        places.append(_("conditions"))
    if (rule.trigger_params or {}).get("field") == name:
        places.append(_("trigger"))
    for action in rule.actions.all():
        params = action.params or {}
        label = action_registry.action_label(action.kind)
        if action.kind == "set_field" and params.get("field") == name:
            places.append(label)
            continue
        texts = list(_texts(params))
        if action.kind == "send_email":
            template = templates.get(params.get("template"))
            if template is not None:
                texts += [template.subject, template.body]
        if name in _placeholders(*texts):
            places.append(_("%(action)s (placeholder)") % {"action": label})
    return places


def _names_item(raw: Any, item: DictionaryItem) -> bool:
    """A set-field value as typed (a code, a label, a list or "a, b") naming the item."""
    names = {item.code, item.label, item.label_en} - {""}
    for value in _values(raw):
        if isinstance(value, str):
            parts = [p.strip() for p in types.LIST_SEPARATORS.split(value)]
            if value.strip() in names or any(p in names for p in parts):
                return True
    return False


def _item_places(rule: Rule, fields: set[str], item: DictionaryItem) -> list[str]:
    """Where the rule names the item (by code) in a field of its dictionary."""
    places = []
    if any(
        leaf.get("field") in fields and item.code in _values(leaf.get("value"))
        for leaf in conds.leaves(rule.conditions)
    ):
        places.append(_("conditions"))
    params = rule.trigger_params or {}
    if params.get("field") in fields and item.code in _values(params.get("to")):
        places.append(_("trigger"))
    for action in rule.actions.all():
        params = action.params or {}
        if (
            action.kind == "set_field"
            and params.get("field") in fields
            and _names_item(params.get("value"), item)
        ):
            places.append(action_registry.action_label(action.kind))
    return places


def _item_fields(item: DictionaryItem) -> dict[str, set[str]]:
    """By record type, the fields whose values are items of the item's dictionary."""
    code = item.dictionary.code
    found: dict[str, set[str]] = {}
    for record_type in RecordType.values:
        for ref in conds.fields_of(record_type):
            if (ref.kind == conds.ITEM and ref.dictionary == code) or (
                ref.custom is not None and ref.custom.dictionary_id == item.dictionary_id
            ):
                found.setdefault(record_type, set()).add(ref.name)
    return found


def rules_using(obj) -> list[impact.Usage]:
    """The rules that use a custom field (conditions, trigger, set field, placeholders)
    or a dictionary item (by code in conditions, trigger values, set field values)."""
    if isinstance(obj, CustomField):
        if obj.record_type not in RecordType.values:
            return []
        rules = Rule.objects.filter(record_type=obj.record_type)
        templates = {t.name: t for t in EmailTemplate.objects.all()}

        def places(rule):
            return _field_places(rule, obj.name, templates)

    elif isinstance(obj, DictionaryItem):
        by_type = _item_fields(obj)
        if not by_type:
            return []
        rules = Rule.objects.filter(record_type__in=list(by_type))

        def places(rule):
            return _item_places(rule, by_type[rule.record_type], obj)

    else:
        return []
    title = _("Automation rules")
    usages = []
    for rule in rules.prefetch_related("actions").order_by("record_type", "name", "id"):
        found = places(rule)
        if not found:
            continue
        text = _("“%(rule)s” (%(record_type)s): %(places)s") % {
            "rule": rule.name,
            "record_type": rule.get_record_type_display(),
            "places": "、".join(dict.fromkeys(found)),
        }
        if not rule.is_active:
            text += " · " + _("inactive")
        usages.append(impact.Usage(title, text, impact.admin_url(rule)))
    return usages


# --- The configuration document ---------------------------------------------------------


def _days_or_hours(unit: str, n: int) -> str:
    if unit == "hours":
        return ngettext("%(n)s hour", "%(n)s hours", n) % {"n": n}
    return ngettext("%(n)s day", "%(n)s days", n) % {"n": n}


def _trigger_text(rule: Rule) -> str:
    label = str(rule.get_trigger_display())
    params = rule.trigger_params or {}
    record_type = rule.record_type
    detail = ""
    if rule.trigger == Trigger.FIELD_CHANGED and params.get("field"):
        if params.get("to") not in (None, ""):
            detail = conds.describe_leaf(
                record_type, {"field": params["field"], "op": "eq", "value": params["to"]}
            )
        else:
            ref = conds.field_ref(record_type, params["field"])
            detail = ref.label if ref else params["field"]
    elif rule.trigger == Trigger.TIME_IN_STAGE:
        if params.get("use_time_limit"):
            detail = _("the stage's time limit")
        else:
            detail = " ".join(
                _days_or_hours(unit, params.get(unit))
                for unit in ("days", "hours")
                if params.get(unit)
            )
    elif rule.trigger == Trigger.NO_ACTIVITY:
        detail = _days_or_hours("days", params.get("days") or 0)
    elif rule.trigger == Trigger.ANNIVERSARY:
        ref = conds.field_ref(record_type, params.get("field", ""))
        detail = _("%(field)s, at %(at)s") % {
            "field": ref.label if ref else params.get("field"),
            "at": params.get("at"),
        }
    elif rule.trigger == Trigger.SCHEDULE:
        detail = _("at %(at)s") % {"at": params.get("at")}
        if params.get("weekday"):
            detail += " · " + _("weekday %(n)s") % {"n": params["weekday"]}
    return f"{label}: {detail}" if detail else label


def _condition_lines(rule: Rule) -> list[str]:
    conditions = rule.conditions or {}
    lines = []
    for entry in conditions.get("conditions") or []:
        if "conditions" in entry:
            words = [conds.describe_leaf(rule.record_type, leaf) for leaf in entry["conditions"]]
            joined = "; ".join(words)
            lines.append(
                (
                    _("any of: %(conditions)s")
                    if entry.get("match") == "any"
                    else _("all of: %(conditions)s")
                )
                % {"conditions": joined}
            )
        else:
            lines.append(conds.describe_leaf(rule.record_type, entry))
    return lines


def _action_text(action: RuleAction) -> str:
    label = action_registry.action_label(action.kind)
    params = action.params or {}
    if action.kind == "delay" and params.get("unit") in action_registry.UNITS:
        units = {"minutes": _("minutes"), "hours": _("hours"), "days": _("days")}
        return f"{label} ({params.get('amount')} {units[params['unit']]})"
    return label


def document_context() -> dict[str, Any]:
    rules = (
        Rule.objects.select_related("pipeline", "stage__pipeline")
        .prefetch_related("actions")
        .order_by("record_type", "name", "id")
    )
    rows = []
    for rule in rules:
        pipeline = rule.pipeline or (rule.stage.pipeline if rule.stage_id else None)
        rows.append(
            {
                "rule": rule,
                "where": " · ".join(str(p) for p in (pipeline, rule.stage) if p is not None),
                "trigger": _trigger_text(rule),
                "match_any": (rule.conditions or {}).get("match") == "any",
                "conditions": _condition_lines(rule),
                "actions": [_action_text(a) for a in rule.actions.all()],
            }
        )
    return {"rules": rows}


DOCUMENT_SECTION = DocumentSection(
    key="rules",
    title=gettext_lazy("Automation rules"),
    template="admin/automation/document_section.html",
    build=document_context,
    order=60,
)
