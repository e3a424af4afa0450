"""What a rule can do: the action registry and the built-in actions.

An action type is registered once with `register_action(ActionType(...))` — the
built-ins below from this module, integrations' channels (webhook, SMS, DingTalk, WeCom)
from their app's `ready()` — so the engine never changes for a new action. A type gives:

- `clean(record_type, params)`: the settings checked and normalised when a rule is
  saved (a ValidationError in the admin's words);
- `run(ctx, params)`: do it, through the record type's services with the rule's system
  actor, and say what was done (`Outcome`); raising fails the action (retried with
  backoff, then shown as failed);
- `describe(ctx, params)`: what it would do to this record, for the trace — no writes;
- `external`: it acts outside the database (an email): its `ActionRun` row commits
  before it acts, so a run retried after a crash never sends twice;
- `changes_records`: False for an action that only adds rows (a task, a notification),
  so the engine may keep the records it has read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import DataScope, Department, Role, User
from crm.fields import coerce
from crm.models import Contact, Customer, Task, TaskStatus
from crm.services import customers as customer_services
from crm.services import tasks as task_services
from pipelines import services as pipeline_services
from pipelines.models import Deal, Lead, Stage

from . import batch
from .records import AutomatedType, automated_type

# --- The registry ----------------------------------------------------------------------


@dataclass
class Context:
    """What an action acts on: the rule, its run, the record and who acts (the rule's
    system actor), at `now`."""

    rule: Any
    record: Any
    record_type: str
    principal: Any
    now: datetime
    run: Any = None
    action: Any = None  # the RuleAction row

    @property
    def spec(self) -> AutomatedType:
        return automated_type(self.record_type)

    @property
    def owner(self) -> User | None:
        return self.spec.owner(self.record)


@dataclass
class Outcome:
    result: str
    object_id: int | None = None
    leave_stage: Stage | None = None
    skipped: bool = False


@dataclass(frozen=True)
class ActionType:
    key: str
    label: Any
    run: Callable[[Context, dict], Outcome]
    describe: Callable[[Context, dict], str]
    clean: Callable[[str, dict], dict] = lambda record_type, params: dict(params or {})
    record_types: frozenset[str] | None = None  # None: every type
    external: bool = False
    # Whether it may change existing records (False: it only adds rows, as a task or a
    # notification does); the engine reads records afresh after one that may.
    changes_records: bool = True
    # Example settings shown in the admin's help.
    example: dict = field(default_factory=dict)


_registry: dict[str, ActionType] = {}


def register_action(action: ActionType) -> ActionType:
    _registry[action.key] = action
    return action


def action_types() -> list[ActionType]:
    return list(_registry.values())


def action_type(key: str) -> ActionType | None:
    return _registry.get(key)


def action_label(key: str) -> str:
    action = _registry.get(key)
    return str(action.label) if action else key


def clean_params(kind: str, record_type: str, params: Any) -> dict:
    action = _registry.get(kind)
    if action is None:
        raise ValidationError(_("Unknown action “%(kind)s”.") % {"kind": kind})
    if action.record_types is not None and record_type not in action.record_types:
        raise ValidationError(
            _("“%(action)s” does not apply to this record type.") % {"action": action.label}
        )
    if not isinstance(params, dict):
        raise ValidationError(_("Settings are a JSON object."))
    return action.clean(record_type, params)


# --- Placeholders ----------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class Placeholders:
    """What {{ name }} placeholders read: the record's fields as people read them, each
    worked out when a text names it (a task's title names one or two of them)."""

    def __init__(self, record, record_type: str) -> None:
        from .conditions import fields_of

        self.record, self.record_type = record, record_type
        self.refs = {ref.name: ref for ref in fields_of(record_type)}
        self.values: dict[str, str] = {}

    def get(self, name: str, default: str = "") -> str:
        if name not in self.values:
            self.values[name] = self._value(name, default)
        return self.values[name]

    def _value(self, name: str, default: str) -> str:
        from .conditions import actual_value

        record, spec = self.record, automated_type(self.record_type)
        ref = self.refs.get(name)
        if ref is not None:  # a field's value, even where a name below is a field's too
            try:
                return actual_value(record, ref)
            except Exception:
                return ""
        if name == "record":
            return str(getattr(record, "display_name", None) or record)
        if name == "owner":
            return str(spec.owner(record) or "")
        if name == "url":
            return spec.url(record)
        if name == "site":
            return str(settings.CRM_SITE_NAME)
        if name == "customer":
            customer = spec.customer(record)
            return str(customer) if customer else ""
        if name == "stage" and hasattr(record, "stage_id"):
            return record.stage.display_name
        return default


def placeholder_values(record, record_type: str) -> Placeholders:
    return Placeholders(record, record_type)


def placeholder_names(record_type: str) -> set[str]:
    from .conditions import fields_of

    names = {ref.name for ref in fields_of(record_type)}
    names |= {"record", "owner", "url", "site", "customer"}
    if record_type in ("lead", "deal"):
        names.add("stage")
    return names


def check_placeholders(record_type: str, *texts: str) -> None:
    known = placeholder_names(record_type)
    unknown = sorted({m for text in texts for m in PLACEHOLDER.findall(text or "")} - known)
    if unknown:
        raise ValidationError(
            _("Unknown placeholder %(names)s; use %(known)s.")
            % {
                "names": "、".join("{{ " + n + " }}" for n in unknown),
                "known": ", ".join("{{ " + n + " }}" for n in sorted(known)),
            }
        )


def render(text: str, values: Placeholders | dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text or "")


# --- People an action names -----------------------------------------------------------

MANAGER_SCOPES = (DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE, DataScope.ALL)


def manager_of(user: User | None) -> User | None:
    """The owner's manager: the first active person with a department-wide view (a role
    whose data scope is the department, its tree, or all) in the owner's department,
    else in the nearest department above it."""
    if user is None or user.department_id is None:
        return None
    # Read once per message of events: every department's parent and its managers in
    # two queries, then walked up here (a notice to the manager is a common action).
    parents, managers = batch.memo("managers", _managers)
    department_id = user.department_id
    seen = set()
    while department_id is not None and department_id not in seen:
        seen.add(department_id)
        for manager in managers.get(department_id, ()):
            if manager.pk != user.pk:
                return manager
        department_id = parents.get(department_id)
    return None


def _managers() -> tuple[dict[int, int | None], dict[int, list[User]]]:
    parents = dict(Department.objects.values_list("pk", "parent_id"))
    managers: dict[int, list[User]] = {}
    for manager in User.objects.filter(
        is_active=True, department__isnull=False, role__data_scope__in=MANAGER_SCOPES
    ).order_by("id"):
        managers.setdefault(manager.department_id, []).append(manager)
    return parents, managers


def with_role(user: User | None, role_name: str) -> list[User]:
    """Active people with the role in the owner's department, else the nearest above."""
    if user is None or user.department_id is None:
        return []
    department = user.department
    seen = set()
    while department is not None and department.pk not in seen:
        seen.add(department.pk)
        found = list(
            User.objects.filter(
                department=department, role__name=role_name, is_active=True
            ).order_by("id")
        )
        if found:
            return found
        department = department.parent
    return []


PEOPLE_CHOICES = ("owner", "manager", "user", "role")


def clean_people(params: dict, *, key: str = "assignee") -> dict:
    """Who an action names: {"type": "owner" | "manager"}, a user by user name, or a
    role in the owner's department; a bare type ("manager") is read as one."""
    target = params.get(key) or {"type": "owner"}
    if isinstance(target, str):
        target = {"type": target}
    kind = target.get("type") if isinstance(target, dict) else None
    if kind not in PEOPLE_CHOICES:
        raise ValidationError(_("%(key)s: one of owner, manager, user, role.") % {"key": key})
    if kind == "user":
        username = str(target.get("user") or "")
        if not User.objects.filter(username=username, is_active=True).exists():
            raise ValidationError(_("No active user “%(value)s”.") % {"value": username})
        return {"type": "user", "user": username}
    if kind == "role":
        name = str(target.get("role") or "")
        if not Role.objects.filter(name=name).exists():
            raise ValidationError(_("No role “%(value)s”.") % {"value": name})
        return {"type": "role", "role": name}
    return {"type": kind}


def people(ctx: Context, target: dict) -> list[User]:
    kind = (target or {}).get("type", "owner")
    owner = ctx.owner
    if kind == "owner":
        found = [owner] if owner is not None else []
    elif kind == "manager":
        manager = manager_of(owner)
        found = [manager] if manager is not None else []
    elif kind == "user":
        found = list(User.objects.filter(username=target.get("user"), is_active=True))
    else:
        found = with_role(owner, target.get("role", ""))
    return [user for user in found if user.is_active]


def people_label(target: dict) -> str:
    kind = (target or {}).get("type", "owner")
    return {
        "owner": _("the owner"),
        "manager": _("the owner's manager"),
        "user": target.get("user", ""),
        "role": _("“%(role)s” in the owner's department") % {"role": target.get("role", "")},
    }.get(kind, kind)


# --- Durations and working hours -------------------------------------------------------

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def clean_duration(params: dict, *, units=("hours", "days"), key="due") -> dict:
    """{"amount": N, "unit": ...}: a whole number 0–3650 of one of `units`."""
    due = params.get(key) or {}
    if not isinstance(due, dict):
        due = {"amount": None}
    try:
        amount = coerce.to_integer(due.get("amount", 0))
    except ValidationError:
        amount = None
    unit = due.get("unit", "days")
    if amount is None or not 0 <= amount <= 3650 or unit not in units:
        raise ValidationError(
            _("%(key)s: a whole number 0–3650 of %(units)s.")
            % {"key": key, "units": "/".join(units)}
        )
    return {"amount": amount, "unit": unit}


def _working_window() -> tuple[int, int, set[int]]:
    """The working day's first and last hour, and the working ISO weekdays (all seven
    when none is set, so a day is always found)."""
    start, end = settings.CRM_WORKING_HOURS
    return start, end, set(settings.CRM_WORKING_DAYS) or set(range(1, 8))


def _at_hour(day: datetime, hour: int) -> datetime:
    """`day` (local) at `hour` o'clock; 24 is the next midnight."""
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour)


