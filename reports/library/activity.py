"""Activity: who is behind? Per rep and week, the calls, visits and meetings they logged
and their tasks done and overdue; the customers nobody followed up for N days, per owner;
claims from and returns to the public pool, per person.

"Rep" means the people of the viewer's data scope (access.users_in_scope): an activity by
someone outside it on a visible customer is not theirs to report on. The lists the numbers
drill down to say the same with author/assignee "team".

- Calls, visits, meetings: activities of those kinds (activity_kind codes) that occurred
  in the week (weeks start on Monday and are cut to the period).
- Tasks done: completed in the week. Tasks overdue: still open, due in the week and the
  due time has passed.
- No follow-up in N days: customers whose last activity (or, with none, creation) is more
  than N days ago, per owner, the public pool included (the customers list's "stale").
- Pool: customers claimed from / returned to the public pool in the period, per person."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Case, Count, DateTimeField, Q, When
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import Department
from crm.filters import TEAM, CustomerFilter
from crm.models import Activity, Customer, DictionaryItem, PoolEvent, Task, TaskStatus

from ..base import Cell, Column, Context, Report, Result, Table, list_url, register
from ..periods import Period

KINDS = ("call", "visit", "meeting")
DEFAULT_STALE_DAYS = 30
STALE_PARAM = "days"


def _monday(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value - timedelta(days=value.weekday())


def _week_span(monday: date, period: Period) -> tuple[date, date]:
    return max(monday, period.first), min(monday + timedelta(days=6), period.last)


def stale_days(ctx: Context) -> int:
    """N of "no follow-up in N days": the report page's ?days=N (default 30)."""
    params = getattr(ctx, "params", None) or {}
    try:
        days = int(params.get(STALE_PARAM) or DEFAULT_STALE_DAYS)
    except (TypeError, ValueError):
        return DEFAULT_STALE_DAYS
    return days if days >= 1 else DEFAULT_STALE_DAYS


def _people(ctx: Context):
    """The reps of the report: people of the viewer's scope, narrowed by the owner or
    department chosen (a queryset, used as a subquery)."""
    people = access.users_in_scope(ctx.user)
    if ctx.owner is not None:
        people = people.filter(pk=ctx.owner.pk)
    if ctx.department is not None:
        people = people.filter(department_id__in=Department.objects.subtree_ids(ctx.department.pk))
    return people


def _person_param(ctx: Context, person_id: int | None = None) -> dict[str, str]:
    """The person filter of a drill-down: one rep, the owner chosen, or the team."""
    if person_id is not None:
        return {"person": "me" if person_id == ctx.user.pk else str(person_id)}
    if ctx.owner is not None:
        return {"person": "me" if ctx.owner.pk == ctx.user.pk else str(ctx.owner.pk)}
    return {"person": TEAM}


def _department_param(ctx: Context) -> dict[str, str]:
    return {"department": str(ctx.department.pk)} if ctx.department is not None else {}


def kind_items() -> dict[str, DictionaryItem]:
    return {
        item.code: item
        for item in DictionaryItem.objects.of("activity_kind").filter(code__in=KINDS)
    }


def activity_counts(ctx: Context, kinds: dict[str, DictionaryItem]):
    """One query: per author and week, how many activities of each kind."""
    activities = ctx.scope(Activity.objects.all(), owner_path="author").filter(
        author__in=_people(ctx).values("pk"),
        kind__in=[item.pk for item in kinds.values()],
        occurred_at__gte=ctx.period.start,
        occurred_at__lt=ctx.period.end,
    )
    counts = {code: Count("pk", filter=Q(kind_id=item.pk)) for code, item in kinds.items()}
    return (
        activities.order_by()
        .annotate(week=TruncWeek("occurred_at"))
        .values("author_id", "week")
        .annotate(**counts)
    )


