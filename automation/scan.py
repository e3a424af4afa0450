"""Time triggers: which records' moment has come since a rule's last scan.

Each trigger names an occasion per record, and a run is unique per rule, record and
occasion, so a scan repeated (two beats, a retried task) fires nothing twice:

- time in stage: the stage and the time the record entered it (entering again is a new
  occasion); the limit is N hours/days or the stage's own time limit;
- no follow-up for N days: the time of the last follow-up (a new follow-up, then N more
  quiet days, is a new occasion);
- anniversary: the year (a birthday on 29 February is kept on the 28th in other years);
- schedule: the day, at a time of day, every day or on one weekday.

A scan looks only at what became due since the rule's `scanned_until` (the first scan of
a newly active rule sees every record already due: activating asks for confirmation when
that is many). At most `CRM_AUTOMATION_SCAN_LIMIT` runs per rule per scan; the rest wait
for the next minute.
"""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from pipelines.models import Stage, StageKind

from . import conditions as conds
from .models import Rule, RuleRun, Trigger
from .records import automated_type


def _base(rule: Rule):
    spec = automated_type(rule.record_type)
    qs = spec.model.objects.all()
    if rule.record_type in ("lead", "deal"):
        qs = qs.filter(status="open")
        if rule.pipeline_id:
            qs = qs.filter(pipeline_id=rule.pipeline_id)
        if rule.stage_id:
            qs = qs.filter(stage_id=rule.stage_id)
    return qs.filter(conds.conditions_q(rule.record_type, rule.conditions))


def _at(params: dict) -> time:
    text = str(params.get("at") or "09:00")
    try:
        hour, minute = (int(part) for part in text.split(":", 1))
        return time(hour, minute)
    except (ValueError, TypeError):
        return time(9, 0)


def _limit() -> int:
    return settings.CRM_AUTOMATION_SCAN_LIMIT


def scan_rule(rule: Rule, now: datetime) -> int:
    scanner = SCANNERS[rule.trigger]
    fired, complete = scanner(rule, now)
    if complete:
        Rule.objects.filter(pk=rule.pk).update(scanned_until=now)
    return fired


def _fire(
    rule: Rule, records, *, occurrence, trigger: str, now: datetime, limit: int | None = None
) -> tuple[int, bool]:
    """Give each record a run for its occasion, at most `limit` new runs (the scan
    limit); returns how many, and whether every record was seen (else the rest wait for
    the next scan — records that already had their run do not count, so a scan never
    stalls on them)."""
    from .engine import schedule_run

    limit = _limit() if limit is None else limit
    fired = 0
    for record in records.iterator(chunk_size=500):
        if fired >= limit:
            return fired, False
        if schedule_run(rule, record, occurrence=occurrence(record), trigger=trigger, due=now):
            fired += 1
    return fired, True


def _not_run_since(rule: Rule, moment: str) -> Exists:
    """Records with no run of the rule since their `moment` (the stage entered, the
    last follow-up): those already done are not read again."""
    return ~Exists(
        RuleRun.objects.filter(
            rule=rule,
            record_type=rule.record_type,
            record_id=OuterRef("pk"),
            created_at__gte=OuterRef(moment),
        )
    )


def _not_run_for(rule: Rule, occurrence: str) -> Exists:
    """Records with no run of the rule for this day's (or year's) occasion."""
    return ~Exists(
        RuleRun.objects.filter(
            rule=rule, record_type=rule.record_type, record_id=OuterRef("pk"), occurrence=occurrence
        )
    )


def _time_in_stage(rule: Rule, now: datetime) -> tuple[int, bool]:
    params = rule.trigger_params or {}
    if params.get("use_time_limit"):
        stages = Stage.objects.filter(kind=StageKind.OPEN, time_limit_days__isnull=False)
        if rule.stage_id:
            stages = stages.filter(pk=rule.stage_id)
        elif rule.pipeline_id:
            stages = stages.filter(pipeline_id=rule.pipeline_id)
        limits = [(stage, timedelta(days=stage.time_limit_days)) for stage in stages]
    else:
        limit = timedelta(hours=int(params.get("hours") or 0), days=int(params.get("days") or 0))
        limits = [(rule.stage, limit)]
    total, complete = 0, True
    for stage, limit in limits:
        records = _base(rule)
        if stage is not None:
            records = records.filter(stage=stage)
        records = records.filter(stage_entered_at__lte=now - limit)
        if rule.scanned_until:
            records = records.filter(stage_entered_at__gt=rule.scanned_until - limit)
        fired, done = _fire(
            rule,
            records.filter(_not_run_since(rule, "stage_entered_at")).order_by(
                "stage_entered_at", "pk"
            ),
            occurrence=lambda r: f"s{r.stage_id}:{int(r.stage_entered_at.timestamp())}",
            trigger=_("in the stage longer than %(limit)s") % {"limit": _duration(limit)},
            now=now,
            limit=_limit() - total,
        )
        total += fired
        complete = complete and done
    return total, complete