def add_working_time(moment: datetime, *, hours: int = 0, days: int = 0) -> datetime:
    """`moment` plus working hours or working days, in the CRM's time zone: hours count
    only within the working day (09:00–18:00 by default, Monday to Friday), days skip
    days off and land at the same local time (or at the end of the day's work)."""
    local = timezone.localtime(moment)
    if days:
        return _add_working_days(local, days)
    return _add_working_hours(local, timedelta(hours=hours))


def _add_working_days(local: datetime, days: int) -> datetime:
    start, end, workdays = _working_window()
    day = local
    while days:
        day += timedelta(days=1)
        if day.isoweekday() in workdays:
            days -= 1
    if not _at_hour(day, start) <= day <= _at_hour(day, end):
        day = _at_hour(day, end)
    return timezone.localtime(day)


def _add_working_hours(current: datetime, remaining: timedelta) -> datetime:
    start, end, workdays = _working_window()
    if end <= start:  # no working hours set: the clock's hours
        return current + remaining
    while True:
        day_start, day_end = _at_hour(current, start), _at_hour(current, end)
        if current.isoweekday() in workdays and current < day_end:
            current = max(current, day_start)
            if remaining <= day_end - current:
                return timezone.localtime(current + remaining)
            remaining -= day_end - current
        current = _at_hour(current + timedelta(days=1), start)


