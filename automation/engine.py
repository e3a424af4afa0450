"""The rule engine: which rules an event fires, when time triggers fire, and running a
rule's actions once each.

1. **Events** (`handle_event`, a background subscriber of crm.events, handed a worker's
   message of events together inside `batch`): each active rule whose trigger the event
   answers gets a `RuleRun` (unique per rule, record and event), in the transaction of
   the event's receipt. A run whose actions up to the first delay act inside the
   database is done right there (see `_EventRuns`); the rest (an email, a delay) gets a
   `ScheduledAction` due now, which the same worker runs after the commit
   (`run_scheduled`); had it died first, the periodic `tick` finds the row.
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
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import BooleanField, Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.actors import ActorKind, at_depth, system, system_user
from crm.fields import schema
from crm.models import Change, EventKind

from . import actions as action_registry
from . import batch as shared
from . import conditions as conds
from .models import (
    TIME_TRIGGERS,
    ActionRun,
    ActionStatus,
    Rule,
    RuleAction,
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
    leave_tasks: bool = False


_cache = _Cache()
# Without a shared cache (no version key to read) a process re-reads its rules at most
# this often.
RECHECK_SECONDS = 1.0


def _bump_version() -> None:
    try:
        cache.set(VERSION_KEY, clock.time_ns(), None)
    except Exception:  # a cache outage must not stop an admin saving a rule
        log.warning("could not bump the rules version")


def rules_changed() -> None:
    """Called when a rule or its actions change: this process forgets its rules now,
    every other process once the change is committed (bumped before the commit, a
    worker could read the old rules under the new version and keep them)."""
    _cache.rules = None
    transaction.on_commit(_bump_version, robust=True)


def forget_rules() -> None:
    """Drop this process's rules (tests: a rolled-back rule must not linger)."""
    _cache.rules = None
    _cache.version = None
    _cache.leave_tasks = False


def _current_version() -> Any:
    try:
        return cache.get(VERSION_KEY)
    except Exception:
        return None


def active_rules() -> list[Rule]:
    """The active rules with their actions. Each call reads the rules version (one
    cache read; once per message of events) and reloads when another process changed a
    rule since; with no version to read, the rules are re-read at most once a second."""
    return shared.memo("rules", _active_rules)


def _active_rules() -> list[Rule]:
    version = _current_version()
    now = clock.monotonic()
    if _cache.rules is not None:
        if version is not None and version == _cache.version:
            return _cache.rules
        if version is None and now - _cache.checked < RECHECK_SECONDS:
            return _cache.rules
    _cache.rules = list(
        Rule.objects.filter(is_active=True)
        .select_related("pipeline", "stage")
        .prefetch_related("actions")
        .order_by("id")
    )
    # Tasks a rule made to complete when their record leaves the stage keep the engine
    # listening even once every rule is off.
    _cache.leave_tasks = RuleAction.objects.filter(
        kind="create_task", params__complete_on_leave=True
    ).exists()
    _cache.version = version
    _cache.checked = now
    return _cache.rules


def listening() -> bool:
    """Whether events need handing to the engine at all: while a rule is active, or a
    rule's tasks may still need completing when their record leaves its stage."""
    return bool(active_rules()) or _cache.leave_tasks


# --- Which rules an event fires --------------------------------------------------------

MODEL_TYPES = {"customer", "contact", "lead", "deal", "task"}


def _event_record_type(event: Change) -> str | None:
    # From Django's content-type cache: no query per event.
    model = ContentType.objects.get_for_id(event.record_type_id).model
    return model if model in MODEL_TYPES else None


def _stage_pair(event: Change) -> tuple[int | None, int | None]:
    stage = (event.fields or {}).get("stage")
    if isinstance(stage, list) and len(stage) == 2:
        return stage[0], stage[1]
    return None, None


# Events that take a record out of one stage into another: a move, losing it,
# converting a lead, switching a deal's pipeline.
MOVE_KINDS = frozenset(
    {EventKind.STAGE_MOVED, EventKind.LOST, EventKind.CONVERTED, EventKind.PIPELINE_CHANGED}
)


def fires(rule: Rule, event: Change, record_type: str) -> str | None:
    """A description of why `rule` fires on `event`, or None. (A rule's pipeline, and a
    stage robot's stage, are checked against the record when its run starts.)"""
    if rule.record_type != record_type or rule.trigger in TIME_TRIGGERS:
        return None
    check = EVENT_TRIGGERS.get(rule.trigger)
    return check(rule, event, record_type) if check else None


