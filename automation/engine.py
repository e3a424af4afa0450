"""The rule engine: which rules an event fires, when time triggers fire, and running a
rule's actions once each.

1. **Events** (`handle_event`, a background subscriber of crm.events): each active rule
   whose trigger the event answers gets a `RuleRun` (unique per rule, record and event)
   and a `ScheduledAction` due now, in the transaction of the event's receipt. After
   that commits the same worker runs it (`run_scheduled`); had it died first, the
   periodic `tick` finds the row.
2. **Time** (`scan_time_rules`, from `tick` every minute): each time-triggered rule finds
   the records whose moment has come since its last scan (time in stage, no follow-up,
   an anniversary, a schedule) and gives each a run keyed by that occasion.
3. **Running** (`run_scheduled`): a row is claimed with a conditional UPDATE, so two
   workers never take the same one. The conditions are checked then (at once, and again
   after each delay: a record that no longer matches is cancelled), and the actions run
   in order, each in its own transaction with its `ActionRun` row — a retried run skips
   what is done. A delay schedules the rest as a new row. A failure is retried with
   backoff (`CRM_AUTOMATION_MAX_ATTEMPTS`), then the run shows as failed with the error
   and an admin may retry it.

Rules act as the system (`accounts.actors.system(kind="rule")`) one level deeper than
the event that fired them; an event `CRM_AUTOMATION_MAX_DEPTH` runs away from a
person's change fires nothing more (the run is logged as stopped). Events of a quiet
change (an import or bulk action without the user's opt-in) fire nothing.
"""

from __future__ import annotations

import logging
import time as clock
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.actors import ActorKind, at_depth, system
from crm.models import Change, EventKind

from . import actions as action_registry
from . import conditions as conds
from .models import (
    TIME_TRIGGERS,
    ActionRun,
    ActionStatus,
    Rule,
    RuleRun,
    RunStatus,
    ScheduledAction,
    ScheduledStatus,
    Trigger,
)
from .records import automated_type, is_staged, label, load

log = logging.getLogger(__name__)

VERSION_KEY = "automation:rules-version"


# --- Active rules, cached per process -------------------------------------------------


@dataclass
class _Cache:
    version: Any = None
    checked: float = 0.0
    rules: list[Rule] | None = None


_cache = _Cache()
RECHECK_SECONDS = 1.0


def rules_changed() -> None:
    """Called when a rule or its actions change: every process reloads its rules."""
    try:
        cache.set(VERSION_KEY, clock.time_ns(), None)
    except Exception:  # a cache outage must not stop an admin saving a rule
        log.warning("could not bump the rules version")
    _cache.rules = None


def forget_rules() -> None:
    """Drop this process's rules (tests: a rolled-back rule must not linger)."""
    _cache.rules = None
    _cache.version = None


def active_rules() -> list[Rule]:
    """The active rules with their actions, reloaded when any process changed a rule
    (checked at most once a second)."""
    now = clock.monotonic()
    if _cache.rules is not None and now - _cache.checked < RECHECK_SECONDS:
        return _cache.rules
    try:
        version = cache.get(VERSION_KEY)
    except Exception:
        version = None
    _cache.checked = now
    if _cache.rules is None or version != _cache.version or version is None:
        _cache.rules = list(
            Rule.objects.filter(is_active=True)
            .select_related("pipeline", "stage")
            .prefetch_related("actions")
            .order_by("id")
        )
        _cache.version = version
    return _cache.rules


def listening() -> bool:
    """Whether events need handing to the engine at all: only while a rule is active."""
    return bool(active_rules())


# --- Which rules an event fires --------------------------------------------------------

MODEL_TYPES = {"customer", "contact", "lead", "deal", "task"}


def _event_record_type(event: Change) -> str | None:
    model = event.record_type.model
    return model if model in MODEL_TYPES else None


def _stage_pair(event: Change) -> tuple[int | None, int | None]:
    stage = (event.fields or {}).get("stage")
    if isinstance(stage, list) and len(stage) == 2:
        return stage[0], stage[1]
    return None, None