def team_activity_total(user, period: Period) -> int:
    """Calls, visits and meetings of the user's team in the period: the activity report's
    total for the same period, in one query (the dashboard's card)."""
    ctx = Context(user=user, period=period)
    return (
        ctx.scope(Activity.objects.all(), owner_path="author")
        .filter(
            author__in=_people(ctx).values("pk"),
            kind__dictionary__code="activity_kind",
            kind__code__in=KINDS,
            occurred_at__gte=period.start,
            occurred_at__lt=period.end,
        )
        .count()
    )


def task_counts(ctx: Context, now: datetime):
    """One query: per assignee and week, tasks completed in the week and open tasks due
    in the week whose due time has passed (a task is one or the other, never both)."""
    start, end = ctx.period.start, ctx.period.end
    tasks = ctx.scope(Task.objects.all(), owner_path="assignee").filter(
        Q(status=TaskStatus.DONE, completed_at__gte=start, completed_at__lt=end)
        | Q(status=TaskStatus.OPEN, due_at__gte=start, due_at__lt=min(end, now)),
        assignee__in=_people(ctx).values("pk"),
    )
    week = Case(
        When(status=TaskStatus.DONE, then=TruncWeek("completed_at")),
        default=TruncWeek("due_at"),
        output_field=DateTimeField(),
    )
    return (
        tasks.order_by()
        .annotate(week=week)
        .values("assignee_id", "week")
        .annotate(
            done=Count("pk", filter=Q(status=TaskStatus.DONE)),
            overdue=Count("pk", filter=Q(status=TaskStatus.OPEN)),
        )
    )