def due_at(now: datetime, due: dict, working: bool) -> datetime:
    amount, unit = due.get("amount", 0), due.get("unit", "days")
    if working:
        return add_working_time(now, **{unit: amount}) if unit in ("hours", "days") else now
    return now + timedelta(seconds=UNITS[unit] * amount)


# --- Built-in actions -----------------------------------------------------------------


def _title(params: dict, key: str = "title", limit: int = 200) -> str:
    text = str(params.get(key) or "").strip()
    if not text:
        raise ValidationError(_("Give a %(key)s.") % {"key": key})
    if len(text) > limit or "\x00" in text:
        raise ValidationError(_("%(key)s: at most %(n)s characters.") % {"key": key, "n": limit})
    return text


def _clean_task(record_type: str, params: dict) -> dict:
    title = _title(params)
    notes = str(params.get("notes") or "")[:2000]
    check_placeholders(record_type, title, notes)
    cleaned = {
        "title": title,
        "notes": notes,
        "assignee": clean_people(params),
        "due": clean_duration(params),
        "working_hours": bool(params.get("working_hours")),
        "complete_on_leave": bool(params.get("complete_on_leave")),
    }
    if cleaned["complete_on_leave"] and record_type not in ("lead", "deal"):
        raise ValidationError(
            _("Only a lead's or a deal's task can complete when it leaves its stage.")
        )
    return cleaned