def fires(rule: Rule, event: Change, record_type: str) -> str | None:
    """A description of why `rule` fires on `event`, or None."""
    if rule.record_type != record_type or rule.trigger in TIME_TRIGGERS:
        return None
    kind = event.kind
    params = rule.trigger_params or {}
    old_stage, new_stage = _stage_pair(event)
    # A rule's pipeline is checked against the record when its run starts.
    trigger = rule.trigger
    if trigger == Trigger.CREATED:
        return _("created") if kind == EventKind.CREATED else None
    if trigger == Trigger.STAGE_ENTERED:
        if kind == EventKind.CREATED and is_staged(record_type):
            # A new record enters its first stage: the stage's robots act on it.
            return (
                _("created in the stage")
                if rule.stage_id is None or _created_in(event, rule)
                else None
            )
        moved = kind in (EventKind.STAGE_MOVED, EventKind.LOST, EventKind.CONVERTED)
        if moved and new_stage and (rule.stage_id is None or new_stage == rule.stage_id):
            return _("entered the stage")
        return None
    if trigger == Trigger.STAGE_LEFT:
        moved = kind in (EventKind.STAGE_MOVED, EventKind.LOST, EventKind.CONVERTED)
        if moved and old_stage and (rule.stage_id is None or old_stage == rule.stage_id):
            return _("left the stage")
        return None
    if trigger == Trigger.FIELD_CHANGED:
        name = params.get("field")
        if kind == EventKind.CREATED or name not in (event.fields or {}):
            return None
        if "to" in params and params["to"] not in (None, ""):
            new = event.fields[name][1] if isinstance(event.fields[name], list) else None
            if not _same(new, params["to"], rule, name):
                return None
        return _("%(field)s changed") % {"field": name}
    if trigger == Trigger.LEAD_CONVERTED:
        return _("converted") if kind == EventKind.CONVERTED else None
    if trigger == Trigger.DEAL_WON:
        if (
            kind == EventKind.STAGE_MOVED
            and (event.fields or {}).get("status", [None, None])[1] == "won"
        ):
            return _("won")
        return None
    if trigger == Trigger.DEAL_LOST:
        return _("lost") if kind == EventKind.LOST else None
    return None


def _created_in(event: Change, rule: Rule) -> bool:
    stage = (event.fields or {}).get("stage")
    if isinstance(stage, list) and len(stage) == 2:
        return stage[1] == rule.stage_id
    return True  # checked against the record when the run starts


def _same(raw_new: Any, wanted: Any, rule: Rule, name: str) -> bool:
    """Whether an event's raw new value is the value the rule waits for (stored form:
    an item code, a user name...)."""
    if raw_new is None:
        return False
    ref = conds.field_ref(rule.record_type, name)
    if ref is not None and ref.kind == conds.ITEM and ref.custom is None:
        from crm.models import DictionaryItem

        return DictionaryItem.objects.filter(pk=raw_new, code=wanted).exists()
    if ref is not None and ref.kind == conds.USER and ref.custom is None:
        from accounts.models import User

        return User.objects.filter(pk=raw_new, username=wanted).exists()
    return str(raw_new) == str(wanted)


def wants(event: Change) -> bool:
    return event.automation_depth is not None and _event_record_type(event) is not None


def handle_event(event: Change) -> None:
    """The subscriber: runs inside the transaction of the event's receipt."""
    record_type = _event_record_type(event)
    if record_type is None or event.automation_depth is None:
        return
    if event.kind in (EventKind.STAGE_MOVED, EventKind.LOST, EventKind.CONVERTED):
        complete_left_tasks(event, record_type)
    fired = [(rule, why) for rule in active_rules() if (why := fires(rule, event, record_type))]
    if not fired:
        return
    depth = event.automation_depth + 1
    created = []
    for rule, why in fired:
        run = _new_run(
            rule,
            record_type,
            event.record_id,
            occurrence=f"e{event.pk}",
            trigger=why,
            event=event,
            depth=depth,
        )
        if run is None:
            continue
        if depth > settings.CRM_AUTOMATION_MAX_DEPTH:
            run.status = RunStatus.STOPPED
            run.error = _("Stopped: rules triggering rules reached the depth limit of %(n)s.") % {
                "n": settings.CRM_AUTOMATION_MAX_DEPTH
            }
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            log.warning(
                "rule %s on %s#%s stopped at depth %s", rule.pk, record_type, event.record_id, depth
            )
            continue
        created.append(ScheduledAction.objects.create(run=run, step=0, due_at=event.created_at))
    if created:
        ids = [row.pk for row in created]
        transaction.on_commit(lambda: run_now(ids))


