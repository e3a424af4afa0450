"""Load the demo company: its organisation, then a few hundred customers with their
contacts, activities and tasks. Safe to run again: the organisation converges on the
same data and customers that already exist (by name) are not added twice.

The records are generated from one seeded random generator, so every run plans the
same customers; dates are relative to today, so a fresh database always has
follow-ups due today, overdue and upcoming.
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.demo import (
    DEMO_PASSWORD,
    DEMO_USERNAMES,
    SALES_MANAGER,
    SALES_REPS,
    seed_organisation,
)
from accounts.models import User
from crm import demo_data
from crm.demo_config import demo_custom_values, demo_seeders, seed_configuration
from crm.models import (
    Activity,
    Change,
    ChangeAction,
    Contact,
    Customer,
    DictionaryItem,
    PoolEvent,
    Tag,
    Task,
    TaskStatus,
)

SEED = 2026
CUSTOMER_COUNT = 300
POOL_SHARE = 0.15
# Of the pool: returned there by a rep (with a reason) rather than never owned.
RELEASED_SHARE_OF_POOL = 0.6
# Of the reps' customers: claimed from the pool rather than entered by the rep.
CLAIMED_SHARE = 0.1
MANAGER_CUSTOMERS = 30
ACTIVITY_DAYS = 90
# Follow-ups every owner has at least: (due today, overdue, upcoming).
MIN_FOLLOW_UPS = (3, 3, 4)
STANDALONE_TASKS_PER_OWNER = 8

TAG_COLORS = {
    "重点跟进": "red",
    "老客户": "green",
    "展会线索": "purple",
    "价格敏感": "orange",
    "有预算": "teal",
    "竞品客户": "pink",
    "需要报价": "yellow",
    "已签约": "lime",
    "VIP": "azure",
}
DEMO_TAGS = list(dict.fromkeys([*demo_data.TAG_NAMES, "价格敏感"]))

SOURCE_WEIGHTS = {
    "website": 20,
    "referral": 14,
    "exhibition": 14,
    "cold_call": 16,
    "online_ad": 14,
    "partner": 10,
    "existing": 12,
}
LEVEL_WEIGHTS = {"a": 14, "b": 34, "c": 32, "d": 20}
# How many follow-ups a customer of each level had in the last 90 days.
ACTIVITIES_BY_LEVEL = {"a": (3, 9), "b": (2, 6), "c": (1, 4), "d": (1, 3)}
SENIOR_TITLES = ["总经理", "副总经理", "采购总监", "采购经理", "技术总监", "运营总监"]

RELEASE_REASONS = [
    "客户暂无采购需求",
    "多次联系未果",
    "预算不足，明年再议",
    "已选择竞争对手",
    "联系方式失效",
    "客户公司业务调整",
]
SERVICE_NOTES = [
    "客户来电咨询发票开具问题，已转财务处理。",
    "客户反馈系统登录异常，已远程协助解决。",
    "回访服务满意度，客户评价：满意。",
    "客户来电询问合同续费时间，已告知到期日。",
    "客户投诉送货延迟，已协调物流部门加急。",
]


@dataclass
class Plan:
    """One demo customer and everything that hangs off it, not yet saved."""

    customer: Customer
    tags: list[str] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    pool_events: list[PoolEvent] = field(default_factory=list)
    # (action, user, when, changes, note) beyond "created"
    history: list[tuple[str, User, datetime, list, str]] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Create or update the demo company: departments, roles, one user per role, and "
        "a few hundred customers with contacts, activities and tasks."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help=f"Set every demo user's password back to {DEMO_PASSWORD!r}.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (demo users have a published password).",
        )

    def handle(self, *args, reset_passwords=False, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a published password; "
                "with DEBUG off, pass --force if this really is a demo system."
            )
        rows, lines = seed_demo(reset_passwords=reset_passwords)
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Demo company ready. Sign in at /accounts/login/ as:"))
        for username, name, role, password in rows:
            self.stdout.write(f"  {username:<10} {password:<18} {name}（{role}）")


def seed_demo(
    *, today: date | None = None, now: datetime | None = None, reset_passwords: bool = False
) -> tuple[list, list[str]]:
    """The whole demo, dated around `now` (default: this moment; `today`: that day at
    15:00 local time, for a demo that looks as if seeded then). Returns the demo users'
    rows and the lines to print."""
    if today is not None and now is None:
        now = timezone.make_aware(datetime.combine(today, time(15, 0)))
    now = timezone.localtime(now or timezone.now())
    rows = seed_organisation(reset_passwords=reset_passwords)
    seed_configuration()
    lines = []
    # The demo company is Chinese: texts made here (task titles) are written in it.
    with translation.override(settings.LANGUAGE_CODE):
        created = seed_records(now)
    if created["customers"]:
        lines.append(
            "Demo records added: {customers} customers, {contacts} contacts, "
            "{activities} activities, {tasks} tasks.".format(**created)
        )
    else:
        lines.append("Demo records already present: nothing added.")
    with translation.override(settings.LANGUAGE_CODE):
        for seeder in demo_seeders():
            lines.append(seeder(now=now) if _takes_now(seeder) else seeder())
    return rows, lines


def _takes_now(seeder) -> bool:
    """Whether a demo seeder dates its records around a given moment (pipelines' does)."""
    try:
        return "now" in inspect.signature(seeder).parameters
    except (TypeError, ValueError):
        return False


# --- Saving ---------------------------------------------------------------------------


@transaction.atomic
def seed_records(now: datetime | None = None) -> Counter:
    """Add the demo customers that do not exist yet (by name); returns what was added."""
    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERNAMES)}
    items = _dictionary_items()
    with translation.override(settings.LANGUAGE_CODE):
        plans = plan_customers(random.Random(SEED), users, items, now or timezone.now())
    existing = set(
        Customer.objects.filter(name__in=[p.customer.name for p in plans]).values_list(
            "name", flat=True
        )
    )
    plans = [p for p in plans if p.customer.name not in existing]
    created = Counter(customers=0, contacts=0, activities=0, tasks=0)
    if not plans:
        return created

    for plan in plans:
        plan.customer.custom = demo_custom_values(plan.customer)
    Customer.objects.bulk_create([p.customer for p in plans])
    tags = _tags()
    Customer.tags.through.objects.bulk_create(
        Customer.tags.through(customer_id=p.customer.pk, tag_id=tags[name].pk)
        for p in plans
        for name in p.tags
    )
    contacts = [c for p in plans for c in p.contacts]
    for contact in contacts:
        if contact.is_primary and contact.title:
            contact.custom = {"decision_maker": "总" in contact.title or "经理" in contact.title}
    Contact.objects.bulk_create(contacts)
    contact_type = ContentType.objects.get_for_model(Contact)
    activities = [a for p in plans for a in p.activities]
    for activity in activities:
        if activity.contact is not None:
            activity.subject_type, activity.subject_id = contact_type, activity.contact.pk
    Activity.objects.bulk_create(activities)
    tasks = [t for p in plans for t in p.tasks]
    Task.objects.bulk_create(tasks)
    PoolEvent.objects.bulk_create(e for p in plans for e in p.pool_events)
    Change.objects.bulk_create(_history(plans))

    # auto_now / auto_now_add stamped "now" on insert: give the records their story's dates.
    ids = [p.customer.pk for p in plans]
    Activity.objects.filter(customer_id__in=ids).update(created_at=F("occurred_at"))
    for task in tasks:
        task.created_at = task._planned_created_at
    Task.objects.bulk_update(tasks, ["created_at"], batch_size=500)
    for plan in plans:
        plan.customer.updated_at = max(
            plan.customer.created_at, plan.customer.last_activity_at or plan.customer.created_at
        )
    Customer.objects.bulk_update([p.customer for p in plans], ["updated_at"], batch_size=500)

    created.update(
        customers=len(plans),
        contacts=len(contacts),
        activities=len(activities),
        tasks=len(tasks),
    )
    return created