def _created(rule: Rule, event: Change, record_type: str) -> str | None:
    return _("created") if event.kind == EventKind.CREATED else None


def _entered(rule: Rule, event: Change, record_type: str) -> str | None:
    """A move into the robot's stage; a new lead or deal enters its first stage."""
    _old_stage, new_stage = _stage_pair(event)
    if event.kind == EventKind.CREATED and is_staged(record_type):
        if rule.stage_id is None or new_stage in (None, rule.stage_id):
            return _("created in the stage")
        return None
    if event.kind in MOVE_KINDS and new_stage and rule.stage_id in (None, new_stage):
        return _("entered the stage")
    return None


def _left(rule: Rule, event: Change, record_type: str) -> str | None:
    """A move out of the robot's stage (or out of a stage of the rule's pipeline): the
    record may have left the pipeline too, so this is the only place it is checked."""
    old_stage, _new_stage = _stage_pair(event)
    if event.kind not in MOVE_KINDS or not old_stage or rule.stage_id not in (None, old_stage):
        return None
    if rule.pipeline_id and not rule.stage_id:
        from pipelines.models import Stage

        if not Stage.objects.filter(pk=old_stage, pipeline_id=rule.pipeline_id).exists():
            return None
    return _("left the stage")


def _field_changed(rule: Rule, event: Change, record_type: str) -> str | None:
    """The field changed (at all, or to the value the rule waits for)."""
    name = (rule.trigger_params or {}).get("field")
    pair = (event.fields or {}).get(name)
    if event.kind == EventKind.CREATED or not isinstance(pair, list) or len(pair) != 2:
        return None
    wanted = (rule.trigger_params or {}).get("to")
    if wanted not in (None, "") and not _became(pair, wanted, rule, name):
        return None
    return _("%(field)s changed") % {"field": name}


def _converted(rule: Rule, event: Change, record_type: str) -> str | None:
    return _("converted") if event.kind == EventKind.CONVERTED else None


def _won(rule: Rule, event: Change, record_type: str) -> str | None:
    return _("won") if event.kind in MOVE_KINDS and _status_to(event) == "won" else None


def _lost(rule: Rule, event: Change, record_type: str) -> str | None:
    return _("lost") if event.kind in MOVE_KINDS and _status_to(event) == "lost" else None


def _status_to(event: Change) -> Any:
    pair = (event.fields or {}).get("status")
    return pair[1] if isinstance(pair, list) and len(pair) == 2 else None


EVENT_TRIGGERS = {
    Trigger.CREATED: _created,
    Trigger.STAGE_ENTERED: _entered,
    Trigger.STAGE_LEFT: _left,
    Trigger.FIELD_CHANGED: _field_changed,
    Trigger.LEAD_CONVERTED: _converted,
    Trigger.DEAL_WON: _won,
    Trigger.DEAL_LOST: _lost,
}


def _became(pair: list, wanted: Any, rule: Rule, name: str) -> bool:
    """Whether an event's raw (old, new) values (ids for relations, decimals as strings,
    UTC ISO datetimes) mean the field became what the rule waits for, kept in a
    condition's stored form (an item code, a user name, a tag name, "120000.00"); for
    tags and multiple choices: it was added."""
    old, new = pair
    ref = conds.field_ref(rule.record_type, name)
    if new is None or new == [] or ref is None:
        return False
    if ref.kind == conds.ITEM:
        from crm.models import DictionaryItem

        return DictionaryItem.objects.filter(pk=new, code=wanted).exists()
    if ref.kind == conds.USER:
        from accounts.models import User

        return User.objects.filter(pk=new, username=wanted).exists()
    if ref.kind == conds.TAGS:
        from crm.models import Tag

        added = set(new) - set(old or [])
        return Tag.objects.filter(pk__in=added, name=wanted).exists()
    if ref.kind == conds.MULTI:
        wanted_codes = set(wanted if isinstance(wanted, list) else [wanted])
        return wanted_codes <= set(new) and not wanted_codes <= set(old or [])
    return _parsed(ref.kind, new) == _parsed(ref.kind, wanted)