def _task_subject(ctx: Context) -> dict:
    from django.contrib.contenttypes.models import ContentType

    record = ctx.record
    if isinstance(record, Customer):
        return {"customer": record}
    if isinstance(record, Task):
        return {"customer": record.customer}
    return {
        "customer": getattr(record, "customer", None),
        "subject_type": ContentType.objects.get_for_model(record),
        "subject_id": record.pk,
    }


def _assignee(ctx: Context, params: dict) -> User | None:
    found = people(ctx, params.get("assignee") or {"type": "owner"})
    if len(found) > 1:
        # Anyone with the role: the one with the fewest open tasks (the message's
        # tasks so far included).
        batch.flush()
        counts = dict(
            Task.objects.filter(assignee__in=found, status=TaskStatus.OPEN)
            .values_list("assignee")
            .annotate(n=Count("id"))
        )
        found.sort(key=lambda user: (counts.get(user.pk, 0), user.pk))
    return found[0] if found else None


def _run_task(ctx: Context, params: dict) -> Outcome:
    assignee = _assignee(ctx, params)
    if assignee is None:
        return Outcome(
            _("No task: nobody to give it to (%(who)s).")
            % {"who": people_label(params.get("assignee"))},
            skipped=True,
        )
    values = placeholder_values(ctx.record, ctx.record_type)
    task = Task(
        title=render(params["title"], values)[:200],
        notes=render(params.get("notes", ""), values),
        assignee=assignee,
        due_at=due_at(ctx.now, params["due"], params.get("working_hours", False)),
        **_task_subject(ctx),
    )
    task_services.create_task(task=task, by=ctx.principal)
    _tell_assigned(
        assignee,
        ctx,
        lambda: _("New task: %(title)s") % {"title": task.title},
        lambda: _("Due %(due)s · %(record)s") % {"due": _when(task.due_at), "record": ctx.record},
    )
    leave = None
    if params.get("complete_on_leave") and getattr(ctx.record, "stage_id", None):
        leave = ctx.record.stage
    return Outcome(
        _("Task “%(title)s” for %(who)s, due %(due)s.")
        % {"title": task.title, "who": assignee, "due": _when(task.due_at)},
        object_id=task.pk,
        leave_stage=leave,
    )


def _tell_assigned(user: User, ctx: Context, title, body) -> None:
    """An assignment notification (the bell) to whom a rule gave a task or a record, in
    their language."""
    from django.utils.translation import override

    from .models import NotificationKind
    from .notifications import notify

    with override(user.language or settings.LANGUAGE_CODE):
        notify(
            user=user,
            title=title(),
            body=body(),
            record=ctx.record,
            rule=ctx.rule,
            kind=NotificationKind.ASSIGNMENT,
        )


def _when(moment: datetime | None) -> str:
    # date_format(…, "Y-m-d H:i") without its translation lookups: digits only.
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def _describe_task(ctx: Context, params: dict) -> str:
    assignee = _assignee(ctx, params)
    values = placeholder_values(ctx.record, ctx.record_type)
    text = _("Would create the task “%(title)s” for %(who)s, due %(due)s.") % {
        "title": render(params["title"], values),
        "who": assignee or _("nobody (%(who)s)") % {"who": people_label(params.get("assignee"))},
        "due": _when(due_at(ctx.now, params["due"], params.get("working_hours", False))),
    }
    if params.get("complete_on_leave"):
        text += " " + _("It completes itself when the record leaves the stage.")
    return text


OWNED_TYPES = frozenset({"customer", "lead", "deal", "task"})


