"""Demo leads and deals so the boards are alive on first look (`manage.py seed_pipelines`,
run after `seed_demo`): leads in every stage of the lead pipeline (some unassigned, some
converted into the demo customers with a contact and a deal, some lost with a reason)
and deals in every stage of both deal pipelines, owned by the demo reps and their
manager, on their demo customers.

Every record is made through pipelines.services, as a user would (DESIGN rule 3); the
stage history then gets realistic dates (days in each stage, some over the stage's time
limit). Planned from one seeded generator, so every run plans the same records; records
that exist already (a lead by its phone, a deal by title and customer) are skipped, so
running it again adds nothing.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone, translation

from accounts.demo import SALES_MANAGER, SALES_REPS
from accounts.models import User
from crm import demo_data
from crm.models import Contact, Customer, DictionaryItem

from . import services
from .models import Deal, Lead, Pipeline, PipelineKind, Stage, StageHistory, StageKind

SEED = 20266
# Open leads per open stage of the lead pipeline, plus the unassigned, lost and converted.
LEADS_PER_OPEN_STAGE = 5
UNASSIGNED_LEADS = 6
LOST_LEADS = 6
CONVERTED_LEADS = 8
# Deals per open stage, won and lost, per deal pipeline (by name).
DEALS_PER_OPEN_STAGE = {"零售": 4, "批发": 3}
CLOSED_DEALS = {"零售": (5, 4), "批发": (4, 3)}
OVER_LIMIT_SHARE = 0.25

OWNER_WEIGHTS = {"wangfang": 5, "lina": 5, "liuyang": 5, "chenjing": 5, SALES_MANAGER: 2}
DEAL_TITLES = [
    "年度设备采购",
    "生产线自动化改造",
    "办公家具集中采购",
    "ERP 系统升级",
    "仓储货架采购",
    "门店收银终端更换",
    "员工技能培训服务",
    "数控机床采购",
    "空压机节能改造",
    "包装材料年度框架协议",
    "实验室仪器采购",
    "车队 GPS 管理系统",
    "云服务器扩容",
    "厂区安防监控项目",
    "食堂设备更新",
    "展厅装修工程",
    "原材料年度供应",
    "节能照明改造",
    "冷链运输服务",
    "叉车租赁",
]
LEAD_NOTES = [
    "在官网留言咨询产品价格。",
    "展会上留了名片，对自动化方案感兴趣。",
    "老客户介绍，想了解批量采购折扣。",
    "来电询问交货周期和售后服务。",
    "公众号留言，希望安排演示。",
    "",
]
LEAD_SOURCES = ["website_form", "phone_in", "exhibition", "referral", "online_ad", "wechat"]
LEAD_LOST_REASONS = ["invalid", "no_need", "no_response", "no_budget"]
DEAL_LOST_REASONS = ["price", "competitor", "no_budget", "timing", "product_fit"]
LOST_NOTES = ["", "客户反馈预算已冻结。", "对方选择了本地供应商。", "多次跟进无回复。"]


@dataclass
class Story:
    """A record's stage path and when it entered each stage (oldest first)."""

    stages: list[Stage]
    times: list[datetime] = field(default_factory=list)


class DemoUsersMissing(Exception):
    pass


def _users() -> dict[str, User]:
    names = [*SALES_REPS, SALES_MANAGER, "admin"]
    users = {u.username: u for u in User.objects.select_related("role").filter(username__in=names)}
    missing = [n for n in names if n not in users]
    if missing:
        raise DemoUsersMissing(", ".join(missing))
    return users


def _items(code: str) -> dict[str, DictionaryItem]:
    return {i.code: i for i in DictionaryItem.objects.of(code).filter(is_active=True)}


def _weighted_owner(rng: random.Random, users: dict[str, User]) -> User:
    names = list(OWNER_WEIGHTS)
    return users[rng.choices(names, weights=[OWNER_WEIGHTS[n] for n in names])[0]]