def _parsed(kind: str, value: Any) -> Any:
    """A stored value in a form that compares equal however it was written."""
    try:
        if kind == conds.NUMBER:
            return Decimal(str(value))
        if kind == conds.DATETIME:
            return datetime.fromisoformat(str(value))
    except (ValueError, ArithmeticError):
        return str(value)
    if kind == conds.TEXT:
        return str(value).casefold()
    return str(value)


def wants(event: Change) -> bool:
    return event.automation_depth is not None and _event_record_type(event) is not None


@contextmanager
def batch(events: list[Change]) -> Iterator[None]:
    """A worker's message of events, handled together (see automation/batch.py): the
    rules and field definitions read once, the records loaded in one query per type,
    and whether a moved record has tasks to complete in one query."""
    with shared.sharing() as state, schema.pinned():
        rules = active_rules()
        _preload(state, events, rules)
        if _cache.leave_tasks:
            state.leaving = _leaving(events)
        yield
        shared.flush()


def _preload(state: shared.Shared, events: list[Change], rules: list[Rule]) -> None:
    """The records of the events some rule may fire on (edits no rule watches load
    nothing)."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        record_type = _event_record_type(event)
        if record_type is None or event.automation_depth is None:
            continue
        if any(_may_fire(rule, event, record_type) for rule in _event_rules(record_type)):
            wanted.setdefault(record_type, set()).add(event.record_id)
    for record_type, ids in wanted.items():
        spec = automated_type(record_type)
        found = spec.model.objects.select_related(*spec.select_related).in_bulk(list(ids))
        for pk in ids:
            state.records[(record_type, pk)] = found.get(pk, shared.GONE)


def _may_fire(rule: Rule, event: Change, record_type: str) -> bool:
    """`fires`, without the queries some triggers make (a field changed to a dictionary
    item): true whenever `fires` may be."""
    if rule.trigger == Trigger.FIELD_CHANGED:
        return (rule.trigger_params or {}).get("field") in (event.fields or {})
    if rule.trigger == Trigger.STAGE_LEFT:
        return event.kind in MOVE_KINDS
    return bool(fires(rule, event, record_type))


def _leaving(events: list[Change]) -> set[tuple[str, int, int]]:
    """(record type, id, stage) of the moved records that have a rule's task to
    complete on leaving the stage they left."""
    moved: dict[str, tuple[set[int], set[int]]] = {}
    for event in events:
        old_stage, new_stage = _stage_pair(event)
        record_type = _event_record_type(event)
        if event.kind in MOVE_KINDS and record_type and old_stage and old_stage != new_stage:
            ids, stages = moved.setdefault(record_type, (set(), set()))
            ids.add(event.record_id)
            stages.add(old_stage)
    found: set[tuple[str, int, int]] = set()
    for record_type, (ids, stages) in moved.items():
        rows = ActionRun.objects.filter(
            run__record_type=record_type,
            run__record_id__in=ids,
            leave_stage_id__in=stages,
            object_id__isnull=False,
        ).values_list("run__record_id", "leave_stage_id")
        found.update((record_type, record_id, stage) for record_id, stage in rows)
    return found


def handle_event(event: Change) -> None:
    """The subscriber: runs inside the transaction of the event's receipt. Each rule
    the event fires gets a run (once per event). A run whose actions up to the first
    delay all act inside the database is done right here, in that transaction (each
    action with its `ActionRun` row, as in a worker's run); the rest (an email, a
    failure to retry) becomes a row run by this worker once the receipt commits."""
    record_type = _event_record_type(event)
    if record_type is None or event.automation_depth is None:
        return
    rules = _event_rules(record_type)  # also learns whether a task completes on leaving
    if event.kind in MOVE_KINDS and _cache.leave_tasks:
        complete_left_tasks(event, record_type)
    fired = [(rule, why) for rule in rules if (why := fires(rule, event, record_type))]
    if not fired:
        return
    runner = _EventRuns(event, record_type)
    ids = [pk for rule, why in fired if (pk := runner.run(rule, why))]
    if ids:
        transaction.on_commit(lambda: run_now(ids))


def _event_rules(record_type: str) -> list[Rule]:
    """The active rules of the record type that events fire (per message: once)."""
    return shared.memo(
        ("event rules", record_type),
        lambda: [
            rule
            for rule in active_rules()
            if rule.record_type == record_type and rule.trigger not in TIME_TRIGGERS
        ],
    )


class _EventRuns:
    """The runs one event fires, sharing what they read: the record (loaded once, and
    again only after a run changed it) and the system user."""

    def __init__(self, event: Change, record_type: str) -> None:
        self.event, self.record_type = event, record_type
        self.depth = event.automation_depth + 1
        self._record: Any = None
        self._user = None

    def record(self):
        if self._record is None:
            found = shared.record(self.record_type, self.event.record_id)
            if found is None:
                found = load(self.record_type, self.event.record_id)
            self._record = False if found in (None, shared.GONE) else found
        return self._record or None

    def principal(self, rule: Rule):
        """The rule acting one level deeper than the event (one per rule and depth in a
        message)."""
        return shared.memo(("principal", rule.pk, self.depth), lambda: self._principal(rule))

    def _principal(self, rule: Rule):
        if self._user is None:
            self._user = shared.memo("system_user", system_user)
        return at_depth(
            system(kind=ActorKind.RULE, id=rule.pk, name=rule.name, user=self._user), self.depth
        )

    def run(self, rule: Rule, why: str) -> int | None:
        """The rule's run on the event's record; the id of a row to run after the
        commit, if it needs one."""
        started = clock.monotonic()
        new_run = _run_factory(rule, self.record_type, self.event, why, self.depth)
        if self.depth > settings.CRM_AUTOMATION_MAX_DEPTH:
            run = new_run()
            if run:
                _stop(run)
            return None
        steps = _steps(rule)
        if not _immediate(steps):
            return _scheduled(new_run(), self.event.created_at)
        record = self.record()
        if record is None:
            new_run(status=RunStatus.CANCELLED, error=_("The record is gone."))
            return None
        try:
            matched, trace = evaluate(rule, record, self.record_type)
        except DatabaseError:
            raise  # the transaction is spoilt: the delivery is retried
        except Exception:
            # A condition that cannot be checked (its field gone...): a row runs it, and
            # its failure is retried with backoff, then shown to an admin.
            log.exception("rule %s: checking the conditions failed", rule.pk)
            return _scheduled(new_run(), self.event.created_at)
        fields = {"trace": trace, "record_label": label(record)}
        if not matched:
            new_run(status=RunStatus.NOT_MATCHED, duration_ms=_ms(started), **fields)
            return None
        # In a message, a run with no delay is written with the message's rows, as it
        # ends (nothing needs its id before then).
        in_message = shared.current() is not None
        run = new_run(deferred=in_message and all(s.kind != "delay" for s in steps), **fields)
        if not run:
            return None
        return self._act(run, rule, steps, record, started)

    def _act(self, run: RuleRun, rule: Rule, steps: list, record, started: float) -> int | None:
        principal = self.principal(rule)
        self._record = None  # the actions change it: the next rule reads it again
        status = RunStatus.DONE
        # In a message, no savepoint: a failing action fails the message, which is then
        # handled again one event at a time, each run in a savepoint of its own (below).
        in_message = shared.current() is not None
        try:
            with nullcontext() if in_message else transaction.atomic():
                for index, step in enumerate(steps):
                    if step.kind == "delay":
                        _delay(run, step, index)
                        status = RunStatus.WAITING
                        break
                    action = action_registry.action_type(step.kind)
                    _do(action, step, index, run, rule, record, principal, new=True, atomic=False)
                    if index + 1 < len(steps):
                        record = load(run.record_type, run.record_id)
                        if record is None:
                            break
        except Exception as exc:
            if in_message:
                raise
            # Nothing of the run stays done: a row retries it from its first action,
            # with the backoff a worker's failed attempt gets.
            row = ScheduledAction.objects.create(
                run=run,
                step=0,
                due_at=timezone.now(),
                status=ScheduledStatus.CLAIMED,
                claimed_at=timezone.now(),
                attempts=1,
            )
            with _language():
                _failed(row, exc)
            return None
        run.status = status
        run.finished_at = timezone.now() if status == RunStatus.DONE else None
        run.duration_ms = _ms(started)
        if run.pk is None:
            return None  # deferred: inserted as it is now when the message's rows are
        if not shared.defer_update(run, ("status", "finished_at", "duration_ms")):
            run.save(update_fields=["status", "finished_at", "duration_ms"])
        return None


def _scheduled(run: RuleRun | None, due: datetime) -> int | None:
    """A row due at `due` running `run` from its first action (None: no new run)."""
    return ScheduledAction.objects.create(run=run, step=0, due_at=due).pk if run else None


def _run_factory(rule: Rule, record_type: str, event: Change, why: str, depth: int):
    def new_run(*, deferred: bool = False, **fields) -> RuleRun | None:
        if fields.get("status") in (RunStatus.NOT_MATCHED, RunStatus.CANCELLED):
            fields["finished_at"] = timezone.now()
            deferred = True
        if deferred:
            ended = RuleRun(
                rule=rule,
                record_type=record_type,
                record_id=event.record_id,
                occurrence=f"e{event.pk}",
                trigger=why[:200],
                event=event,
                depth=depth,
                **fields,
            )
            # A log line, or a run whose end is set before the message's rows are
            # written: inserted with the message's others (before its action rows).
            if shared.defer(ended):
                return ended
        # In a message's batch, no savepoint: the events' receipts, inserted first in
        # this transaction, already make this delivery the only one (and "e<id>" is
        # the event's alone). Called any other way, a second run is refused by the key.
        return _new_run(
            rule,
            record_type,
            event.record_id,
            occurrence=f"e{event.pk}",
            trigger=why,
            event=event,
            depth=depth,
            savepoint=shared.current() is None,
            **fields,
        )

    return new_run


def _steps(rule: Rule) -> list[RuleAction]:
    """The rule's actions in order, from the prefetched rows when there are some."""
    return sorted(rule.actions.all(), key=lambda step: (step.order, step.id))