def _new_run(
    rule, record_type, record_id, *, occurrence, trigger, event=None, depth=1, record=None
):
    """A run of `rule` on the record for this occurrence, or None if it had one."""
    try:
        with transaction.atomic():
            return RuleRun.objects.create(
                rule=rule,
                record_type=record_type,
                record_id=record_id,
                record_label=label(record) if record is not None else "",
                occurrence=occurrence,
                trigger=trigger[:200],
                event=event,
                depth=depth,
            )
    except IntegrityError:
        return None


def run_now(ids: list[int]) -> None:
    """Run freshly scheduled work in this process (the periodic tick is the backstop)."""
    for pk in ids:
        try:
            run_scheduled(pk)
        except Exception:
            log.exception("scheduled action %s failed", pk)


def complete_left_tasks(event: Change, record_type: str) -> int:
    """Tasks a rule made "to complete when the record leaves the stage", for the stage
    the record left."""
    from crm.models import Task, TaskStatus
    from crm.services.tasks import complete_task

    old_stage, new_stage = _stage_pair(event)
    if not old_stage or old_stage == new_stage:
        return 0
    task_ids = ActionRun.objects.filter(
        leave_stage_id=old_stage,
        run__record_type=record_type,
        run__record_id=event.record_id,
        object_id__isnull=False,
    ).values_list("object_id", flat=True)
    done = 0
    for task in Task.objects.filter(pk__in=list(task_ids), status=TaskStatus.OPEN):
        principal = at_depth(
            system(kind=ActorKind.RULE, name=_("left the stage")), (event.automation_depth or 0) + 1
        )
        complete_task(task=task, by=principal)
        done += 1
    return done


# --- Running -------------------------------------------------------------------------


def stale_after() -> timedelta:
    return timedelta(seconds=settings.CRM_AUTOMATION_STALE_CLAIM)


def claim(pk: int) -> bool:
    """Take a due row for this worker: pending, or claimed by a worker that died."""
    now = timezone.now()
    return bool(
        ScheduledAction.objects.filter(pk=pk, due_at__lte=now)
        .filter(
            Q(status=ScheduledStatus.PENDING)
            | Q(status=ScheduledStatus.CLAIMED, claimed_at__lt=now - stale_after())
        )
        .update(status=ScheduledStatus.CLAIMED, claimed_at=now, attempts=F("attempts") + 1)
    )


def principal_for(run: RuleRun):
    return at_depth(system(kind=ActorKind.RULE, id=run.rule_id, name=run.rule.name), run.depth)


def _language():
    return override(settings.LANGUAGE_CODE)


def run_scheduled(pk: int) -> str | None:
    """Claim and run one scheduled row; returns its new status (None: not ours)."""
    if not claim(pk):
        return None
    row = ScheduledAction.objects.select_related("run__rule").get(pk=pk)
    started = clock.monotonic()
    with _language():
        try:
            status = _run(row)
        except Exception as exc:
            status = _failed(row, exc)
    run = row.run
    if status in (ScheduledStatus.DONE, ScheduledStatus.CANCELLED, ScheduledStatus.FAILED):
        elapsed = int((clock.monotonic() - started) * 1000)
        RuleRun.objects.filter(pk=run.pk).update(
            duration_ms=Coalesce(F("duration_ms"), 0) + elapsed
        )
    return status


def _finish(
    row: ScheduledAction, status: str, *, run_status: str | None = None, error: str = ""
) -> str:
    now = timezone.now()
    ScheduledAction.objects.filter(pk=row.pk).update(status=status, last_error=error[:2000])
    if run_status:
        RuleRun.objects.filter(pk=row.run_id).update(
            status=run_status,
            finished_at=now if run_status != RunStatus.WAITING else None,
            error=error[:2000],
        )
    return status