def _story(
    rng: random.Random,
    path: list[Stage],
    now: datetime,
    over_limit: bool,
    window: tuple[datetime, datetime] | None = None,
) -> Story:
    """Entry times for each stage of `path`, walking back from now: the current stage
    for a while (past its time limit when `over_limit`), the earlier ones for a few
    days each. With a `window`, the record entered its current stage (was created, won,
    lost or converted) within it."""
    current = path[-1]
    limit = current.time_limit_days or 10
    if current.kind != StageKind.OPEN:
        days_in = rng.uniform(1, 40)
    elif over_limit:
        days_in = limit + rng.uniform(2, 12)
    else:
        days_in = rng.uniform(0.1, max(limit - 0.5, 0.5))
    last = now - timedelta(days=days_in)
    if window is not None:
        start, end = window
        last = start + (end - start) * rng.random()
    times = [last]
    for stage in reversed(path[:-1]):
        stay = rng.uniform(0.5, (stage.time_limit_days or 7) * 1.1)
        times.append(times[-1] - timedelta(days=stay))
    times.reverse()
    # Office hours look right on a timeline (the last entry only where that keeps it in
    # its window).
    times = [_office_hours(rng, t) for t in times[:-1]] + [_office_hours(rng, times[-1], window)]
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            times[i] = times[i - 1] + timedelta(hours=rng.randint(1, 5))
    return Story(path, [min(t, now - timedelta(minutes=5)) for t in times])


def _office_hours(rng, moment: datetime, window=None) -> datetime:
    moved = moment.replace(hour=rng.randint(9, 18), minute=rng.randrange(60))
    if window is not None and not window[0] <= moved < window[1]:
        return moment
    return moved


# Every few records (by their order in the plan) entered their current stage this
# week, earlier this month or earlier this quarter — whatever day the demo is seeded, so
# the default periods of the reports and the manager's figures have data. Open records
# over their stage's time limit keep their story.
CLOSED_WINDOWS = ("week", "month", "quarter", None)
OPEN_WINDOWS = ("week", None, "month", None, None)