def _immediate(steps: list[RuleAction]) -> bool:
    """Whether every action before the first delay is installed and acts inside the
    database, so the run can be done in the event's transaction."""
    for step in steps:
        if step.kind == "delay":
            return True
        action = action_registry.action_type(step.kind)
        if action is None or action.external:
            return False
    return True


def _ms(started: float) -> int:
    return int((clock.monotonic() - started) * 1000)


def _stop(run: RuleRun) -> None:
    """A run too deep in rules triggering rules: logged as stopped, with why."""
    limit = settings.CRM_AUTOMATION_MAX_DEPTH
    run.status = RunStatus.STOPPED
    run.error = _("Stopped: rules triggering rules reached the depth limit of %(n)s.") % {
        "n": limit
    }
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    log.warning(
        "rule %s on %s#%s stopped at depth %s (limit %s)",
        run.rule_id,
        run.record_type,
        run.record_id,
        run.depth,
        limit,
    )


def _new_run(
    rule,
    record_type,
    record_id,
    *,
    occurrence,
    trigger,
    event=None,
    depth=1,
    record=None,
    savepoint=True,
    **fields,
):
    """A run of `rule` on the record for this occurrence, or None if it had one
    (`savepoint=False`: the caller knows it has none)."""
    fields.setdefault("record_label", label(record) if record is not None else "")

    def create():
        return RuleRun.objects.create(
            rule=rule,
            record_type=record_type,
            record_id=record_id,
            occurrence=occurrence,
            trigger=trigger[:200],
            event=event,
            depth=depth,
            **fields,
        )

    if not savepoint:
        return create()
    try:
        with transaction.atomic():
            return create()
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
    state = shared.current()
    known = state.leaving if state is not None else None
    if known is not None:
        if (record_type, event.record_id, old_stage) not in known:
            return 0
        shared.flush()  # the action rows of the message so far, read just below
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
        shared.forget("task", [task.pk])
        if task.activity_id:
            shared.records_changed()  # its customer's planned follow-up is cleared
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