def _failed(row: ScheduledAction, exc: Exception) -> str:
    from django.core.exceptions import ValidationError

    if isinstance(exc, ValidationError):
        error = " ".join(exc.messages)
    else:
        error = f"{type(exc).__name__}: {exc}"
    log.warning(
        "rule run %s step %s failed (attempt %s): %s", row.run_id, row.step, row.attempts, error
    )
    attempts = ScheduledAction.objects.values_list("attempts", flat=True).get(pk=row.pk)
    if attempts >= settings.CRM_AUTOMATION_MAX_ATTEMPTS:
        return _finish(row, ScheduledStatus.FAILED, run_status=RunStatus.FAILED, error=error)
    backoff = settings.CRM_AUTOMATION_RETRY_BASE * (2 ** (attempts - 1))
    ScheduledAction.objects.filter(pk=row.pk).update(
        status=ScheduledStatus.PENDING,
        due_at=timezone.now() + timedelta(seconds=backoff),
        last_error=error[:2000],
    )
    RuleRun.objects.filter(pk=row.run_id).update(error=error[:2000])
    return ScheduledStatus.PENDING


def _scope_ok(rule: Rule, record) -> bool:
    """The rule's pipeline applies to the record (stage robots: see the triggers)."""
    return not rule.pipeline_id or getattr(record, "pipeline_id", None) in (None, rule.pipeline_id)


def evaluate(rule: Rule, record, record_type: str) -> tuple[bool, list[dict]]:
    """Whether the record matches the rule's conditions now, and the trace of each."""
    spec = automated_type(record_type)
    base = spec.model.objects.filter(pk=record.pk)
    trace: list[dict] = []
    if not _scope_ok(rule, record):
        trace.append(
            {
                "text": _("Pipeline is “%(pipeline)s”") % {"pipeline": rule.pipeline},
                "actual": str(getattr(record, "pipeline", "")),
                "ok": False,
            }
        )
        return False, trace
    conditions = rule.conditions or {}
    entries = conditions.get("conditions") or []
    if not entries:
        return True, trace
    outcomes = []
    for entry in entries:
        if "conditions" in entry:
            inner = []
            children = []
            for leaf in entry["conditions"]:
                ok = base.filter(conds.leaf_q(record_type, leaf)).exists()
                inner.append(ok)
                children.append(_leaf_trace(record_type, leaf, record, ok))
            ok = (any(inner) if entry.get("match") == "any" else all(inner)) if inner else True
            trace.append({"group": entry.get("match", "all"), "ok": ok, "conditions": children})
        else:
            ok = base.filter(conds.leaf_q(record_type, entry)).exists()
            trace.append(_leaf_trace(record_type, entry, record, ok))
        outcomes.append(ok)
    matched = any(outcomes) if conditions.get("match") == "any" else all(outcomes)
    return matched, trace


def _leaf_trace(record_type: str, leaf: dict, record, ok: bool) -> dict:
    ref = conds.field_ref(record_type, leaf.get("field", ""))
    try:
        actual = conds.actual_value(record, ref) if ref else ""
    except Exception:
        actual = ""
    return {"text": conds.describe_leaf(record_type, leaf), "actual": actual, "ok": ok}


def _run(row: ScheduledAction) -> str:
    run = row.run
    rule = run.rule
    record = load(run.record_type, run.record_id)
    if record is None:
        return _finish(
            row,
            ScheduledStatus.CANCELLED,
            run_status=RunStatus.CANCELLED,
            error=_("The record is gone."),
        )
    if not rule.is_active:
        return _finish(
            row,
            ScheduledStatus.CANCELLED,
            run_status=RunStatus.CANCELLED,
            error=_("The rule was turned off."),
        )
    matched, trace = evaluate(rule, record, run.record_type)
    if row.step == 0:
        RuleRun.objects.filter(pk=run.pk).update(trace=trace, record_label=label(record))
    if not matched:
        if row.step == 0:
            return _finish(row, ScheduledStatus.DONE, run_status=RunStatus.NOT_MATCHED)
        return _finish(
            row,
            ScheduledStatus.CANCELLED,
            run_status=RunStatus.CANCELLED,
            error=_("Cancelled after the delay: the record no longer matches."),
        )
    steps = list(rule.actions.all().order_by("order", "id"))
    principal = principal_for(run)
    for index in range(row.step, len(steps)):
        step = steps[index]
        action = action_registry.action_type(step.kind)
        if step.kind == "delay":
            due = timezone.now() + action_registry.delay_of(step.params or {})
            with transaction.atomic():
                ScheduledAction.objects.get_or_create(
                    run=run, step=index + 1, defaults={"due_at": due}
                )
                ActionRun.objects.get_or_create(
                    run=run,
                    step=index,
                    defaults={
                        "kind": step.kind,
                        "result": _("Waiting until %(when)s.")
                        % {"when": action_registry._when(due)},
                    },
                )
                _finish(row, ScheduledStatus.DONE, run_status=RunStatus.WAITING)
            return ScheduledStatus.DONE
        if action is None:
            raise LookupError(_("No action “%(kind)s” is installed.") % {"kind": step.kind})
        _do(action, step, index, run, rule, record, principal)
        record = load(run.record_type, run.record_id)
        if record is None:
            break
    return _finish(row, ScheduledStatus.DONE, run_status=RunStatus.DONE)


