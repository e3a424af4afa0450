"""Read-side questions about CRM records that pages, filters, reports, automation and
the API all ask: which customers nobody followed up, which follow-ups and tasks are due
or overdue, what a record's timeline holds. One definition each, so a list, the report
that links to it and a rule acting on it count the same records.

Two shapes:
- a selector takes the user (never the request) and answers with a queryset inside the
  user's data scope (`stale_customers(user, 30)`), ready to narrow, count or page;
- the rule it applies is also a condition (`stale_q(30)`) for a caller that already
  holds a scoped queryset: a list's filter panel (crm.filters), whose rows the view
  scoped, or a report narrowed by owner and department (reports.base.Context.scope).
`now` is a parameter everywhere so a test or a scheduled job asks about a fixed moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, F, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts import access

from .models import Activity, Change, Contact, Customer, Task, TaskStatus
from .services.history import readable_changes

# --- Days -------------------------------------------------------------------------------


def start_of_today(now: datetime | None = None) -> datetime:
    """Midnight at the start of the local day of `now` (the site's time zone)."""
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def end_of_today(now: datetime | None = None) -> datetime:
    """Midnight at the end of the local day of `now`: "by the end of today" is before it."""
    day = timezone.localdate(now) + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time.min))


# --- Customers nobody followed up ------------------------------------------------------


def stale_q(days: int, *, now: datetime | None = None) -> Q:
    """Customers with no follow-up for more than `days` days: their last activity, or
    with none their creation, lies before `now` minus `days` days. Exactly `days` days
    ago is not stale yet."""
    cutoff = (now or timezone.now()) - timedelta(days=int(days))
    return Q(last_activity_at__lt=cutoff) | Q(last_activity_at__isnull=True, created_at__lt=cutoff)


def stale_customers(user, days: int, *, now: datetime | None = None) -> QuerySet[Customer]:
    """The customers the user sees (the public pool's too) that nobody followed up for
    more than `days` days: the customer list's "stale" filter and the activity report."""
    return Customer.objects.visible_to(user).filter(stale_q(days, now=now))


# --- Customers' next follow-up -----------------------------------------------------------

# What a customer's next follow-up (Customer.next_follow_up_at) may be asked about.
FOLLOW_UP_DUE = "due"  # by the end of today, the overdue ones included
FOLLOW_UP_OVERDUE = "overdue"  # before now
FOLLOW_UP_WEEK = "week"  # from now to the same time in 7 days
FOLLOW_UP_NONE = "none"  # none planned
FOLLOW_UP_WINDOWS = (FOLLOW_UP_DUE, FOLLOW_UP_OVERDUE, FOLLOW_UP_WEEK, FOLLOW_UP_NONE)


def follow_up_q(window: str, *, now: datetime | None = None) -> Q:
    """Customers whose next follow-up falls in `window` (one of FOLLOW_UP_WINDOWS); any
    other value asks nothing (an empty condition)."""
    now = now or timezone.now()
    if window == FOLLOW_UP_DUE:
        return Q(next_follow_up_at__lt=end_of_today(now))
    if window == FOLLOW_UP_OVERDUE:
        return Q(next_follow_up_at__lt=now)
    if window == FOLLOW_UP_WEEK:
        return Q(next_follow_up_at__gte=now, next_follow_up_at__lt=now + timedelta(days=7))
    if window == FOLLOW_UP_NONE:
        return Q(next_follow_up_at__isnull=True)
    return Q()


def follow_ups_due(user, *, now: datetime | None = None) -> QuerySet[Customer]:
    """Customers the user owns whose next follow-up is due by the end of today (overdue
    ones too), the earliest first: the dashboard's "follow up" card."""
    return (
        Customer.objects.visible_to(user)
        .filter(follow_up_q(FOLLOW_UP_DUE, now=now), owner=user)
        .order_by("next_follow_up_at", "pk")
    )


# --- Tasks due and overdue -------------------------------------------------------------

TASK_DUE_TODAY = "today"  # due today (any time of the day), whatever the status
TASK_OVERDUE = "overdue"  # open and its due time has passed
TASK_UPCOMING = "upcoming"  # due after today
TASK_NO_DUE = "none"  # no due time
TASK_DUE_WINDOWS = (TASK_DUE_TODAY, TASK_OVERDUE, TASK_UPCOMING, TASK_NO_DUE)


