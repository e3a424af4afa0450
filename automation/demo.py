"""The rules the demo company ships with (`manage.py seed_demo`, registered from
`AutomationConfig.ready()`): the lead pipeline's robots on its first stage (assign a new
lead round-robin, a task due in one working day that completes itself when the lead moves
on, the manager told when it has not moved in two days), the 报价 reminder, the warning
past a stage's time limit, the 公海 rule (customers nobody followed up in 30 days go back
to the public pool, with a notice to the owner three days before) and a birthday greeting
to contacts.

Rules that would surprise — taking customers away, writing to customers — are made
inactive: an admin tries them and turns them on. Every setting goes through the cleaners
an admin's edit goes through (automation.rules.clean_trigger,
automation.conditions.clean_conditions, automation.actions.clean_params). Keyed by name:
running it again adds only the rules missing and never touches one an admin changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from pipelines.models import Pipeline, PipelineKind, Stage, StageKind

from .actions import clean_params
from .conditions import clean_conditions
from .models import EmailTemplate, Rule, RuleAction, Trigger
from .rules import clean_trigger

LEAD_PIPELINE = "线索"
DEAL_PIPELINE = "零售"
QUOTE_STAGE = "报价"
# The demo's first sales team (accounts.demo): new leads go to its reps in turn.
LEAD_TEAM = "销售一部"
BIRTHDAY_TEMPLATE = "生日祝福"

# Where a rule sits: a stage robot of the lead pipeline's first stage, of the 零售
# pipeline's 报价 stage, or no stage.
LEAD_ENTRY, QUOTE = "lead_entry", "quote"

BIRTHDAY_SUBJECT = "{{ name }}，祝您生日快乐！"
BIRTHDAY_BODY = (
    "尊敬的{{ name }}：\n\n"
    "值此生日之际，我谨代表全体同事祝您生日快乐，身体健康，工作顺利！\n\n"
    "感谢您和{{ customer }}一直以来的信任与支持，期待与您继续携手合作。\n\n"
    "{{ owner }}\n"
    "{{ site }}"
)


@dataclass(frozen=True)
class DemoRule:
    name: str
    description: str
    record_type: str
    trigger: str
    actions: list[tuple[str, dict]]
    params: dict = field(default_factory=dict)
    conditions: list = field(default_factory=list)
    place: str | None = None
    active: bool = True


RULES = [
    DemoRule(
        "新线索自动分配",
        "新线索进入「已收到联系方式」且没有负责人时，在销售一部的销售代表之间轮流分配。",
        "lead",
        Trigger.CREATED,
        [("assign_owner", {"to": "round_robin", "department": LEAD_TEAM})],
        conditions=[{"field": "owner", "op": "empty"}],
        place=LEAD_ENTRY,
    ),
    DemoRule(
        "新线索跟进任务",
        "给负责人一个 1 个工作日内完成的首次联系任务；线索离开本阶段时任务自动完成。",
        "lead",
        Trigger.STAGE_ENTERED,
        [
            (
                "create_task",
                {
                    "title": "首次联系新线索：{{ record }}",
                    "notes": "24 小时内首次联系，确认对方身份和来意。",
                    "assignee": {"type": "owner"},
                    "due": {"amount": 1, "unit": "days"},
                    "working_hours": True,
                    "complete_on_leave": True,
                },
            )
        ],
        place=LEAD_ENTRY,
    ),
    DemoRule(
        "线索两天未推进提醒经理",
        "线索进入「已收到联系方式」两天后仍未推进，提醒负责人的经理。",
        "lead",
        Trigger.STAGE_ENTERED,
        [
            ("delay", {"amount": 2, "unit": "days"}),
            (
                "notify",
                {
                    "title": "线索两天未推进：{{ record }}",
                    "body": "负责人：{{ owner }}。线索仍在「{{ stage }}」阶段，请督促跟进。",
                    "to": {"type": "manager"},
                },
            ),
        ],
        place=LEAD_ENTRY,
    ),
    DemoRule(
        "报价提醒",
        "商机进入「报价」两天后仍在该阶段，提醒负责人并给他一个跟进任务。",
        "deal",
        Trigger.STAGE_ENTERED,
        [
            ("delay", {"amount": 2, "unit": "days"}),
            (
                "notify",
                {
                    "title": "报价已发出两天：{{ record }}",
                    "body": "客户：{{ customer }}。请确认客户是否收到报价并跟进反馈。",
                    "to": {"type": "owner"},
                },
            ),
            (
                "create_task",
                {
                    "title": "跟进报价：{{ record }}",
                    "notes": "确认客户是否收到报价，了解反馈和顾虑。",
                    "assignee": {"type": "owner"},
                    "due": {"amount": 1, "unit": "days"},
                    "working_hours": True,
                    "complete_on_leave": True,
                },
            ),
        ],
        place=QUOTE,
    ),
    DemoRule(
        "超时预警",
        "商机在一个阶段停留超过该阶段的时限，提醒负责人和他的经理。",
        "deal",
        Trigger.TIME_IN_STAGE,
        [
            (
                "notify",
                {
                    "title": "阶段超时：{{ record }}",
                    "body": "已超过「{{ stage }}」阶段的停留时限，请尽快推进。",
                    "to": {"type": "owner"},
                },
            ),
            (
                "notify",
                {
                    "title": "阶段超时：{{ record }}",
                    "body": "负责人：{{ owner }}。已超过「{{ stage }}」阶段的停留时限。",
                    "to": {"type": "manager"},
                },
            ),
        ],
        params={"use_time_limit": True},
    ),
    DemoRule(
        "30天未跟进退回公海：提前3天提醒",
        "客户 27 天未跟进时提醒负责人：再过 3 天将自动退回公海。",
        "customer",
        Trigger.NO_ACTIVITY,
        [
            (
                "notify",
                {
                    "title": "{{ record }} 3 天后将退回公海",
                    "body": "该客户已 27 天未跟进，3 天内仍未跟进将自动退回公海。",
                    "to": {"type": "owner"},
                },
            )
        ],
        params={"days": 27},
        conditions=[{"field": "owner", "op": "not_empty"}],
        active=False,
    ),
    DemoRule(
        "30天未跟进退回公海",
        "客户 30 天未跟进，自动退回公海，其他销售可以领取。",
        "customer",
        Trigger.NO_ACTIVITY,
        [("release", {"reason": "30 天未跟进，自动退回公海"})],
        params={"days": 30},
        conditions=[{"field": "owner", "op": "not_empty"}],
        active=False,
    ),
    DemoRule(
        "联系人生日祝福",
        "联系人生日当天 09:00 发送生日祝福邮件（标记为勿扰的联系人不发送）。",
        "contact",
        Trigger.ANNIVERSARY,
        [("send_email", {"template": BIRTHDAY_TEMPLATE, "to": "contact"})],
        params={"field": "birthday", "at": "09:00"},
        conditions=[{"field": "email", "op": "not_empty"}],
        active=False,
    ),
]


def _lead_entry() -> Stage | None:
    leads = Pipeline.objects.filter(kind=PipelineKind.LEAD)
    pipeline = (
        leads.filter(name=LEAD_PIPELINE).first()
        or leads.order_by("-is_default", "order", "id").first()
    )
    if pipeline is None:
        return None
    return pipeline.stages.filter(kind=StageKind.OPEN).order_by("order", "id").first()


def _quote() -> Stage | None:
    return (
        Stage.objects.select_related("pipeline")
        .filter(pipeline__kind=PipelineKind.DEAL, pipeline__name=DEAL_PIPELINE, name=QUOTE_STAGE)
        .first()
    )


def _birthday_template() -> EmailTemplate:
    template, _created = EmailTemplate.objects.get_or_create(
        name=BIRTHDAY_TEMPLATE, defaults={"subject": BIRTHDAY_SUBJECT, "body": BIRTHDAY_BODY}
    )
    return template


def build_rule(spec: DemoRule, stage: Stage | None, *, by: User | None = None) -> Rule:
    """The rule (saved) with its actions, every setting cleaned as the admin cleans it."""
    rule = Rule.objects.create(
        name=spec.name,
        description=spec.description,
        record_type=spec.record_type,
        pipeline=stage.pipeline if stage is not None else None,
        stage=stage,
        is_active=spec.active,
        trigger=spec.trigger,
        trigger_params=clean_trigger(spec.record_type, spec.trigger, spec.params, stage=stage),
        conditions=clean_conditions(spec.record_type, spec.conditions),
        created_by=by,
    )
    for order, (kind, params) in enumerate(spec.actions, start=1):
        RuleAction.objects.create(
            rule=rule,
            order=order * 10,
            kind=kind,
            params=clean_params(kind, spec.record_type, params),
        )
    return rule


def seed_rules() -> tuple[list[Rule], list[str]]:
    """Add the demo rules missing by name; returns those added and the names skipped
    (their pipeline or stage is gone, or a setting no longer holds)."""
    _birthday_template()
    places = {LEAD_ENTRY: _lead_entry(), QUOTE: _quote()}
    existing = set(Rule.objects.values_list("name", flat=True))
    admin = User.objects.filter(username="admin", is_active=True).first()
    added, skipped = [], []
    for spec in RULES:
        if spec.name in existing:
            continue
        stage = places[spec.place] if spec.place else None
        if spec.place and stage is None:
            skipped.append(spec.name)
            continue
        try:
            with transaction.atomic():
                added.append(build_rule(spec, stage, by=admin))
        except ValidationError:
            skipped.append(spec.name)
    return added, skipped


def seed_for_demo() -> str:
    """seed_demo's step for automation."""
    with transaction.atomic():
        added, skipped = seed_rules()
    lines = []
    if added:
        active = sum(rule.is_active for rule in added)
        lines.append(f"Demo automation rules added: {len(added)} ({active} active).")
    else:
        lines.append("Demo automation rules already present: nothing added.")
    if skipped:
        lines.append("Demo automation rules skipped: " + "、".join(skipped) + ".")
    return "\n".join(lines)