def _do(action, step, index, run, rule, record, principal) -> None:
    if ActionRun.objects.filter(run=run, step=index).exists():
        return  # done by an earlier attempt
    ctx = action_registry.Context(
        rule=rule,
        record=record,
        record_type=run.record_type,
        principal=principal,
        now=timezone.now(),
        run=run,
        action=step,
    )
    started = clock.monotonic()
    if action.external:
        # Its row first: a crash after sending leaves the row, and no second send.
        try:
            marker = ActionRun.objects.create(
                run=run, step=index, kind=step.kind, status=ActionStatus.STARTED
            )
        except IntegrityError:
            return
        outcome = action.run(ctx, step.params or {})
        ActionRun.objects.filter(pk=marker.pk).update(
            status=ActionStatus.SKIPPED if outcome.skipped else ActionStatus.DONE,
            result=outcome.result[:500],
            duration_ms=int((clock.monotonic() - started) * 1000),
        )
        return
    with transaction.atomic():
        outcome = action.run(ctx, step.params or {})
        ActionRun.objects.create(
            run=run,
            step=index,
            kind=step.kind,
            status=ActionStatus.SKIPPED if outcome.skipped else ActionStatus.DONE,
            result=outcome.result[:500],
            object_id=outcome.object_id,
            leave_stage=outcome.leave_stage,
            duration_ms=int((clock.monotonic() - started) * 1000),
        )


def retry(run: RuleRun) -> bool:
    """An admin's retry of a failed run: its failed row is due again."""
    updated = ScheduledAction.objects.filter(run=run, status=ScheduledStatus.FAILED).update(
        status=ScheduledStatus.PENDING, due_at=timezone.now(), attempts=0
    )
    if updated:
        RuleRun.objects.filter(pk=run.pk).update(
            status=RunStatus.PENDING, error="", finished_at=None
        )
    return bool(updated)


def due_ids(limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        ScheduledAction.objects.filter(due_at__lte=now)
        .filter(
            Q(status=ScheduledStatus.PENDING)
            | Q(status=ScheduledStatus.CLAIMED, claimed_at__lt=now - stale_after())
        )
        .order_by("due_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def run_due(limit: int = 500) -> int:
    done = 0
    for pk in due_ids(limit):
        if run_scheduled(pk) is not None:
            done += 1
    return done


# --- Time triggers ---------------------------------------------------------------------


def scan_time_rules(now: datetime | None = None) -> int:
    """Give every time-triggered rule's due records a run; returns how many."""
    from .scan import scan_rule

    now = now or timezone.now()
    total = 0
    for rule in Rule.objects.filter(is_active=True, trigger__in=TIME_TRIGGERS).select_related(
        "stage", "pipeline"
    ):
        try:
            total += scan_rule(rule, now)
        except Exception:
            log.exception("scanning rule %s failed", rule.pk)
    return total


def tick() -> dict[str, int]:
    """Beat's minute: fire time triggers, then run what is due."""
    with _language():
        scanned = scan_time_rules()
    return {"scanned": scanned, "ran": run_due()}


def schedule_run(
    rule: Rule, record, *, occurrence: str, trigger: str, due: datetime
) -> RuleRun | None:
    """A time trigger's run of `rule` on `record`, once per occasion."""
    record_type = rule.record_type
    with transaction.atomic():
        run = _new_run(
            rule, record_type, record.pk, occurrence=occurrence, trigger=trigger, record=record
        )
        if run is None:
            return None
        ScheduledAction.objects.create(run=run, step=0, due_at=due)
    return run