def _duration(limit: timedelta) -> str:
    if limit.seconds == 0 and limit.days:
        return _("%(n)s days") % {"n": limit.days}
    return _("%(n)s hours") % {"n": int(limit.total_seconds() // 3600)}


def _last_touch(rule: Rule):
    if rule.record_type == "customer":
        return Coalesce("last_activity_at", "created_at")
    if rule.record_type in ("deal", "contact"):
        return Coalesce("customer__last_activity_at", "created_at")
    return F("updated_at")


def _no_activity(rule: Rule, now: datetime) -> tuple[int, bool]:
    days = int((rule.trigger_params or {}).get("days") or 0)
    limit = timedelta(days=days)
    records = _base(rule).annotate(_touch=_last_touch(rule)).filter(_touch__lte=now - limit)
    if rule.scanned_until:
        records = records.filter(_touch__gt=rule.scanned_until - limit)
    return _fire(
        rule,
        records.filter(_not_run_since(rule, "_touch")).order_by("_touch", "pk"),
        occurrence=lambda r: f"a{int(r._touch.timestamp())}",
        trigger=_("no follow-up for %(n)s days") % {"n": days},
        now=now,
    )


def _fire_moment(rule: Rule, now: datetime) -> datetime | None:
    """Today's moment for a daily trigger, if it has come and was not scanned yet."""
    local = timezone.localtime(now)
    moment = timezone.make_aware(datetime.combine(local.date(), _at(rule.trigger_params or {})))
    if now < moment or (rule.scanned_until and rule.scanned_until >= moment):
        return None
    return moment


def _anniversary(rule: Rule, now: datetime) -> tuple[int, bool]:
    moment = _fire_moment(rule, now)
    if moment is None:
        return 0, True
    name = (rule.trigger_params or {}).get("field") or "birthday"
    day = timezone.localtime(now).date()
    days = [(day.month, day.day)]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        days.append((2, 29))
    match = Q(pk__in=[])
    for month, dom in days:
        if name.startswith("cf_"):
            match |= Q(**{f"custom__{name[3:]}__endswith": f"-{month:02d}-{dom:02d}"})
        else:
            match |= Q(**{f"{name}__month": month, f"{name}__day": dom})
    return _fire(
        rule,
        _base(rule).filter(match, _not_run_for(rule, f"y{day.year}")).order_by("pk"),
        occurrence=lambda r: f"y{day.year}",
        trigger=_("anniversary of %(field)s") % {"field": _field_label(rule, name)},
        now=now,
    )


def _field_label(rule: Rule, name: str) -> str:
    ref = conds.field_ref(rule.record_type, name)
    return ref.label if ref else name


def _schedule(rule: Rule, now: datetime) -> tuple[int, bool]:
    moment = _fire_moment(rule, now)
    if moment is None:
        return 0, True
    weekday = (rule.trigger_params or {}).get("weekday")
    day = timezone.localtime(now).date()
    if weekday and int(weekday) != day.isoweekday():
        return 0, True
    return _fire(
        rule,
        _base(rule).filter(_not_run_for(rule, f"d{day.isoformat()}")).order_by("pk"),
        occurrence=lambda r: f"d{day.isoformat()}",
        trigger=_("scheduled at %(at)s") % {"at": _at(rule.trigger_params or {}).strftime("%H:%M")},
        now=now,
    )


SCANNERS = {
    Trigger.TIME_IN_STAGE: _time_in_stage,
    Trigger.NO_ACTIVITY: _no_activity,
    Trigger.ANNIVERSARY: _anniversary,
    Trigger.SCHEDULE: _schedule,
}