def overdue_q(*, now: datetime | None = None, prefix: str = "") -> Q:
    """Open tasks whose due time has passed. `prefix` reaches the tasks through a
    relation (e.g. "tasks__" from a user)."""
    return Q(**{f"{prefix}status": TaskStatus.OPEN, f"{prefix}due_at__lt": now or timezone.now()})


def due_later_today_q(*, now: datetime | None = None) -> Q:
    """Tasks due from now to the end of today: what is still to do today, not overdue."""
    now = now or timezone.now()
    return Q(due_at__gte=now, due_at__lt=end_of_today(now))


def task_due_q(window: str, *, now: datetime | None = None) -> Q:
    """Tasks whose due time falls in `window` (one of TASK_DUE_WINDOWS); any other value
    asks nothing (an empty condition)."""
    now = now or timezone.now()
    if window == TASK_DUE_TODAY:
        return Q(due_at__gte=start_of_today(now), due_at__lt=end_of_today(now))
    if window == TASK_OVERDUE:
        return overdue_q(now=now)
    if window == TASK_UPCOMING:
        return Q(due_at__gte=end_of_today(now))
    if window == TASK_NO_DUE:
        return Q(due_at__isnull=True)
    return Q()


def open_tasks_of(user) -> QuerySet[Task]:
    """The user's own open tasks (assigned to them) that their role lets them see, with
    the customer each is about."""
    return (
        Task.objects.visible_to(user)
        .filter(assignee=user, status=TaskStatus.OPEN)
        .select_related("customer")
    )


def tasks_due_later_today(user, *, now: datetime | None = None) -> QuerySet[Task]:
    """The user's open tasks due from now to the end of today, the soonest first."""
    return open_tasks_of(user).filter(due_later_today_q(now=now)).order_by("due_at", "pk")


def tasks_coming_up(user, *, now: datetime | None = None, days: int = 7) -> QuerySet[Task]:
    """The user's open tasks due after today and within `days` days, the soonest first
    (a task a rule just gave them shows on their start page before its day)."""
    start = end_of_today(now)
    return (
        open_tasks_of(user)
        .filter(due_at__gte=start, due_at__lt=start + timedelta(days=days))
        .order_by("due_at", "pk")
    )


def overdue_tasks(user, *, now: datetime | None = None) -> QuerySet[Task]:
    """The user's overdue tasks, the most recently missed first: those are the ones
    still worth doing today."""
    return open_tasks_of(user).filter(overdue_q(now=now)).order_by("-due_at", "-pk")


def task_counts(user, *, now: datetime | None = None) -> dict[str, int]:
    """How many of the user's open tasks are due later today ("today") and how many are
    overdue ("overdue"): one query."""
    now = now or timezone.now()
    return open_tasks_of(user).aggregate(
        today=Count("pk", filter=due_later_today_q(now=now)),
        overdue=Count("pk", filter=overdue_q(now=now)),
    )


def team_overdue(user, *, now: datetime | None = None) -> QuerySet:
    """The people in the user's data scope who have overdue tasks, each annotated with
    how many (`overdue`), the most behind first: a manager's dashboard card."""
    return (
        access.users_in_scope(user)
        .annotate(overdue=Count("tasks", filter=overdue_q(now=now, prefix="tasks__")))
        .filter(overdue__gt=0)
        .order_by("-overdue", "name", "pk")
    )


def open_tasks_about(user, record: Model) -> QuerySet[Task]:
    """The open tasks about a customer, or a lead or a deal (their subject), that the
    user may see, with the assignee: the soonest due first, those without a due time
    last."""
    if isinstance(record, Customer):
        about = Q(customer=record)
    else:
        subject_type = ContentType.objects.get_for_model(type(record))
        about = Q(subject_type=subject_type, subject_id=record.pk)
    return (
        Task.objects.visible_to(user)
        .filter(about, status=TaskStatus.OPEN)
        .select_related("assignee")
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    )


# --- Timelines -------------------------------------------------------------------------


def timeline(user, record: Model) -> QuerySet[Activity]:
    """The follow-ups (activities) about a record that the user may see, newest first,
    with their author and contact: a customer's are its own and its contacts', a
    contact's are those logged with it, any other record's (a lead, a deal) those whose
    subject it is. The kinds are left to the caller (a page has them loaded already)."""
    if isinstance(record, Customer):
        about = Q(customer=record)
    elif isinstance(record, Contact):
        about = Q(contact=record)
    else:
        subject_type = ContentType.objects.get_for_model(type(record))
        about = Q(subject_type=subject_type, subject_id=record.pk)
    return (
        Activity.objects.visible_to(user)
        .filter(about)
        .select_related("author", "contact")
        .order_by("-occurred_at", "-pk")
    )


