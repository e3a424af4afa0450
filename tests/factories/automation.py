"""Factories of automation: rules made as the admin saves them, email templates; and the
worker's part of a rule's life, done in the test's own process (events handed to the
engine, due work run).

A rule's trigger settings, conditions and actions' settings are stored in cleaned form
only (automation.rules.clean_trigger, automation.conditions.clean_conditions,
automation.actions.clean_params): `make_rule` cleans what it is given, so a test writes
them as an admin types them ("vip", "owner", "2026-03-01")."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import factory
from django.utils import timezone

from automation.actions import clean_params
from automation.conditions import clean_conditions
from automation.models import EmailTemplate, Rule, RuleAction, RuleRun
from automation.rules import clean_trigger

_names = itertools.count(1)


def make_rule(
    record_type: str,
    trigger: str,
    *,
    name: str = "",
    params: dict | None = None,
    conditions: Any = None,
    actions: Iterable[tuple[str, dict]] = (),
    pipeline=None,
    stage=None,
    active: bool = True,
) -> Rule:
    """A rule with its ordered actions, each setting checked as the admin checks it:
    `conditions` a list of leaves (all of them) or {"match", "conditions"}, `actions`
    (kind, settings) pairs."""
    if stage is not None and pipeline is None:
        pipeline = stage.pipeline
    steps = [(kind, clean_params(kind, record_type, settings)) for kind, settings in actions]
    rule = Rule.objects.create(
        name=name or f"{record_type} {trigger} #{next(_names)}",
        record_type=record_type,
        trigger=trigger,
        trigger_params=clean_trigger(record_type, trigger, params or {}, stage=stage),
        conditions=clean_conditions(record_type, conditions),
        pipeline=pipeline,
        stage=stage,
        is_active=active,
    )
    for order, (kind, settings) in enumerate(steps):
        RuleAction.objects.create(rule=rule, order=order, kind=kind, params=settings)
    return rule


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    """An email a rule sends; {{ placeholders }} name the record's fields."""

    class Meta:
        model = EmailTemplate
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"邮件模板{n}")
    subject = "{{ record }}：您好"
    body = "尊敬的 {{ record }}，祝您生活愉快。——{{ site }}"


def deliver_events(capture, *, rounds: int = 10) -> int:
    """Hand every undelivered record event to the subscribers, as the worker's delivery
    task does, then the events the rules' actions wrote in turn, until none is left (or
    `rounds` passes); `capture` is pytest-django's django_capture_on_commit_callbacks.
    Returns how many events were delivered."""
    from crm import events
    from crm.models import Change

    delivered = 0
    for _round in range(rounds):
        ids = list(
            Change.objects.filter(delivered_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            break
        with capture(execute=True):
            delivered += events.deliver(ids)
    return delivered


_occasions = itertools.count(1)


def run_rule(rule: Rule, record) -> RuleRun:
    """The rule fired on the record now, as a time trigger's occasion fires it, and its
    due work run: the conditions checked, the actions done up to a delay. Returns the
    run as it ended."""
    from automation.engine import run_scheduled, schedule_run

    run = schedule_run(
        rule,
        record,
        occurrence=f"test-{next(_occasions)}",
        trigger="test",
        due=timezone.now(),
    )
    for pk in run.scheduled.values_list("pk", flat=True):
        run_scheduled(pk)
    run.refresh_from_db()
    return run