# Triggers whose record has just left the rule's stage for a closing one.
CLOSING_TRIGGERS = frozenset({Trigger.DEAL_WON, Trigger.DEAL_LOST, Trigger.LEAD_CONVERTED})


def _out_of_scope(rule: Rule, record) -> dict | None:
    """The trace entry of a record outside the rule's pipeline, or outside a stage
    robot's stage (it moved on before a delay ended: "unless it has moved on"); None
    when the rule applies to it."""
    if rule.trigger == Trigger.STAGE_LEFT:
        return None  # it left the stage (and maybe the pipeline): see `_left`
    pipeline_id = getattr(record, "pipeline_id", None)
    if rule.pipeline_id and pipeline_id not in (None, rule.pipeline_id):
        return {
            "text": _("Pipeline is “%(pipeline)s”") % {"pipeline": rule.pipeline},
            "actual": str(getattr(record, "pipeline", "")),
            "ok": False,
        }
    stage_id = getattr(record, "stage_id", None)
    if rule.stage_id and rule.trigger not in CLOSING_TRIGGERS and stage_id != rule.stage_id:
        return {
            "text": _("Stage is “%(stage)s”") % {"stage": rule.stage},
            "actual": str(getattr(record, "stage", "") or ""),
            "ok": False,
        }
    return None


