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

from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Case, Count, DateTimeField, F, Func, IntegerField, Q, When
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import Department
from crm.filters import TEAM
from crm.models import Activity, Customer, DictionaryItem, PoolEvent, Task, TaskStatus
from crm.selectors import stale_q

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


def week_label(monday: date, period: Period) -> str:
    """A week by its days in the period ("12-01 – 12-06" for a week the period cuts)."""
    first, last = _week_span(monday, period)
    return f"{first:%m-%d} – {last:%m-%d}"


class WidthBucket(Func):
    """PostgreSQL's width_bucket(value, thresholds): 1 for thresholds[0] <= value <
    thresholds[1], and so on."""

    output_field = IntegerField()

    def __init__(self, expression, thresholds: list[datetime]):
        super().__init__(expression)
        self.thresholds = thresholds

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"WIDTH_BUCKET({sql}, %s::timestamptz[])", [*params, self.thresholds]


class Weeks:
    """The weeks (Monday to Sunday, local time) a period touches, as a grouping
    expression. On PostgreSQL a row's week is found by width_bucket among the Mondays'
    instants, which takes half the time of date_trunc('week', ... AT TIME ZONE ...) over
    a year of activities (no time-zone conversion per row) and stays right across
    daylight-saving changes; elsewhere TruncWeek."""

    def __init__(self, period: Period):
        first = _monday(period.first)
        count = (period.last - first).days // 7 + 1
        self.mondays = [first + timedelta(weeks=i) for i in range(count)]

    def of(self, expression):
        if connection.vendor != "postgresql":
            return TruncWeek(expression)
        starts = [timezone.make_aware(datetime.combine(m, time.min)) for m in self.mondays]
        return WidthBucket(expression, starts)

    def monday(self, value: int | datetime | date) -> date:
        if isinstance(value, int):
            return self.mondays[value - 1]
        return _monday(value)


def stale_days(ctx: Context) -> int:
    """N of "no follow-up in N days": the report page's ?days=N (default 30)."""
    params = getattr(ctx, "params", None) or {}
    try:
        days = int(params.get(STALE_PARAM) or DEFAULT_STALE_DAYS)
    except (TypeError, ValueError):
        return DEFAULT_STALE_DAYS
    return days if days >= 1 else DEFAULT_STALE_DAYS


def _among(ctx: Context) -> Q:
    """The owner or department chosen, as a filter on people."""
    among = Q()
    if ctx.owner is not None:
        among &= Q(pk=ctx.owner.pk)
    if ctx.department is not None:
        among &= Q(department_id__in=Department.objects.subtree_ids(ctx.department.pk))
    return among


def _people(ctx: Context):
    """The reps of the report: people of the viewer's scope, narrowed by the owner or
    department chosen (a queryset, used as a subquery)."""
    return access.users_in_scope(ctx.user).filter(_among(ctx))


def _by_people(ctx: Context, model, path: str):
    """The records of `model` whose person at `path` (author, assignee) is one of the
    report's reps: visible to the viewer through that person alone (access.visible_through),
    so no join on the customers."""
    return access.visible_through(model.objects.all(), ctx.user, path, among=_among(ctx))


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


def activity_counts(ctx: Context, kinds: dict[str, DictionaryItem], weeks: Weeks):
    """One query: per author and week, how many activities of each kind."""
    activities = _by_people(ctx, Activity, "author").filter(
        kind__in=[item.pk for item in kinds.values()],
        occurred_at__gte=ctx.period.start,
        occurred_at__lt=ctx.period.end,
    )
    # COUNT(kind_id), not COUNT(id): PostgreSQL answers from the activity_kind_time index.
    counts = {code: Count("kind", filter=Q(kind_id=item.pk)) for code, item in kinds.items()}
    return (
        activities.order_by()
        .annotate(week=weeks.of("occurred_at"))
        .values("author_id", "week")
        .annotate(**counts)
    )


