"""Rules as admins make and try them: checking a rule before it is saved, the records it
matches now, and what it would do to one record — all without side effects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User

from . import actions as action_registry
from . import conditions as conds
from .models import TIME_TRIGGERS, Rule, RuleAction, Trigger
from .records import automated_type, is_staged

TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
STAGED_TRIGGERS = {Trigger.STAGE_ENTERED, Trigger.STAGE_LEFT, Trigger.TIME_IN_STAGE}


def _number(params: dict, key: str, *, low: int, high: int, required: bool = False) -> int | None:
    raw = params.get(key)
    if raw in (None, ""):
        if required:
            raise ValidationError(_("Give %(key)s.") % {"key": key})
        return None
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        value = None
    if value is None or not low <= value <= high:
        raise ValidationError(
            _("%(key)s: a whole number from %(low)s to %(high)s.")
            % {"key": key, "low": low, "high": high}
        )
    return value


def _time_of_day(params: dict) -> str:
    text = str(params.get("at") or "09:00").strip()
    if not TIME_OF_DAY.match(text):
        raise ValidationError(_("at: a time of day like 09:00."))
    hour, minute = text.split(":")
    return f"{int(hour):02d}:{minute}"


def clean_trigger(record_type: str, trigger: str, params: Any, *, stage=None) -> dict:
    """The trigger's settings checked for the record type, in stored form."""
    if not isinstance(params, dict):
        raise ValidationError(_("Trigger settings are a JSON object."))
    if trigger in STAGED_TRIGGERS and not is_staged(record_type):
        raise ValidationError(_("Only leads and deals have stages."))
    if trigger == Trigger.LEAD_CONVERTED and record_type != "lead":
        raise ValidationError(_("“Lead converted” is a trigger of leads."))
    if trigger in (Trigger.DEAL_WON, Trigger.DEAL_LOST) and record_type != "deal":
        raise ValidationError(_("“Deal won” and “deal lost” are triggers of deals."))
    if trigger == Trigger.FIELD_CHANGED:
        name = params.get("field")
        ref = conds.field_ref(record_type, name) if isinstance(name, str) else None
        if ref is None:
            raise ValidationError(_("Unknown field “%(field)s”.") % {"field": name})
        cleaned = {"field": name}
        if params.get("to") not in (None, ""):
            try:
                cleaned["to"] = conds.stored_value(ref, record_type, params["to"])
            except ValidationError as exc:
                raise ValidationError(
                    _("%(field)s: %(error)s")
                    % {"field": ref.label, "error": " ".join(exc.messages)}
                ) from None
        return cleaned
    if trigger == Trigger.TIME_IN_STAGE:
        if params.get("use_time_limit"):
            if stage is not None and not stage.time_limit_days:
                raise ValidationError(
                    _("The stage “%(stage)s” has no time limit: give the hours or days.")
                    % {"stage": stage}
                )
            return {"use_time_limit": True}
        hours = _number(params, "hours", low=0, high=24 * 3650) or 0
        days = _number(params, "days", low=0, high=3650) or 0
        if not hours and not days:
            raise ValidationError(
                _("Give the hours or days in the stage, or use the stage's time limit.")
            )
        return {"hours": hours, "days": days}
    if trigger == Trigger.NO_ACTIVITY:
        return {"days": _number(params, "days", low=1, high=3650, required=True)}
    if trigger == Trigger.ANNIVERSARY:
        name = params.get("field") or "birthday"
        ref = conds.field_ref(record_type, name)
        if ref is None or ref.kind != conds.DATE:
            raise ValidationError(_("Choose a date field (a birthday)."))
        return {"field": name, "at": _time_of_day(params)}
    if trigger == Trigger.SCHEDULE:
        cleaned = {"at": _time_of_day(params)}
        weekday = _number(params, "weekday", low=1, high=7)
        if weekday:
            cleaned["weekday"] = weekday
        return cleaned
    if trigger not in Trigger.values:
        raise ValidationError(_("Unknown trigger."))
    return {}


def clean_actions(record_type: str, rows: list[tuple[str, Any]]) -> list[dict]:
    """Each action's settings checked; errors say which action (1-based)."""
    errors, cleaned = [], []
    for index, (kind, params) in enumerate(rows, start=1):
        try:
            cleaned.append(action_registry.clean_params(kind, record_type, params))
        except ValidationError as exc:
            errors.append(
                _("Action %(n)s (%(action)s): %(error)s")
                % {
                    "n": index,
                    "action": action_registry.action_label(kind),
                    "error": " ".join(exc.messages),
                }
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- Which records match now ---------------------------------------------------------


def matching(rule: Rule, user: User) -> QuerySet:
    """The records the rule's conditions match now, among those `user` may see."""
    spec = automated_type(rule.record_type)
    qs = spec.model.objects.visible_to(user)
    if is_staged(rule.record_type):
        if rule.pipeline_id:
            qs = qs.filter(pipeline_id=rule.pipeline_id)
        if rule.stage_id:
            qs = qs.filter(stage_id=rule.stage_id)
        if rule.trigger in TIME_TRIGGERS:
            qs = qs.filter(status="open")
    return qs.filter(conds.conditions_q(rule.record_type, rule.conditions)).order_by("-pk")


def match_count(rule: Rule, user: User, *, cap: int = 10000) -> int:
    """How many records match, counted up to `cap` (a bigger number reads "cap+")."""
    return matching(rule, user)[:cap].count()


def needs_confirmation(rule: Rule, user: User) -> int | None:
    """The number of matching records when activating would act on more than the
    setting allows without asking (None: no need to ask)."""
    count = match_count(rule, user)
    return count if count > settings.CRM_AUTOMATION_CONFIRM_OVER else None


@dataclass
class Trial:
    """What the rule would do to one record now."""

    record: Any
    matched: bool
    trace: list[dict]
    steps: list[str] = field(default_factory=list)


def try_on(rule: Rule, record) -> Trial:
    """Check the conditions and describe every action for `record`, writing nothing
    (everything runs in a transaction that is rolled back)."""
    from .engine import evaluate

    with transaction.atomic():
        matched, trace = evaluate(rule, record, rule.record_type)
        steps = []
        ctx = action_registry.Context(
            rule=rule,
            record=record,
            record_type=rule.record_type,
            principal=None,
            now=timezone.now(),
        )
        for step in rule.actions.all().order_by("order", "id"):
            action = action_registry.action_type(step.kind)
            ctx.action = step
            if action is None:
                steps.append(_("No action “%(kind)s” is installed.") % {"kind": step.kind})
                continue
            try:
                steps.append(action.describe(ctx, step.params or {}))
            except Exception as exc:  # a broken setting shows, it does not break the page
                steps.append(_("Would fail: %(error)s") % {"error": exc})
        transaction.set_rollback(True)
    return Trial(record=record, matched=matched, trace=trace, steps=steps)


def actions_of(rule: Rule) -> list[RuleAction]:
    return list(rule.actions.all().order_by("order", "id"))