def evaluate(rule: Rule, record, record_type: str) -> tuple[bool, list[dict]]:
    """Whether the record matches the rule's conditions now, and the trace of each."""
    outside = _out_of_scope(rule, record)
    if outside is not None:
        return False, [outside]
    conditions = rule.conditions or {}
    held = iter(_outcomes(record_type, record, conds.leaves(conditions)))
    trace, outcomes = [], []
    for entry in conditions.get("conditions") or []:
        if "conditions" in entry:
            children = [
                _leaf_trace(record_type, leaf, record, next(held)) for leaf in entry["conditions"]
            ]
            ok = _combined([child["ok"] for child in children], entry.get("match"))
            trace.append({"group": entry.get("match", "all"), "ok": ok, "conditions": children})
        else:
            trace.append(_leaf_trace(record_type, entry, record, next(held)))
            ok = trace[-1]["ok"]
        outcomes.append(ok)
    return _combined(outcomes, conditions.get("match")), trace


def _outcomes(record_type: str, record, leaves: list[dict]) -> list[bool]:
    """Whether the record meets each condition: those `conditions.in_python` can check
    on the record in hand, then the rest in one query, each one's Q as `CASE WHEN <Q>
    THEN true ELSE false END`, true exactly where a filter by it would keep the row
    (NULL is false; a condition that cannot hold is false)."""
    known = [conds.in_python(record_type, leaf, record) for leaf in leaves]
    asked = [index for index, outcome in enumerate(known) if outcome is None]
    if not asked:
        return known
    flags = {
        f"c{index}": Case(
            When(conds.leaf_q(record_type, leaves[index]), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        for index in asked
    }
    model = automated_type(record_type).model
    row = model.objects.filter(pk=record.pk).annotate(**flags).values_list(*flags).first()
    for index, flag in zip(asked, row or [False] * len(asked), strict=True):
        known[index] = bool(flag)
    return known


def _combined(outcomes: list[bool], match: str | None) -> bool:
    """All (or any) of the outcomes; no outcomes at all hold."""
    if not outcomes:
        return True
    return any(outcomes) if match == "any" else all(outcomes)


def _leaf_trace(record_type: str, leaf: dict, record, ok: bool) -> dict:
    """One condition's outcome on the record, with the record's value as people read
    it."""
    ref = conds.field_ref(record_type, leaf.get("field", ""))
    try:
        actual = conds.actual_value(record, ref) if ref else ""
    except Exception:
        actual = ""
    return {"text": conds.describe_leaf(record_type, leaf), "actual": actual, "ok": ok}


def _run(row: ScheduledAction) -> str:
    """Check the record still qualifies, then do the run's actions from the row's step
    on, up to a delay; returns the row's new status."""
    record = load(row.run.record_type, row.run.record_id)
    ended = _end_early(row, record)
    return ended if ended is not None else _act(row, record)


def _end_early(row: ScheduledAction, record) -> str | None:
    """End the row when the record is gone, the rule was turned off, or the record does
    not match (at once: not matched; after a delay: cancelled); None to go on."""
    run, rule = row.run, row.run.rule
    if record is None:
        return _cancel(row, _("The record is gone."))
    if not rule.is_active:
        return _cancel(row, _("The rule was turned off."))
    matched, trace = evaluate(rule, record, run.record_type)
    if row.step == 0:
        RuleRun.objects.filter(pk=run.pk).update(trace=trace, record_label=label(record))
    if matched:
        return None
    if row.step == 0:
        return _finish(row, ScheduledStatus.DONE, run_status=RunStatus.NOT_MATCHED)
    return _cancel(row, _("Cancelled after the delay: the record no longer matches."))


def _cancel(row: ScheduledAction, why: str) -> str:
    return _finish(row, ScheduledStatus.CANCELLED, run_status=RunStatus.CANCELLED, error=why)


def _act(row: ScheduledAction, record) -> str:
    """The actions from the row's step on, each once; a delay ends the row."""
    run, rule = row.run, row.run.rule
    steps = _steps(rule)
    principal = principal_for(run)
    for index in range(row.step, len(steps)):
        step = steps[index]
        if step.kind == "delay":
            return _wait(row, step, index)
        action = action_registry.action_type(step.kind)
        if action is None:
            raise LookupError(_("No action “%(kind)s” is installed.") % {"kind": step.kind})
        _do(action, step, index, run, rule, record, principal)
        record = load(run.record_type, run.record_id)
        if record is None:
            break
    return _finish(row, ScheduledStatus.DONE, run_status=RunStatus.DONE)


def _wait(row: ScheduledAction, step, index: int) -> str:
    """A delay: the actions after it become a row due when it ends (checked again
    then), and the run waits."""
    with transaction.atomic():
        _delay(row.run, step, index)
        return _finish(row, ScheduledStatus.DONE, run_status=RunStatus.WAITING)


def _delay(run: RuleRun, step: RuleAction, index: int) -> None:
    """The row of the actions after a delay, due when it ends, and the delay's own
    `ActionRun` saying until when."""
    due = timezone.now() + action_registry.delay_of(step.params or {})
    ScheduledAction.objects.get_or_create(run=run, step=index + 1, defaults={"due_at": due})
    ActionRun.objects.get_or_create(
        run=run,
        step=index,
        defaults={
            "kind": step.kind,
            "result": _("Waiting until %(when)s.") % {"when": action_registry._when(due)},
        },
    )


def _do(
    action, step, index, run, rule, record, principal, *, new: bool = False, atomic: bool = True
) -> None:
    """Do one action once: an earlier attempt's `ActionRun` row means it is done (`new`:
    the run was made just now and has none; `atomic=False`: the caller's savepoint
    covers the action and its row)."""
    if not new and ActionRun.objects.filter(run=run, step=index).exists():
        return
    ctx = action_registry.Context(
        rule=rule,
        record=record,
        record_type=run.record_type,
        principal=principal,
        now=timezone.now(),
        run=run,
        action=step,
    )
    if action.external:
        _do_external(action, ctx, step, index)
        return
    if action.changes_records:
        # The message's deferred rows (its tasks among them) first: what the action
        # changes includes them (a customer released to the pool takes its open tasks).
        shared.flush()
    started = clock.monotonic()
    with transaction.atomic() if atomic else nullcontext():
        outcome = action.run(ctx, step.params or {})
        row = ActionRun(run=run, step=index, kind=step.kind, **_outcome_fields(outcome, started))
        # In the caller's savepoint (`atomic=False`), written with the message's rows.
        if atomic or not shared.defer(row):
            row.save(force_insert=True)
    if action.changes_records:
        shared.records_changed()
    state = shared.current()
    if outcome.leave_stage is not None and state is not None and state.leaving is not None:
        state.leaving.add((run.record_type, run.record_id, outcome.leave_stage.pk))


def _do_external(action, ctx, step, index) -> None:
    """An action outside the database (an email): its row commits first, so a worker
    killed after sending leaves the row and a retry never sends twice. An action that
    raised did not act: its row goes, and the retry acts."""
    started = clock.monotonic()
    try:
        with transaction.atomic():
            marker = ActionRun.objects.create(
                run=ctx.run, step=index, kind=step.kind, status=ActionStatus.STARTED
            )
    except IntegrityError:
        return  # another worker has it
    try:
        outcome = action.run(ctx, step.params or {})
    except Exception:
        ActionRun.objects.filter(pk=marker.pk).delete()
        raise
    ActionRun.objects.filter(pk=marker.pk).update(**_outcome_fields(outcome, started))


def _outcome_fields(outcome, started: float) -> dict:
    return {
        "status": ActionStatus.SKIPPED if outcome.skipped else ActionStatus.DONE,
        "result": outcome.result[:500],
        "object_id": outcome.object_id,
        "leave_stage": outcome.leave_stage,
        "duration_ms": int((clock.monotonic() - started) * 1000),
    }


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