def _dictionary_items() -> dict[str, dict[str, DictionaryItem]]:
    """Active items by dictionary and item code, after restoring missing default
    dictionaries (a test database flushed between tests has none)."""
    for module in ("0002_default_dictionaries", "0008_lead_dictionaries"):
        importlib.import_module(f"crm.migrations.{module}").create(django_apps, None)
    found: dict[str, dict[str, DictionaryItem]] = defaultdict(dict)
    for item in DictionaryItem.objects.select_related("dictionary").active():
        found.setdefault(item.dictionary.code, {})[item.code] = item
    return found


def _tags() -> dict[str, Tag]:
    found = {t.name: t for t in Tag.objects.filter(name__in=DEMO_TAGS)}
    missing = [Tag(name=n, color=TAG_COLORS.get(n, "blue")) for n in DEMO_TAGS if n not in found]
    for tag in Tag.objects.bulk_create(missing):
        found[tag.name] = tag
    return found


def _history(plans: list[Plan]):
    customer_type = ContentType.objects.get_for_model(Customer)
    contact_type = ContentType.objects.get_for_model(Contact)
    for plan in plans:
        customer = plan.customer
        yield Change(
            record_type=customer_type,
            record_id=customer.pk,
            customer=customer,
            action=ChangeAction.CREATED,
            kind=ChangeAction.CREATED,
            user=customer.created_by,
            created_at=customer.created_at,
            delivered_at=customer.created_at,
        )
        for contact in plan.contacts:
            yield Change(
                record_type=contact_type,
                record_id=contact.pk,
                customer=customer,
                action=ChangeAction.CREATED,
                kind=ChangeAction.CREATED,
                user=contact.created_by,
                created_at=contact.created_at,
                delivered_at=contact.created_at,
            )
        for action, user, when, changes, note in plan.history:
            yield Change(
                record_type=customer_type,
                record_id=customer.pk,
                customer=customer,
                action=action,
                kind=action,
                changes=changes,
                note=note,
                user=user,
                created_at=when,
                # Demo history, not news: no subscriber is to act on it.
                delivered_at=when,
            )