# --- History ----------------------------------------------------------------------------------


def customer_history(user, customer: Customer) -> QuerySet[Change]:
    """The customer's History tab, newest first: its own rows and those of records that
    hang on it (contacts, tasks, deals...), each only while the user may see the record it
    is about (crm.services.history.readable_changes), filtered in the query so a page is
    full when there are rows enough."""
    return (
        Change.objects.filter(customer=customer)
        .filter(readable_changes(user))
        .select_related("user")
        .order_by("-created_at", "-pk")
    )


def record_history(user, record: Model) -> QuerySet[Change]:
    """One record's own history rows, newest first; none if the user may not see it."""
    if not access.can(user, record, "view"):
        return Change.objects.none()
    return (
        Change.objects.filter(
            record_type=ContentType.objects.get_for_model(record), record_id=record.pk
        )
        .select_related("user")
        .order_by("-created_at", "-pk")
    )


# --- The task calendar (日程) -------------------------------------------------------------

# A calendar page shows at most this many tasks and as many follow-ups: a month of a big
# team's work is more than a page can show; the page asks to narrow the filters.
CALENDAR_LIMIT = 1000


def day_start(day: date) -> datetime:
    """Local midnight at the start of `day` (the site's time zone)."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class CalendarEntry:
    """One line of a calendar day: a task, or a customer's planned next follow-up that
    no open task stands for."""

    at: datetime
    task: Task | None = None
    customer: Customer | None = None

    @property
    def is_follow_up(self) -> bool:
        return self.task is None


@dataclass
class CalendarDays:
    days: dict[date, list[CalendarEntry]]
    truncated: bool  # more rows than CALENDAR_LIMIT of either kind: some are left out


def calendar_days(
    user,
    first: date,
    last: date,
    *,
    tasks: QuerySet[Task] | None = None,
    customers: QuerySet[Customer] | None = None,
) -> CalendarDays:
    """The user's calendar from day `first` to day `last` (both included, local days):
    the tasks due on each day and the customers' planned next follow-ups, in time order.

    `tasks` and `customers` are what a page's filters left of the records (the task
    list's filters); they are narrowed to the user's data scope here whatever the caller
    passed, so the calendar never shows what the list would not. A customer's plan that
    an open task due at the same moment stands for (the task a follow-up planned) shows
    once, as the task. `customers=None` leaves planned follow-ups out."""
    start, end = day_start(first), day_start(last + timedelta(days=1))
    task_rows = (
        (Task.objects.all() if tasks is None else tasks)
        .filter(pk__in=Task.objects.visible_to(user).values("pk"))
        .filter(due_at__gte=start, due_at__lt=end)
        .select_related("assignee", "customer")
        .order_by("due_at", "pk")
    )
    task_list = list(task_rows[: CALENDAR_LIMIT + 1])
    truncated = len(task_list) > CALENDAR_LIMIT
    task_list = task_list[:CALENDAR_LIMIT]
    entries = [CalendarEntry(at=task.due_at, task=task) for task in task_list]
    if customers is not None:
        planned = (
            customers.filter(pk__in=Customer.objects.visible_to(user).values("pk"))
            .filter(next_follow_up_at__gte=start, next_follow_up_at__lt=end)
            .exclude(
                Exists(
                    Task.objects.filter(
                        customer=OuterRef("pk"),
                        status=TaskStatus.OPEN,
                        due_at=OuterRef("next_follow_up_at"),
                    )
                )
            )
            .select_related("owner")
            .order_by("next_follow_up_at", "pk")
        )
        planned_list = list(planned[: CALENDAR_LIMIT + 1])
        truncated = truncated or len(planned_list) > CALENDAR_LIMIT
        entries += [
            CalendarEntry(at=c.next_follow_up_at, customer=c) for c in planned_list[:CALENDAR_LIMIT]
        ]
    entries.sort(key=lambda entry: (entry.at, entry.is_follow_up))
    days: dict[date, list[CalendarEntry]] = {}
    day = first
    while day <= last:
        days[day] = []
        day += timedelta(days=1)
    for entry in entries:
        local = timezone.localtime(entry.at).date()
        if local in days:
            days[local].append(entry)
    return CalendarDays(days=days, truncated=truncated)