def _clean_assign(record_type: str, params: dict) -> dict:
    how = params.get("to", "user")
    if how == "user":
        return {
            "to": "user",
            "user": clean_people({"a": {"type": "user", "user": params.get("user")}}, key="a")[
                "user"
            ],
        }
    if how in ("round_robin", "fewest"):
        name = str(params.get("department") or "")
        if not Department.objects.filter(name=name).exists():
            raise ValidationError(_("No department “%(value)s”.") % {"value": name})
        return {"to": how, "department": name}
    raise ValidationError(_("Assign to: user, round_robin or fewest."))


def _candidates(params: dict) -> list[User]:
    return list(
        User.objects.filter(department__name=params["department"], is_active=True).order_by("id")
    )


def _pick_owner(ctx: Context, params: dict, *, claim: bool) -> User | None:
    how = params["to"]
    if how == "user":
        return User.objects.filter(username=params["user"], is_active=True).first()
    candidates = _candidates(params)
    if not candidates:
        return None
    if how == "fewest":
        spec = ctx.spec
        owner_field = spec.owner_path.split("__")[0]
        open_filter = Q()
        if ctx.record_type in ("lead", "deal"):
            open_filter = Q(status="open")
        elif ctx.record_type == "task":
            open_filter = Q(status=TaskStatus.OPEN)
        counts = dict(
            spec.model.objects.filter(open_filter, **{f"{owner_field}__in": candidates})
            .values_list(owner_field)
            .annotate(n=Count("pk"))
        )
        return min(candidates, key=lambda user: (counts.get(user.pk, 0), user.pk))
    # Round-robin: the next after the last one given, remembered on the action (locked,
    # so two workers never give two records to the same person in a row).
    from .models import RuleAction

    if claim and ctx.action is not None:
        action = RuleAction.objects.select_for_update().get(pk=ctx.action.pk)
    else:
        action = ctx.action
    last = (action.state or {}).get("last") if action is not None else None
    ids = [user.pk for user in candidates]
    position = (ids.index(last) + 1) % len(ids) if last in ids else 0
    chosen = candidates[position]
    if claim and action is not None:
        action.state = {**(action.state or {}), "last": chosen.pk}
        action.save(update_fields=["state"])
    return chosen


def _run_assign(ctx: Context, params: dict) -> Outcome:
    to = _pick_owner(ctx, params, claim=True)
    if to is None:
        return Outcome(_("Not assigned: nobody to assign to."), skipped=True)
    record = ctx.record
    rows = type(record).objects.filter(pk=record.pk)
    if ctx.record_type == "customer":
        changed = customer_services.transfer_customers(customers=rows, to=to, by=ctx.principal)
    elif ctx.record_type == "task":
        changed = task_services.reassign_tasks(tasks=rows, to=to, by=ctx.principal)
    else:
        changed = pipeline_services.transfer_records(rows, to, ctx.principal)
    if not changed:
        return Outcome(_("Already %(who)s's.") % {"who": to}, skipped=True)
    _tell_assigned(
        to,
        ctx,
        lambda: _("Assigned to you: %(record)s") % {"record": ctx.record},
        lambda: _("By the rule “%(rule)s”.") % {"rule": ctx.rule},
    )
    return Outcome(_("Assigned to %(who)s.") % {"who": to})


def _describe_assign(ctx: Context, params: dict) -> str:
    to = _pick_owner(ctx, params, claim=False)
    return _("Would assign it to %(who)s.") % {"who": to or _("nobody")}


# Standard fields a set-field action may not name: set by their own action or the system.
NOT_SETTABLE = frozenset({"owner", "assignee", "status", "created_at", "updated_at"})


def _clean_set_field(record_type: str, params: dict) -> dict:
    """The field and its value, checked as the field's coercion checks it and kept in
    stored form (an item's code, a person's user name), so a renamed label never breaks
    the rule; what only the record can check (the model's own rules) is checked when it
    runs, and fails it with the form's message."""
    from .conditions import TAGS, field_ref, stored_value

    name = params.get("field")
    ref = field_ref(record_type, name) if isinstance(name, str) else None
    if ref is None or ref.kind == TAGS:
        raise ValidationError(_("Unknown field “%(field)s”.") % {"field": name})
    if ref.model_field is not None and ref.name in NOT_SETTABLE:
        raise ValidationError(
            _("%(field)s is set by its own action or by the system.") % {"field": ref.label}
        )
    raw = params.get("value")
    try:
        coerce.coerce_value(record_type, name, raw, user=None)
        value = None if coerce.is_empty(raw) else stored_value(ref, record_type, raw)
    except (ValidationError, LookupError) as exc:
        messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
        raise ValidationError(
            _("%(field)s: %(error)s") % {"field": ref.label, "error": " ".join(messages)}
        ) from None
    return {"field": name, "value": value}