def team_activity_total(user, period: Period) -> int:
    """Calls, visits and meetings of the user's team in the period: the activity report's
    total for the same period, in one query (the dashboard's card)."""
    ctx = Context(user=user, period=period)
    return (
        _by_people(ctx, Activity, "author")
        .filter(
            kind__dictionary__code="activity_kind",
            kind__code__in=KINDS,
            occurred_at__gte=period.start,
            occurred_at__lt=period.end,
        )
        .count()
    )


def task_counts(ctx: Context, now: datetime, weeks: Weeks):
    """One query: per assignee and week, tasks completed in the week and open tasks due
    in the week whose due time has passed (a task is one or the other, never both)."""
    start, end = ctx.period.start, ctx.period.end
    tasks = _by_people(ctx, Task, "assignee").filter(
        Q(status=TaskStatus.DONE, completed_at__gte=start, completed_at__lt=end)
        | Q(status=TaskStatus.OPEN, due_at__gte=start, due_at__lt=min(end, now)),
    )
    week = weeks.of(
        Case(
            When(status=TaskStatus.DONE, then=F("completed_at")),
            default=F("due_at"),
            output_field=DateTimeField(),
        )
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
        weeks = Weeks(ctx.period)
        for row in activity_counts(ctx, kinds, weeks) if kinds else []:
            cell = weekly.setdefault((row["author_id"], weeks.monday(row["week"])), {})
            for code in codes:
                cell[code] = cell.get(code, 0) + row[code]
        for row in task_counts(ctx, now, weeks):
            cell = weekly.setdefault((row["assignee_id"], weeks.monday(row["week"])), {})
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

        # Per rep over the whole period (the main table); a rep's name opens this report
        # narrowed to them, where the weeks below are theirs.
        per_person: dict[int, dict[str, int]] = {}
        per_week: dict[date, dict[str, int]] = {}
        for (pk, monday), cell in weekly.items():
            into = per_person.setdefault(pk, {})
            week = per_week.setdefault(monday, {})
            for key in figures:
                into[key] = into.get(key, 0) + cell.get(key, 0)
                week[key] = week.get(key, 0) + cell.get(key, 0)
        by_name = sorted(per_person, key=lambda pk: (name(pk), pk))
        table = Table(columns=[Column("rep", _("Rep")), *figure_columns])
        narrowed = ctx.owner is not None
        for pk in by_name:
            urls = links(_person_param(ctx, pk), ctx.period.first, ctx.period.last)
            rep_url = "" if narrowed else ctx.report_url(self.slug, owner=pk)
            table.rows.append(
                [Cell(name(pk), url=rep_url)]
                + [Cell(per_person[pk].get(key, 0), url=urls[key]) for key in order]
            )
        team = _person_param(ctx)
        team_urls = links(team, ctx.period.first, ctx.period.last)
        totals = {key: sum(cell.get(key, 0) for cell in per_person.values()) for key in order}
        table.totals = [Cell(str(_("Total")))] + [
            Cell(totals[key], url=team_urls[key]) for key in order
        ]

        # Week by week: the team's (or the chosen rep's) figures; per rep and week in
        # the export, where a year of a large team is thousands of rows.
        weeks_table = Table(columns=[Column("week", _("Week")), *figure_columns])
        for monday in sorted(per_week):
            first, last = _week_span(monday, ctx.period)
            urls = links(team, first, last)
            weeks_table.rows.append(
                [Cell(week_label(monday, ctx.period))]
                + [Cell(per_week[monday].get(key, 0), url=urls[key]) for key in order]
            )

        def rep_weeks() -> Table:
            table = Table(columns=[Column("rep", _("Rep")), Column("week", _("Week"))])
            table.columns += figure_columns
            for pk, monday in sorted(weekly, key=lambda key: (name(key[0]), key[0], key[1])):
                table.rows.append(
                    [Cell(name(pk)), Cell(week_label(monday, ctx.period))]
                    + [Cell(weekly[(pk, monday)].get(key, 0)) for key in order]
                )
            return table

        # The chart: the team's figures week by week, each week a stacked bar of its
        # calls, visits and meetings beside a bar of its tasks done and one of its tasks
        # overdue (a bar shows a single week too, where a line would be a lone dot).
        mondays = sorted(per_week)
        colors = {
            "call": "#206bc4",
            "visit": "#2fb344",
            "meeting": "#f59f00",
            "done": "#17a2b8",
            "overdue": "#d63939",
        }
        chart = None
        if mondays:
            datasets = []
            for key in order:
                datasets.append(
                    {
                        "label": str(labels[key]),
                        "data": [per_week[monday].get(key, 0) for monday in mondays],
                        "backgroundColor": colors[key],
                        "stack": key if key in ("done", "overdue") else "activities",
                    }
                )
            chart = {
                "type": "bar",
                "data": {
                    "labels": [week_label(m, ctx.period) for m in mondays],
                    "datasets": datasets,
                },
                "options": {
                    "scales": {
                        "x": {"stacked": True},
                        "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
                    },
                    "plugins": {"legend": {"position": "bottom"}},
                },
            }

        if ctx.owner is not None:
            who = name(ctx.owner.pk) if ctx.owner.pk in people else str(ctx.owner)
        elif ctx.department is not None:
            who = ctx.department.name
        else:
            who = str(_("the team"))
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
                (
                    str(_("Week by week: %(who)s") % {"who": who}),
                    weeks_table,
                ),
                (
                    str(_("Customers with no follow-up in %(days)s days"))
                    % {"days": stale_days(ctx)},
                    stale_table,
                ),
                (str(_("Public pool: claims and returns")), pool_table),
            ],
            export_tables=[(str(_("Per rep and week")), rep_weeks)],
            notes=[
                str(
                    _(
                        "Tasks overdue: still open, due in the week, and the due time has "
                        "passed. No follow-up: the last activity, or the creation of a "
                        "customer without any, is older than the number of days."
                    )
                ),
                str(
                    _(
                        "A rep's name shows their weeks. The CSV and Excel exports add "
                        "every rep's figures week by week."
                    )
                ),
            ],
        )

    def stale(self, ctx: Context, now: datetime) -> tuple[Table, int, str]:
        """One query: per owner (the public pool too) the customers with no follow-up in
        N days, by the rule the customers list's "stale" filter applies (crm.selectors)."""
        days = stale_days(ctx)
        customers = ctx.scope(Customer.objects.filter(stale_q(days, now=now)))
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
        the public pool in the period, and the team's total (a customer claimed or
        returned by two people counts once in it). The period's events are read once."""
        events = PoolEvent.objects.filter(
            customer__in=Customer.objects.visible_to(ctx.user).values("pk"),
            user__in=_people(ctx).values("pk"),
            created_at__gte=ctx.period.start,
            created_at__lt=ctx.period.end,
        )
        sql, params = (
            events.order_by().values("user_id", "customer_id", "action").query.sql_with_params()
        )
        counts = (
            "COUNT(DISTINCT CASE WHEN action = %s THEN customer_id END), "
            "COUNT(DISTINCT CASE WHEN action = %s THEN customer_id END)"
        )
        actions = [PoolEvent.Action.CLAIM.value, PoolEvent.Action.RELEASE.value]
        with connection.cursor() as cursor:
            # `sql` is Django's own compiled query; every value is a parameter.
            cursor.execute(
                f"WITH e AS ({sql}) SELECT user_id, {counts} FROM e GROUP BY user_id "  # noqa: S608
                f"UNION ALL SELECT NULL, {counts} FROM e",
                [*params, *actions, *actions],
            )
            fetched = cursor.fetchall()
        rows = [
            {"user_id": user_id, "claims": claims, "returns": returns}
            for user_id, claims, returns in fetched
            if user_id is not None
        ]
        totals = next(
            {"claims": claims, "returns": returns}
            for user_id, claims, returns in fetched
            if user_id is None
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
        table.totals = [
            Cell(str(_("Total"))),
            Cell(totals["claims"], url=url("claim", team)),
            Cell(totals["returns"], url=url("release", team)),
        ]
        return table