# --- Planning -------------------------------------------------------------------------


def plan_customers(
    rng: random.Random,
    users: dict[str, User],
    items: dict[str, dict[str, DictionaryItem]],
    now: datetime,
) -> list[Plan]:
    """The demo customers, deterministic for a given generator state (dates follow `now`)."""
    now = timezone.localtime(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    reps = [users[name] for name in SALES_REPS]
    manager = users[SALES_MANAGER]
    admin = users["admin"]
    service = users["zhaomin"]

    pool_count = round(CUSTOMER_COUNT * POOL_SHARE)
    per_rep = (CUSTOMER_COUNT - pool_count - MANAGER_CUSTOMERS) // len(reps)
    owners: list[User | None] = [manager] * MANAGER_CUSTOMERS + [None] * pool_count
    for rep in reps:
        owners += [rep] * per_rep
    owners += [reps[0]] * (CUSTOMER_COUNT - len(owners))
    rng.shuffle(owners)
    # Who the customers are comes from `rng` alone; their story (dates, activities,
    # tasks) from a second generator, because some draws depend on the weekday of a
    # date: otherwise the names, by which a second run recognises the customers,
    # would change with the day the seed runs.
    timeline = random.Random(rng.getrandbits(64))

    names: set[str] = set()
    plans: list[Plan] = []
    follow_ups_planned: Counter = Counter()
    for owner in owners:
        plan = _plan_customer(rng, owner, names, items, now)
        customer = plan.customer
        level = customer.level.code if customer.level else "c"
        # Who entered it and who worked it before today's owner.
        if owner is None:
            released = rng.random() < RELEASED_SHARE_OF_POOL
            worker = rng.choice(reps) if released else None
            customer.created_by = worker or admin
        elif owner in reps and rng.random() < CLAIMED_SHARE:
            worker, released = owner, False
            customer.created_by = admin
        else:
            worker, released = owner, False
            customer.created_by = owner
        claimed = owner is not None and customer.created_by == admin

        # The follow-up planned now: owners get at least a few of each kind.
        due_at = None
        if owner is not None:
            kind = _follow_up_kind(timeline, follow_ups_planned, owner)
            due_at = _due_at(timeline, kind, now, today)
        if due_at is not None:
            end = min(now - timedelta(hours=1), due_at - timedelta(hours=20))
        elif released:
            end = now - timedelta(days=timeline.randint(10, 45))
        else:
            end = now - timedelta(days=timeline.choice((0, 1, 3, 7, 20, 35, 50, 70)))
        start = max(customer.created_at, now - timedelta(days=ACTIVITY_DAYS))
        if start >= end - timedelta(hours=2):
            start = end - timedelta(days=timeline.randint(3, 20))
            customer.created_at = min(customer.created_at, start - timedelta(days=1))
        if claimed:
            start = demo_data.moment_between(timeline, start, start + (end - start) / 3)
        for contact in plan.contacts:
            contact.created_by = customer.created_by
        low, high = ACTIVITIES_BY_LEVEL[level]
        count = timeline.randint(low, high) if worker else 0
        if claimed:
            plan.pool_events.append(
                PoolEvent(
                    customer=customer, user=owner, action=PoolEvent.Action.CLAIM, created_at=start
                )
            )
            plan.history.append(
                (
                    ChangeAction.CLAIMED,
                    owner,
                    start,
                    [{"field": "owner", "old": "", "new": str(owner)}],
                    "",
                )
            )
        times = sorted(demo_data.moment_between(timeline, start, end) for _ in range(count))
        _plan_activities(timeline, plan, worker or admin, times, items, due_at)
        if worker is not None and timeline.random() < 0.08:
            # Customer service logged a call too.
            # Before the owner's latest entry, which planned the current follow-up.
            latest = customer.last_activity_at or end
            when = demo_data.moment_between(timeline, start, latest - timedelta(hours=1))
            plan.activities.append(
                Activity(
                    customer=customer,
                    kind=items["activity_kind"].get("call"),
                    content=timeline.choice(SERVICE_NOTES),
                    occurred_at=when,
                    author=service,
                )
            )
        if released:
            released_at = (customer.last_activity_at or end) + timedelta(
                days=timeline.randint(1, 5), hours=timeline.randint(1, 6)
            )
            released_at = min(released_at, now - timedelta(days=1))
            reason = timeline.choice(RELEASE_REASONS)
            customer.released_at = released_at
            plan.pool_events.append(
                PoolEvent(
                    customer=customer,
                    user=worker,
                    action=PoolEvent.Action.RELEASE,
                    reason=reason,
                    created_at=released_at,
                )
            )
            plan.history.append(
                (
                    ChangeAction.RELEASED,
                    worker,
                    released_at,
                    [{"field": "owner", "old": str(worker), "new": ""}],
                    reason,
                )
            )
            customer.next_follow_up_at = None
        plans.append(plan)

    for person in [*reps, manager]:
        _plan_standalone_tasks(
            timeline, [p for p in plans if p.customer.owner == person], manager, now
        )
    for person in [*reps, manager]:
        _bring_recent(timeline, [p for p in plans if p.customer.owner == person], now)
    _recent_service_calls(timeline, plans, service, items, now)
    return plans


# How many of each person's customers had their latest follow-up in each recent window:
# this week, earlier this month, earlier this quarter. Whatever day the demo is seeded —
# a Monday morning, the 1st or the 7th — the default periods of the reports and the
# manager's figures (本周, 本月, 本季度) have work in them.
RECENT_PER_WINDOW = {"week": 4, "month": 4, "quarter": 3}


def recent_windows(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """The stretches of time, before `now`, that belong to this week, to this month but
    not this week, and to this quarter but not this month (empty ones left out)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    end = now - timedelta(minutes=10)
    windows = {"week": (week, end)}
    if month < week:
        windows["month"] = (month, week)
    if quarter < min(month, week):
        windows["quarter"] = (quarter, min(month, week))
    return {key: (start, stop) for key, (start, stop) in windows.items() if start < stop}


def _bring_recent(rng, plans: list[Plan], now: datetime) -> None:
    """Move the latest follow-up of a few of the person's customers into each recent
    window. Only later, never earlier, and only for customers whose planned follow-up
    (if any) is after tomorrow, so the story stays in order: the entry still comes after
    the customer's others, its follow-up task is planned by it and a task it completed
    is completed by it."""
    tomorrow = now + timedelta(days=1)
    candidates = []
    for plan in plans:
        customer = plan.customer
        if customer.released_at or customer.last_activity_at is None:
            continue
        if customer.next_follow_up_at is not None and customer.next_follow_up_at < tomorrow:
            continue
        candidates.append(plan)
    for key, (start, stop) in recent_windows(now).items():
        wanted = RECENT_PER_WINDOW[key]
        for plan in list(candidates):
            if not wanted:
                break
            if plan.customer.last_activity_at >= start:
                continue
            when = _moment_in(rng, start, stop)
            _move_latest_entry(plan, when)
            candidates.remove(plan)
            wanted -= 1


# Calls customer service logged in each recent window (their home lists them).
SERVICE_CALLS_PER_WINDOW = {"week": 3, "month": 4, "quarter": 3}


def _recent_service_calls(rng, plans: list[Plan], service: User, items, now: datetime) -> None:
    """Customer service's recent calls, on customers whose owner followed up within the
    same window, an hour or more before that entry (the owner's entry stays the latest,
    which planned the customer's follow-up)."""
    for key, (start, stop) in recent_windows(now).items():
        wanted = SERVICE_CALLS_PER_WINDOW[key]
        for plan in plans:
            if not wanted:
                break
            latest = plan.customer.last_activity_at
            if plan.customer.owner is None or latest is None or not start <= latest < stop:
                continue
            if latest - start < timedelta(hours=2):
                continue
            when = _moment_in(rng, start, latest - timedelta(hours=1))
            plan.activities.append(
                Activity(
                    customer=plan.customer,
                    kind=items["activity_kind"].get("call"),
                    content=rng.choice(SERVICE_NOTES),
                    occurred_at=when,
                    author=service,
                )
            )
            wanted -= 1


def _moment_in(rng, start: datetime, stop: datetime) -> datetime:
    """A moment in [start, stop): in office hours on a weekday where the window allows
    (a Monday morning's window may hold none), never piled up at its end."""
    moment = start + (stop - start) * rng.random()
    for _ in range(8):
        office = moment.replace(
            hour=rng.randint(9, 17), minute=rng.randrange(60), second=rng.randrange(60)
        )
        if start <= office < stop and office.weekday() < 5:
            return office
    return moment


def _move_latest_entry(plan: Plan, when: datetime) -> None:
    customer = plan.customer
    old = customer.last_activity_at
    for activity in plan.activities:
        if activity.occurred_at == old and activity.author_id != getattr(
            customer.owner, "pk", None
        ):
            continue
        if activity.occurred_at == old:
            activity.occurred_at = when
    for task in plan.tasks:
        if task.completed_at == old:
            task.completed_at = when  # the entry that did the planned follow-up
        if getattr(task, "_planned_created_at", None) == old and task.activity is not None:
            task._planned_created_at = when
    customer.last_activity_at = when


def _plan_customer(rng, owner, names, items, now) -> Plan:
    is_company = rng.random() < 0.85
    while True:
        if is_company:
            company = demo_data.make_company(rng)
            name = company.name
        else:
            person = demo_data.make_person(rng)
            name = person.name
        if name not in names:
            names.add(name)
            break
    level = _weighted(rng, LEVEL_WEIGHTS)
    source = _weighted(rng, SOURCE_WEIGHTS)
    age_days = rng.randint(5, ACTIVITY_DAYS) if rng.random() < 0.3 else rng.randint(90, 900)
    created_at = (now - timedelta(days=age_days)).replace(
        hour=rng.randint(9, 18), minute=rng.randrange(60), second=rng.randrange(60)
    )
    customer = Customer(
        name=name,
        owner=owner,
        type=items["customer_type"].get("company" if is_company else "individual"),
        source=items["customer_source"].get(source),
        level=items["customer_level"].get(level),
        created_at=created_at,
    )
    plan = Plan(customer=customer)
    if is_company:
        customer.industry = items["industry"].get(company.industry)
        customer.phone = (
            demo_data.landline(rng, company.city) if rng.random() < 0.75 else demo_data.mobile(rng)
        )
        customer.email = demo_data.email(rng, domain=company.domain)
        customer.address = demo_data.address(rng, company.city)
        if rng.random() < 0.85:
            customer.website = demo_data.website(company)
        contact_count = rng.choices((1, 2, 3), weights=(45, 35, 20))[0]
        for i in range(contact_count):
            plan.contacts.append(_plan_contact(rng, customer, i == 0, company.domain, company.city))
    else:
        customer.phone = demo_data.mobile(rng)
        customer.email = demo_data.email(rng, person=person)
        customer.address = demo_data.address(rng)
        contact = _plan_contact(rng, customer, True, None, None, person=person)
        contact.mobile = customer.phone
        contact.email = customer.email
        plan.contacts.append(contact)
    plan.tags = _tags_for(rng, source, level, age_days)
    return plan


def _plan_contact(rng, customer, primary, domain, city, person=None) -> Contact:
    person = person or demo_data.make_person(rng)
    titles = SENIOR_TITLES if primary else demo_data.JOB_TITLES
    contact = Contact(
        customer=customer,
        name=person.name,
        title=rng.choice(titles) if domain else "",
        mobile=demo_data.mobile(rng),
        email=demo_data.email(rng, person=person, domain=domain),
        is_primary=primary,
        do_not_contact=not primary and rng.random() < 0.05,
        created_by=None,
        created_at=customer.created_at + timedelta(minutes=rng.randint(1, 600)),
    )
    if domain and rng.random() < 0.35:
        contact.phone = demo_data.landline(rng, city)
    if rng.random() < 0.6:
        contact.wechat = (
            f"{person.pinyin}{rng.randint(1, 999)}"
            if rng.random() < 0.6
            else f"wxid_{rng.randrange(16**10):010x}"
        )
    if rng.random() < 0.25:
        contact.birthday = datetime(
            rng.randint(1965, 1998), rng.randint(1, 12), rng.randint(1, 28)
        ).date()
    return contact


def _tags_for(rng, source, level, age_days) -> list[str]:
    tags = []
    if level == "a" and rng.random() < 0.7:
        tags.append("重点跟进")
    if source == "existing" or (age_days > 365 and level in "ab" and rng.random() < 0.5):
        tags.append("老客户")
    if source == "exhibition" and rng.random() < 0.8:
        tags.append("展会线索")
    chances = {"价格敏感": 0.12, "有预算": 0.1, "需要报价": 0.1, "竞品客户": 0.06}
    tags += [name for name, chance in chances.items() if rng.random() < chance]
    if level in "ab" and rng.random() < 0.2:
        tags.append("已签约")
    if level == "a" and rng.random() < 0.3:
        tags.append("VIP")
    return tags


def _follow_up_kind(rng, planned: Counter, owner: User) -> str:
    """today / overdue / upcoming / none; the first of each owner's meet MIN_FOLLOW_UPS."""
    for kind, minimum in zip(("today", "overdue", "upcoming"), MIN_FOLLOW_UPS, strict=True):
        if planned[owner.pk, kind] < minimum:
            planned[owner.pk, kind] += 1
            return kind
    return rng.choices(("today", "overdue", "upcoming", "none"), weights=(4, 10, 40, 46))[0]


def _due_at(rng, kind, now, today) -> datetime | None:
    hour, minute = rng.randint(9, 17), rng.choice((0, 0, 15, 30, 30, 45))
    if kind == "today":
        # Later today while there is time left, so the dashboard's "today" card has work.
        first = max(9, now.hour + 1)
        if first > 22:
            return today.replace(hour=23, minute=59)
        return today.replace(hour=rng.randint(first, max(first, 18)), minute=minute)
    if kind == "overdue":
        return (today - timedelta(days=rng.randint(1, 12))).replace(hour=hour, minute=minute)
    if kind == "upcoming":
        return (today + timedelta(days=rng.randint(1, 14))).replace(hour=hour, minute=minute)
    return None


def _plan_activities(rng, plan: Plan, author: User, times, items, due_at) -> None:
    """Activities at `times` by `author`; earlier ones planned the next one (a done task),
    the last one plans `due_at` (an open task for the owner)."""
    customer = plan.customer
    kinds = items["activity_kind"]
    for i, when in enumerate(times):
        kind = demo_data.activity_kind(rng)
        contact = None
        if plan.contacts and rng.random() < 0.75:
            contact = plan.contacts[0] if rng.random() < 0.6 else rng.choice(plan.contacts)
        activity = Activity(
            customer=customer,
            contact=contact,
            kind=kinds.get(kind),
            content=demo_data.activity_content(rng, kind, contact.name if contact else ""),
            occurred_at=when,
            author=author,
        )
        plan.activities.append(activity)
        last = i == len(times) - 1
        if not last and rng.random() < 0.45:
            following = times[i + 1]
            # Planned for office hours on the day of the next entry or shortly before.
            planned = (following - timedelta(days=rng.choice((0, 0, 1, 2)))).replace(
                hour=rng.randint(9, 17), minute=rng.choice((0, 30)), second=0, microsecond=0
            )
            if planned <= when:
                planned = following.replace(minute=0, second=0, microsecond=0)
            activity.next_follow_up_at = planned
            plan.tasks.append(
                _follow_up_task(customer, activity, author, planned, done_at=following)
            )
        elif last and due_at is not None:
            activity.next_follow_up_at = due_at
            plan.tasks.append(_follow_up_task(customer, activity, author, due_at))
    if times:
        customer.last_activity_at = times[-1]
        customer.next_follow_up_at = due_at
    if customer.last_activity_at is None and due_at is not None:
        customer.next_follow_up_at = due_at


def _follow_up_task(customer, activity, author, due_at, done_at=None) -> Task:
    task = Task(
        title=gettext("Follow up with %(name)s") % {"name": customer.name},
        due_at=due_at,
        assignee=customer.owner or author,
        customer=customer,
        activity=activity,
        created_by=author,
        status=TaskStatus.DONE if done_at else TaskStatus.OPEN,
        completed_at=done_at,
    )
    task._planned_created_at = activity.occurred_at
    return task


def _plan_standalone_tasks(rng, plans: list[Plan], manager: User, now: datetime) -> None:
    """Tasks a person set themselves (or their manager gave them) about their customers."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for plan in rng.sample(plans, min(STANDALONE_TASKS_PER_OWNER, len(plans))):
        customer = plan.customer
        contact = plan.contacts[0].name if plan.contacts else ""
        kind = rng.choices(("done", "today", "overdue", "upcoming"), weights=(40, 15, 15, 30))[0]
        due_at = _due_at(rng, "overdue" if kind == "done" else kind, now, today)
        created_by = manager if rng.random() < 0.25 else customer.owner
        task = Task(
            title=demo_data.task_title(rng, customer.name, contact),
            notes=rng.choice(("", "", "记得带上最新的产品目录。", "客户希望先看到案例。")),
            due_at=due_at,
            assignee=customer.owner,
            customer=customer,
            created_by=created_by,
        )
        task._planned_created_at = max(
            customer.created_at, due_at - timedelta(days=rng.randint(1, 7))
        )
        if kind == "done":
            task.status = TaskStatus.DONE
            task.completed_at = min(now, due_at - timedelta(hours=rng.randint(0, 20)))
            task.completed_at = max(task.completed_at, task._planned_created_at)
        plan.tasks.append(task)


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