@register
class ActivityReport(Report):
    slug = "activity"
    extra_fields = ((STALE_PARAM, _("No follow-up for (days)"), DEFAULT_STALE_DAYS, 1),)
    title = _("Activity")
    question = _(
        "Who is behind? Calls, visits and meetings per rep and week, tasks done and "
        "overdue, customers nobody followed up for a while, and public-pool claims and "
        "returns."
    )
    icon = "activity"
    record_type = "activity"

    def compute(self, ctx: Context) -> Result:
        now = timezone.now()
        people = {u.pk: u for u in _people(ctx)}
        kinds = kind_items()
        codes = [code for code in KINDS if code in kinds]
        figures = ["done", "overdue", *codes]
        # (person, monday) -> figure -> count
        weekly: dict[tuple[int, date], dict[str, int]] = {}
        for row in activity_counts(ctx, kinds) if kinds else []:
            cell = weekly.setdefault((row["author_id"], _monday(row["week"])), {})
            for code in codes:
                cell[code] = cell.get(code, 0) + row[code]
        for row in task_counts(ctx, now):
            cell = weekly.setdefault((row["assignee_id"], _monday(row["week"])), {})
            cell["done"] = cell.get("done", 0) + row["done"]
            cell["overdue"] = cell.get("overdue", 0) + row["overdue"]

        def name(pk: int) -> str:
            person = people.get(pk)
            return (person.get_full_name() or person.get_username()) if person else "—"

        def links(person: dict, first: date, last: date) -> dict[str, str]:
            dates = {"first": first.isoformat(), "last": last.isoformat()}
            base = {**_department_param(ctx)}
            urls = {
                code: list_url(
                    "activities:list",
                    author=person["person"],
                    kind=kinds[code].pk,
                    occurred_after=dates["first"],
                    occurred_before=dates["last"],
                    **base,
                )
                for code in codes
            }
            urls["done"] = list_url(
                "tasks:list",
                assignee=person["person"],
                status=TaskStatus.DONE,
                completed_after=dates["first"],
                completed_before=dates["last"],
                **base,
            )
            urls["overdue"] = list_url(
                "tasks:list",
                assignee=person["person"],
                due="overdue",
                due_on_after=dates["first"],
                due_on_before=dates["last"],
                **base,
            )
            return urls

        labels = {
            "call": _("Calls"),
            "visit": _("Visits"),
            "meeting": _("Meetings"),
            "done": _("Tasks done"),
            "overdue": _("Tasks overdue"),
        }
        order = [*codes, "done", "overdue"]
        figure_columns = [Column(key, labels[key], numeric=True) for key in order]

        # Per rep over the whole period (the main table) and per rep and week.
        per_person: dict[int, dict[str, int]] = {}
        for (pk, _week), cell in weekly.items():
            into = per_person.setdefault(pk, {})
            for key in figures:
                into[key] = into.get(key, 0) + cell.get(key, 0)
        by_name = sorted(per_person, key=lambda pk: (name(pk), pk))
        table = Table(columns=[Column("rep", _("Rep")), *figure_columns])
        for pk in by_name:
            urls = links(_person_param(ctx, pk), ctx.period.first, ctx.period.last)
            table.rows.append(
                [Cell(name(pk))]
                + [Cell(per_person[pk].get(key, 0), url=urls[key]) for key in order]
            )
        team_urls = links(_person_param(ctx), ctx.period.first, ctx.period.last)
        totals = {key: sum(cell.get(key, 0) for cell in per_person.values()) for key in order}
        table.totals = [Cell(str(_("Total")))] + [
            Cell(totals[key], url=team_urls[key]) for key in order
        ]

        weeks_table = Table(columns=[Column("rep", _("Rep")), Column("week", _("Week"))])
        weeks_table.columns += figure_columns
        for pk, monday in sorted(weekly, key=lambda key: (name(key[0]), key[0], key[1])):
            first, last = _week_span(monday, ctx.period)
            urls = links(_person_param(ctx, pk), first, last)
            cell = weekly[(pk, monday)]
            weeks_table.rows.append(
                [Cell(name(pk)), Cell(f"{first:%m-%d} – {last:%m-%d}")]
                + [Cell(cell.get(key, 0), url=urls[key]) for key in order]
            )

        # The chart: the team's figures week by week.
        mondays = sorted({monday for _pk, monday in weekly})
        colors = {
            "call": "#206bc4",
            "visit": "#2fb344",
            "meeting": "#f59f00",
            "done": "#4299e1",
            "overdue": "#d63939",
        }
        chart = None
        if mondays:
            datasets = []
            for key in order:
                series = [
                    sum(c.get(key, 0) for (pk, m), c in weekly.items() if m == monday)
                    for monday in mondays
                ]
                dataset = {"label": str(labels[key]), "data": series}
                if key in ("done", "overdue"):
                    dataset.update(
                        type="line", borderColor=colors[key], backgroundColor=colors[key]
                    )
                else:
                    dataset.update(backgroundColor=colors[key], stack="activities")
                datasets.append(dataset)
            chart = {
                "type": "bar",
                "data": {
                    "labels": [f"{_week_span(m, ctx.period)[0]:%m-%d}" for m in mondays],
                    "datasets": datasets,
                },
                "options": {
                    "scales": {"x": {"stacked": True}, "y": {"beginAtZero": True}},
                    "plugins": {"legend": {"position": "bottom"}},
                },
            }

        stale_table, stale_total, stale_url = self.stale(ctx, now)
        pool_table = self.pool(ctx, people, name)
        total_cells = dict(zip(order, table.totals[1:], strict=True))
        headline = [(str(labels[key]), total_cells[key]) for key in (*codes, "overdue")]
        headline.append(
            (
                str(_("No follow-up in %(days)s days") % {"days": stale_days(ctx)}),
                Cell(stale_total, url=stale_url),
            )
        )
        return Result(
            table=table,
            chart=chart,
            headline=headline,
            extra_tables=[
                (str(_("Per rep and week")), weeks_table),
                (
                    str(_("Customers with no follow-up in %(days)s days"))
                    % {"days": stale_days(ctx)},
                    stale_table,
                ),
                (str(_("Public pool: claims and returns")), pool_table),
            ],
            notes=[
                str(
                    _(
                        "Tasks overdue: still open, due in the week, and the due time has "
                        "passed. No follow-up: the last activity, or the creation of a "
                        "customer without any, is older than the number of days."
                    )
                )
            ],
        )

    def stale(self, ctx: Context, now: datetime) -> tuple[Table, int, str]:
        """One query: per owner (the public pool too) the customers with no follow-up in
        N days, through the customers list's own "stale" filter."""
        days = stale_days(ctx)
        customers = CustomerFilter.filter_stale(None, ctx.scope(Customer.objects.all()), "", days)
        rows = list(
            customers.order_by()
            .values("owner_id", "owner__name", "owner__username")
            .annotate(n=Count("pk"))
        )
        rows.sort(key=lambda r: (r["owner_id"] is None, r["owner__name"] or "", r["owner_id"] or 0))
        in_scope = {u.pk for u in access.users_in_scope(ctx.user)} if rows else set()
        table = Table(
            columns=[Column("owner", _("Owner")), Column("count", _("Customers"), numeric=True)]
        )
        base = {"stale": days, **ctx.list_params()}
        for row in rows:
            owner = row["owner_id"]
            if owner is None:
                label, url = str(_("Public pool")), list_url("customers:list", **base, owner="pool")
            else:
                label = row["owner__name"] or row["owner__username"]
                value = "me" if owner == ctx.user.pk else str(owner)
                url = (
                    list_url("customers:list", **{**base, "owner": value})
                    if owner in in_scope
                    else ""
                )
            table.rows.append([Cell(label), Cell(row["n"], url=url)])
        total = sum(row["n"] for row in rows)
        total_url = list_url("customers:list", **base)
        table.totals = [Cell(str(_("Total"))), Cell(total, url=total_url)]
        return table, total, total_url

    def pool(self, ctx: Context, people: dict, name) -> Table:
        """One query: per person, the visible customers they claimed from and returned to
        the public pool in the period."""
        events = PoolEvent.objects.filter(
            customer__in=Customer.objects.visible_to(ctx.user).values("pk"),
            user__in=_people(ctx).values("pk"),
            created_at__gte=ctx.period.start,
            created_at__lt=ctx.period.end,
        )
        rows = list(
            events.order_by()
            .values("user_id")
            .annotate(
                claims=Count("customer_id", distinct=True, filter=Q(action=PoolEvent.Action.CLAIM)),
                returns=Count(
                    "customer_id", distinct=True, filter=Q(action=PoolEvent.Action.RELEASE)
                ),
            )
        )
        rows.sort(key=lambda r: (name(r["user_id"]), r["user_id"]))
        dates = {
            "pool_event_date_after": ctx.period.first.isoformat(),
            "pool_event_date_before": ctx.period.last.isoformat(),
        }
        department = (
            {"pool_event_department": ctx.department.pk} if ctx.department is not None else {}
        )

        def url(action: str, person: str) -> str:
            return list_url(
                "customers:list",
                pool_event=action,
                pool_event_user=person,
                **dates,
                **department,
            )

        table = Table(
            columns=[
                Column("person", _("Person")),
                Column("claims", _("Customers claimed"), numeric=True),
                Column("returns", _("Customers returned"), numeric=True),
            ]
        )
        for row in rows:
            person = _person_param(ctx, row["user_id"])["person"]
            table.rows.append(
                [
                    Cell(name(row["user_id"])),
                    Cell(row["claims"], url=url("claim", person)),
                    Cell(row["returns"], url=url("release", person)),
                ]
            )
        team = _person_param(ctx)["person"]
        # A customer claimed (or returned) by two people counts once in the total.
        totals = (
            events.aggregate(
                claims=Count("customer_id", distinct=True, filter=Q(action=PoolEvent.Action.CLAIM)),
                returns=Count(
                    "customer_id", distinct=True, filter=Q(action=PoolEvent.Action.RELEASE)
                ),
            )
            if rows
            else {"claims": 0, "returns": 0}
        )
        table.totals = [
            Cell(str(_("Total"))),
            Cell(totals["claims"], url=url("claim", team)),
            Cell(totals["returns"], url=url("release", team)),
        ]
        return table