def _apply_field(ctx: Context, params: dict):
    name = params["field"]
    value = coerce.coerce_value(
        ctx.record_type, name, params["value"], user=ctx.principal, instance=ctx.record
    )
    record = ctx.record
    if name.startswith("cf_"):
        custom = dict(record.custom or {})
        key = name[3:]
        if value is None:
            custom.pop(key, None)
        else:
            custom[key] = value
        record.custom = custom
    else:
        setattr(record, record._meta.get_field(name).name, value)
    return value


def _run_set_field(ctx: Context, params: dict) -> Outcome:
    from .conditions import actual_value, field_ref

    _apply_field(ctx, params)
    ctx.spec.save(ctx.record, ctx.principal)
    ref = field_ref(ctx.record_type, params["field"])
    return Outcome(
        _("%(field)s set to “%(value)s”.")
        % {"field": ref.label, "value": actual_value(ctx.record, ref)}
    )


def _describe_set_field(ctx: Context, params: dict) -> str:
    from .conditions import field_ref, value_label

    ref = field_ref(ctx.record_type, params["field"])
    if ref is None:
        return _("Would fail: the field “%(field)s” is gone.") % {"field": params["field"]}
    try:
        coerce.coerce_value(
            ctx.record_type,
            params["field"],
            params["value"],
            user=ctx.principal,
            instance=ctx.record,
        )
    except ValidationError as exc:
        return _("Would fail: %(error)s") % {"error": " ".join(exc.messages)}
    values = params["value"] if isinstance(params["value"], list) else [params["value"]]
    return _("Would set %(field)s to “%(value)s”.") % {
        "field": ref.label,
        "value": "、".join(value_label(ref, v) for v in values if v is not None),
    }


def _clean_move(record_type: str, params: dict) -> dict:
    from crm.params import parse_id

    stage_id = parse_id(params.get("stage"))
    stage = (
        Stage.objects.filter(pk=stage_id).select_related("pipeline").first() if stage_id else None
    )
    if stage is None or stage.pipeline.kind != record_type:
        raise ValidationError(_("Choose a stage of a %(type)s pipeline.") % {"type": record_type})
    return {"stage": stage.pk}


def _run_move(ctx: Context, params: dict) -> Outcome:
    stage = Stage.objects.select_related("pipeline").get(pk=params["stage"])
    if stage.pipeline_id != ctx.record.pipeline_id:
        return Outcome(
            _("Not moved: “%(stage)s” is in another pipeline.") % {"stage": stage}, skipped=True
        )
    moved = pipeline_services.move_to_stage(record=ctx.record, stage=stage, by=ctx.principal)
    if moved is None:
        return Outcome(_("Already in “%(stage)s”.") % {"stage": stage}, skipped=True)
    return Outcome(_("Moved to “%(stage)s”.") % {"stage": stage})


def _describe_move(ctx: Context, params: dict) -> str:
    stage = Stage.objects.filter(pk=params["stage"]).first()
    if stage is None:
        return _("Would fail: the stage is gone.")
    missing = pipeline_services.missing_fields(ctx.record, stage)
    if missing:
        return _("Would fail: fill in %(fields)s first.") % {
            "fields": "、".join(label for _n, label in missing)
        }
    return _("Would move it to “%(stage)s”.") % {"stage": stage}


def _clean_tag(record_type: str, params: dict) -> dict:
    name = _title(params, "tag", 50)
    return {"tag": name}


def _run_tag(ctx: Context, params: dict) -> Outcome:
    [tag] = customer_services.resolve_tags([params["tag"]])
    changed = customer_services.tag_customers(
        customers=Customer.objects.filter(pk=ctx.record.pk), tag=tag, by=ctx.principal
    )
    if not changed:
        return Outcome(_("Already tagged “%(tag)s”.") % {"tag": tag}, skipped=True)
    return Outcome(_("Tagged “%(tag)s”.") % {"tag": tag})