def recent_windows(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """This week before now, this month before this week, this quarter before both
    (empty ones left out); the same windows as the demo customers' (seed_demo)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    windows = {"week": (week, now - timedelta(minutes=10))}
    if month < week:
        windows["month"] = (month, week)
    if quarter < min(month, week):
        windows["quarter"] = (quarter, min(month, week))
    return {key: span for key, span in windows.items() if span[0] < span[1]}


def _window(index: int, closed: bool, over_limit: bool, now: datetime):
    if over_limit and not closed:
        return None
    keys = CLOSED_WINDOWS if closed else OPEN_WINDOWS
    key = keys[index % len(keys)]
    windows = recent_windows(now)
    if key is None:
        return None
    # A window that is empty today (the month began this week): the nearest one there is.
    for candidate in (key, "month", "week"):
        if candidate in windows:
            return windows[candidate]
    return None


def _backdate(record, story: Story) -> None:
    """Give the record's history (made just now by the services) the story's dates."""
    record_type = services.record_type_of(record)
    rows = list(
        StageHistory.objects.filter(record_type=record_type, record_id=record.pk).order_by("id")
    )
    times = story.times[-len(rows) :] if rows else []
    previous = None
    for row, when in zip(rows, times, strict=True):
        row.moved_at = when
        row.seconds_in_previous = int((when - previous).total_seconds()) if previous else 0
        previous = when
    StageHistory.objects.bulk_update(rows, ["moved_at", "seconds_in_previous"])
    model = type(record)
    updates = {"stage_entered_at": times[-1], "created_at": story.times[0]}
    if record.closed_at is not None:
        updates["closed_at"] = times[-1]
    model.objects.filter(pk=record.pk).update(**updates)


def _walk(record, story: Story, by: User, **final) -> None:
    """Move the record along its path (it was created in the first stage)."""
    for stage in story.stages[1:]:
        last = stage == story.stages[-1]
        services.move_to_stage(record=record, stage=stage, by=by, **(final if last else {}))


# --- Leads ----------------------------------------------------------------------------


def _plan_leads(rng, lead_pipeline: Pipeline, users) -> list[dict]:
    stages = list(lead_pipeline.stages.order_by("order", "id"))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won = next(s for s in stages if s.kind == StageKind.WON)
    lost = next(s for s in stages if s.kind == StageKind.LOST)
    plans = []
    for index in range(len(open_stages)):
        for _ in range(LEADS_PER_OPEN_STAGE):
            plans.append({"path": open_stages[: index + 1], "owner": _weighted_owner(rng, users)})
    for _ in range(UNASSIGNED_LEADS):
        plans.append({"path": open_stages[:1], "owner": None})
    for _ in range(LOST_LEADS):
        depth = rng.randint(1, len(open_stages) - 1)
        plans.append(
            {
                "path": [*open_stages[:depth], lost],
                "owner": _weighted_owner(rng, users),
                "lost": rng.choice(LEAD_LOST_REASONS),
            }
        )
    for i in range(CONVERTED_LEADS):
        plans.append(
            {
                "path": [*open_stages, won],
                "owner": users[SALES_REPS[i % len(SALES_REPS)]],
                "with_deal": i % 2 == 0,
            }
        )
    for plan in plans:
        company = demo_data.make_company(rng)
        person = demo_data.make_person(rng)
        plan.update(
            company=company,
            person=person,
            phone=demo_data.mobile(rng),
            email=demo_data.email(rng, person=person, domain=company.domain),
            source=rng.choice(LEAD_SOURCES),
            notes=rng.choice(LEAD_NOTES),
            title=rng.choice(["采购经理", "总经理", "行政主管", "技术总监", ""]),
            over_limit=rng.random() < OVER_LIMIT_SHARE,
            story_rng=random.Random(rng.getrandbits(64)),
        )
    return plans


def _seed_leads(rng, users, now, counts: Counter) -> None:
    lead_pipeline = services.default_pipeline(PipelineKind.LEAD)
    sources = _items("lead_source")
    reasons = _items("lost_reason")
    plans = _plan_leads(rng, lead_pipeline, users)
    existing = set(
        Lead.objects.filter(phone__in=[p["phone"] for p in plans]).values_list("phone", flat=True)
    )
    used_customers: set[int] = set()
    for index, plan in enumerate(plans):
        if plan["phone"] in existing:
            continue
        owner = plan["owner"]
        by = owner or users["admin"]
        path = plan["path"]
        customer = None
        if path[-1].kind == StageKind.WON:
            customer = (
                Customer.objects.filter(owner=owner)
                .annotate(contact_count=Count("contacts"))
                .filter(contact_count__lt=3)  # the demo's customers keep 1–3 contacts
                .exclude(pk__in=used_customers)
                .exclude(leads__isnull=False)
                .order_by("id")
                .first()
            )
            if customer is None:
                continue
            used_customers.add(customer.pk)
        lead = Lead(
            person_name=plan["person"].name,
            company_name=customer.name if customer else plan["company"].name,
            title=plan["title"],
            phone=plan["phone"],
            email=plan["email"],
            source=sources.get(plan["source"]),
            notes=plan["notes"],
            owner=owner,
        )
        services.create_lead(lead=lead, by=by)
        closed = path[-1].kind != StageKind.OPEN
        window = _window(index, closed, plan["over_limit"], now)
        story = _story(plan["story_rng"], path, now, plan["over_limit"], window)
        if path[-1].kind == StageKind.WON:
            _walk(lead, Story(path[:-1]), by)
            deal = None
            if plan["with_deal"]:
                deal_pipeline = services.default_pipeline(PipelineKind.DEAL)
                deal = Deal(
                    title=plan["story_rng"].choice(DEAL_TITLES),
                    pipeline=deal_pipeline,
                    stage=deal_pipeline.first_open_stage(),
                    amount=_amount(plan["story_rng"]),
                    expected_close_date=(now + timedelta(days=45)).date(),
                )
                counts["deals"] += 1
            services.convert_lead(
                lead=lead,
                by=by,
                customer=customer,
                contact=Contact(
                    name=plan["person"].name, title=plan["title"], mobile=plan["phone"]
                ),
                deal=deal,
            )
            counts["converted"] += 1
            if deal is not None:
                converted_at = story.times[-1]
                _backdate(deal, Story([deal.stage], [converted_at]))
        else:
            if path[-1].kind == StageKind.LOST:
                _walk(
                    lead,
                    story,
                    by,
                    lost_reason=reasons.get(plan["lost"]),
                    lost_note=plan["story_rng"].choice(LOST_NOTES),
                )
            else:
                _walk(lead, story, by)
        lead.refresh_from_db()
        _backdate(lead, story)
        counts["leads"] += 1


# --- Deals ----------------------------------------------------------------------------


def _amount(rng: random.Random) -> Decimal:
    """5万 to 300万, mostly at the low end, in round thousands."""
    value = 50_000 * (60 ** rng.random())
    return Decimal(int(value / 1000) * 1000)


def _plan_deals(rng, users) -> list[dict]:
    plans = []
    for pipeline in Pipeline.objects.for_deals().filter(name__in=DEALS_PER_OPEN_STAGE):
        stages = list(pipeline.stages.order_by("order", "id"))
        open_stages = [s for s in stages if s.kind == StageKind.OPEN]
        won = next(s for s in stages if s.kind == StageKind.WON)
        lost = next(s for s in stages if s.kind == StageKind.LOST)
        paths = []
        for index in range(len(open_stages)):
            paths += [open_stages[: index + 1]] * DEALS_PER_OPEN_STAGE[pipeline.name]
        won_count, lost_count = CLOSED_DEALS[pipeline.name]
        paths += [[*open_stages, won]] * won_count
        for _ in range(lost_count):
            paths.append([*open_stages[: rng.randint(1, len(open_stages))], lost])
        for path in paths:
            plans.append(
                {
                    "pipeline": pipeline,
                    "path": path,
                    "owner": _weighted_owner(rng, users),
                    "title": rng.choice(DEAL_TITLES),
                    "amount": _amount(rng),
                    "close_in": rng.randint(-10, 90),
                    "over_limit": rng.random() < OVER_LIMIT_SHARE,
                    "lost": rng.choice(DEAL_LOST_REASONS),
                    "note": rng.choice(LOST_NOTES),
                    "pick": rng.random(),
                    "story_rng": random.Random(rng.getrandbits(64)),
                }
            )
    return plans


def _seed_deals(rng, users, now, counts: Counter) -> None:
    reasons = _items("lost_reason")
    customers_of: dict[int, list[Customer]] = {}
    for index, plan in enumerate(_plan_deals(rng, users)):
        owner = plan["owner"]
        if owner.pk not in customers_of:
            customers_of[owner.pk] = list(
                Customer.objects.filter(owner=owner)
                .prefetch_related("contacts")
                .order_by("id")[:80]
            )
        choices = [c for c in customers_of[owner.pk] if c.contacts.all()]
        if not choices:
            continue
        title = plan["title"]
        # Known by owner, title and amount: not by customer, whose pick shifts when a
        # demo customer is deleted and seeded again.
        if Deal.objects.filter(owner=owner, title=title, amount=plan["amount"]).exists():
            continue
        customer = choices[int(plan["pick"] * len(choices))]
        path = plan["path"]
        closed = path[-1].kind != StageKind.OPEN
        window = _window(index, closed, plan["over_limit"], now)
        story = _story(plan["story_rng"], path, now, plan["over_limit"], window)
        close_date = (story.times[-1] if closed else now + timedelta(days=plan["close_in"])).date()
        deal = Deal(
            title=title,
            customer=customer,
            contact=customer.contacts.all()[0],
            amount=plan["amount"],
            expected_close_date=close_date,
            pipeline=plan["pipeline"],
            stage=path[0],
            owner=owner,
        )
        services.create_deal(deal=deal, by=owner)
        final = {}
        if path[-1].kind == StageKind.LOST:
            final = {"lost_reason": reasons.get(plan["lost"]), "lost_note": plan["note"]}
        _walk(deal, story, owner, **final)
        deal.refresh_from_db()
        _backdate(deal, story)
        counts["deals"] += 1


@transaction.atomic
def seed_pipeline_records(now: datetime | None = None) -> Counter:
    """Add the demo leads and deals not there yet; returns how many were added."""
    now = timezone.localtime(now or timezone.now())
    users = _users()
    counts: Counter = Counter(leads=0, converted=0, deals=0)
    # Texts the services write (history notes) are in the demo company's language.
    with translation.override(settings.LANGUAGE_CODE):
        rng = random.Random(SEED)
        _seed_leads(random.Random(rng.getrandbits(64)), users, now, counts)
        _seed_deals(random.Random(rng.getrandbits(64)), users, now, counts)
    return counts


def seed_for_demo(now: datetime | None = None) -> str:
    """seed_demo's step for pipelines (registered in apps.ready), dated around `now`.
    The seeded pipelines come back first if missing (a test database flushed between
    tests has none)."""
    from django.apps import apps

    importlib.import_module("pipelines.migrations.0002_default_pipelines").create(apps, None)
    counts = seed_pipeline_records(now)
    if counts["leads"] or counts["deals"]:
        return (
            "Demo pipelines filled: {leads} leads ({converted} converted), {deals} deals.".format(
                **counts
            )
        )
    return "Demo leads and deals already present: nothing added."