def _describe_tag(ctx: Context, params: dict) -> str:
    return _("Would tag it “%(tag)s”.") % {"tag": params["tag"]}


def _clean_release(record_type: str, params: dict) -> dict:
    return {"reason": str(params.get("reason") or "")[:300]}


def _run_release(ctx: Context, params: dict) -> Outcome:
    record = ctx.record
    reason = params.get("reason") or _("Returned by the rule “%(rule)s”.") % {"rule": ctx.rule}
    if ctx.record_type == "customer":
        changed = customer_services.release_customers(
            customers=Customer.objects.filter(pk=record.pk), by=ctx.principal, reason=reason
        )
    else:
        changed = pipeline_services.transfer_records(
            Lead.objects.filter(pk=record.pk), None, ctx.principal
        )
    if not changed:
        return Outcome(_("Already in the public pool."), skipped=True)
    return Outcome(_("Returned to the public pool."))


def _describe_release(ctx: Context, params: dict) -> str:
    return _("Would return it to the public pool (owner now: %(owner)s).") % {
        "owner": ctx.owner or "—"
    }


def _clean_email(record_type: str, params: dict) -> dict:
    from .models import EmailTemplate

    name = str(params.get("template") or "")
    template = EmailTemplate.objects.filter(name=name).first()
    if template is None:
        raise ValidationError(_("No email template “%(value)s”.") % {"value": name})
    check_placeholders(record_type, template.subject, template.body)
    to = params.get("to", "contact")
    if to not in ("contact", "owner"):
        raise ValidationError(_("Send to: contact or owner."))
    return {"template": name, "to": to}


def email_recipients(ctx: Context, params: dict) -> tuple[list[str], str]:
    """Addresses to send to, and why none when there are none. A contact marked do not
    contact is never written to."""
    if params.get("to") == "owner":
        owner = ctx.owner
        return ([owner.email] if owner and owner.email else []), _("the owner has no email")
    record = ctx.record
    contact: Contact | None = None
    if isinstance(record, Contact):
        contact = record
    elif isinstance(record, Deal):
        contact = record.contact or record.customer.contacts.filter(is_primary=True).first()
    elif isinstance(record, Customer):
        contact = record.contacts.filter(is_primary=True).first()
    elif isinstance(record, Lead):
        return ([record.email] if record.email else []), _("the lead has no email")
    if contact is None:
        if isinstance(record, Customer) and record.email:
            return [record.email], ""
        return [], _("no contact to write to")
    if contact.do_not_contact:
        return [], _("%(contact)s is marked do not contact") % {"contact": contact}
    return ([contact.email] if contact.email else []), _("%(contact)s has no email") % {
        "contact": contact
    }


def _run_email(ctx: Context, params: dict) -> Outcome:
    from .models import EmailTemplate

    template = EmailTemplate.objects.get(name=params["template"])
    to, why = email_recipients(ctx, params)
    if not to:
        return Outcome(_("Not sent: %(why)s.") % {"why": why}, skipped=True)
    values = placeholder_values(ctx.record, ctx.record_type)
    subject = render(template.subject, values).replace("\n", " ")[:200]
    send_mail(subject, render(template.body, values), None, to)
    return Outcome(
        _("Email “%(subject)s” sent to %(to)s.") % {"subject": subject, "to": ", ".join(to)}
    )


def _describe_email(ctx: Context, params: dict) -> str:
    from .models import EmailTemplate

    template = EmailTemplate.objects.filter(name=params["template"]).first()
    if template is None:
        return _("Would fail: the template is gone.")
    to, why = email_recipients(ctx, params)
    if not to:
        return _("Would not send: %(why)s.") % {"why": why}
    values = placeholder_values(ctx.record, ctx.record_type)
    return _("Would email “%(subject)s” to %(to)s.") % {
        "subject": render(template.subject, values),
        "to": ", ".join(to),
    }


def _clean_notify(record_type: str, params: dict) -> dict:
    title = _title(params)
    body = str(params.get("body") or "")[:2000]
    check_placeholders(record_type, title, body)
    return {"title": title, "body": body, "to": clean_people(params, key="to")}


def _run_notify(ctx: Context, params: dict) -> Outcome:
    from .notifications import notify

    recipients = people(ctx, params["to"])
    if not recipients:
        return Outcome(
            _("Nobody to notify (%(who)s).") % {"who": people_label(params["to"])}, skipped=True
        )
    values = placeholder_values(ctx.record, ctx.record_type)
    title = render(params["title"], values)[:200]
    for user in recipients:
        notify(
            user=user,
            title=title,
            body=render(params.get("body", ""), values),
            record=ctx.record,
            rule=ctx.rule,
        )
    return Outcome(
        _("Notified %(who)s: “%(title)s”.")
        % {"who": "、".join(map(str, recipients)), "title": title}
    )


def _describe_notify(ctx: Context, params: dict) -> str:
    recipients = people(ctx, params["to"])
    values = placeholder_values(ctx.record, ctx.record_type)
    return _("Would notify %(who)s: “%(title)s”.") % {
        "who": "、".join(map(str, recipients)) or _("nobody"),
        "title": render(params["title"], values),
    }


def _clean_delay(record_type: str, params: dict) -> dict:
    return clean_duration({"due": params}, units=("minutes", "hours", "days"), key="due")


def delay_of(params: dict) -> timedelta:
    return timedelta(seconds=UNITS[params.get("unit", "days")] * int(params.get("amount", 0)))


def _describe_delay(ctx: Context, params: dict) -> str:
    return _("Would wait %(amount)s %(unit)s, then go on if the record still matches.") % {
        "amount": params["amount"],
        "unit": {"minutes": _("minutes"), "hours": _("hours"), "days": _("days")}[params["unit"]],
    }


def _no_run(ctx: Context, params: dict) -> Outcome:  # the engine handles delays
    raise RuntimeError("a delay is not run")


def builtin_actions() -> Iterable[ActionType]:
    return [
        ActionType(
            "create_task",
            gettext_lazy("Create a task"),
            _run_task,
            _describe_task,
            _clean_task,
            changes_records=False,
            example={
                "title": "跟进 {{ record }}",
                "assignee": {"type": "owner"},
                "due": {"amount": 1, "unit": "days"},
                "working_hours": True,
                "complete_on_leave": False,
            },
        ),
        ActionType(
            "assign_owner",
            gettext_lazy("Assign the owner"),
            _run_assign,
            _describe_assign,
            _clean_assign,
            record_types=OWNED_TYPES,
            example={"to": "round_robin", "department": "销售一部"},
        ),
        ActionType(
            "set_field",
            gettext_lazy("Set a field"),
            _run_set_field,
            _describe_set_field,
            _clean_set_field,
            example={"field": "cf_level", "value": "vip"},
        ),
        ActionType(
            "move_stage",
            gettext_lazy("Move to a stage"),
            _run_move,
            _describe_move,
            _clean_move,
            record_types=frozenset({"lead", "deal"}),
            example={"stage": 12},
        ),
        ActionType(
            "add_tag",
            gettext_lazy("Add a tag"),
            _run_tag,
            _describe_tag,
            _clean_tag,
            record_types=frozenset({"customer"}),
            example={"tag": "重点客户"},
        ),
        ActionType(
            "release",
            gettext_lazy("Release to the public pool"),
            _run_release,
            _describe_release,
            _clean_release,
            record_types=frozenset({"customer", "lead"}),
            example={"reason": "30 天未跟进"},
        ),
        ActionType(
            "send_email",
            gettext_lazy("Send an email"),
            _run_email,
            _describe_email,
            _clean_email,
            external=True,
            changes_records=False,
            example={"template": "生日祝福", "to": "contact"},
        ),
        ActionType(
            "notify",
            gettext_lazy("Send an in-app notification"),
            _run_notify,
            _describe_notify,
            _clean_notify,
            changes_records=False,
            example={"title": "{{ record }} 需要跟进", "body": "", "to": {"type": "manager"}},
        ),
        ActionType(
            "delay",
            gettext_lazy("Wait before the next actions"),
            _no_run,
            _describe_delay,
            _clean_delay,
            changes_records=False,
            example={"amount": 2, "unit": "days"},
        ),
    ]


for _action in builtin_actions():
    register_action(_action)
