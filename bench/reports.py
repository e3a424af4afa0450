#!/usr/bin/env python
"""The reports benchmark (issue 7): closed history for the reports to work on, then the
server time and query count of every registered report.

    # after bench/generate.py (100k customers) and bench/pipelines.py (50k open deals)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_pipe \\
        .venv/bin/python bench/reports.py \\
        [--closed 30000] [--leads 40000] [--seed 7] [--repeat 15] [--warmup 2] \\
        [--periods month,last_month,year] [--only funnel] [--reset-reports] [--no-explain]

1. Unless the database has them already (--reset-reports deletes and makes them again;
   on a database of bench/generate.py, which has leads, only the won and lost deals),
   loads by COPY (bench/loading.py: Copier, Loader, History), in one transaction:
   - leads over the last two years: sources by weight, the lead pipeline walked stage by
     stage; converted (their rate depends on the source) to one of the owner's customers
     with its primary contact, most of them with a deal; lost with reasons (the vague
     ones often); open, some not assigned yet; their follow-ups (activities with the lead
     as subject: the first contact a few hours to days after the lead came in);
   - won and lost deals closed over the last two years (plus the deals of converted
     leads), each walked through its pipeline's stages (sometimes a step back and forward
     again) with moved_at and seconds_in_previous, closed_at, lost reasons, amounts;
   - pool events (claims and returns) if there are none, tasks if there are none.
2. Measures every report registered in reports.base.reports() (reports.catalogue
   imported: reports added later are measured too) at /reports/<slug>/ with
   django.test.Client and bench/settings.py, for a rep, a manager and the admin, for each
   period: median and 90th percentile after warm-up, SQL queries and their time in one
   request. Then the same for smaller data, to show the query count does not grow with
   it: the admin narrowed to one rep (?owner=), and the smallest pipeline (?pipeline=)
   for reports that offer one. A case over the target gets its slowest queries with
   PostgreSQL's plan (EXPLAIN ANALYZE) printed.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402
from table import pad, width  # noqa: E402 (bench/table.py)

TARGET_MS = 200
PEOPLE = [("rep", "wangfang"), ("manager", "zhangwei"), ("admin", "admin")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--closed",
        type=int,
        default=30_000,
        help="won+lost deals (besides those of converted leads)",
    )
    parser.add_argument("--leads", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--periods", default="month,last_month,year")
    parser.add_argument("--only", default="", help="only reports whose slug contains this")
    parser.add_argument("--reset-reports", action="store_true")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--slow-ms", type=float, default=3000, help="time such cases 3 times only")
    parser.add_argument("--timeout", type=int, default=30, help="statement_timeout, seconds")
    return parser.parse_args(argv)


# --- Data -----------------------------------------------------------------------------


def present() -> dict[str, int]:
    from crm.models import PoolEvent, Task
    from pipelines.models import Deal, Lead

    closed = Deal.objects.exclude(status="open")
    return {
        "leads": Lead.objects.count(),
        "closed deals": closed.count(),
        # Won and lost deals that are not a converted lead's (bench/generate.py makes leads
        # and their deals, not these).
        "own closed deals": closed.exclude(
            pk__in=Lead.objects.filter(converted_deal__isnull=False).values("converted_deal")
        ).count(),
        "pool events": PoolEvent.objects.count(),
        "tasks": Task.objects.count(),
    }


def reset() -> None:
    """Delete what this script loads: leads, closed deals, their history and follow-ups,
    pool events."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from pipelines.models import Lead

    lead_type = ContentType.objects.get_for_model(Lead).pk
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_activity WHERE subject_type_id = %s", [lead_type])
        cursor.execute(
            "DELETE FROM pipelines_stagehistory WHERE record_type = 'lead' OR "
            "(record_type = 'deal' AND record_id IN "
            "(SELECT id FROM pipelines_deal WHERE status <> 'open'))"
        )
        cursor.execute("DELETE FROM pipelines_lead")
        cursor.execute("DELETE FROM pipelines_deal WHERE status <> 'open'")
        cursor.execute("DELETE FROM crm_poolevent")
    print("reset: leads, closed deals, their stage history and follow-ups, pool events deleted")


def load(args, *, leads: bool = True, closed: bool = True) -> None:
    """Leads (unless `leads` is False), won and lost deals of their own (unless `closed`
    is False), pool events and tasks when there are none: the records of bench/loading.py
    (History) on the database's people and customers."""
    from django.db import connection, transaction
    from loading import Copier, History, Loader, history_context  # bench/loading.py

    from accounts.models import DataScope, User
    from crm import demo_data
    from crm.models import Activity, Contact, Customer, PoolEvent, Task
    from pipelines.models import Deal, Lead, StageHistory

    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.now(tz)
    people = list(
        User.objects.filter(is_active=True, role__isnull=False)
        .exclude(role__data_scope=DataScope.ALL)
        .values_list("pk", flat=True)
    )
    customers: dict[int, list[int]] = {}
    for pk, owner in Customer.objects.filter(owner_id__in=people).values_list("pk", "owner_id"):
        customers.setdefault(owner, []).append(pk)
    owners = [p for p in people if customers.get(p)]
    contact_of = dict(
        Contact.objects.filter(is_primary=True).values_list("customer_id", "pk").iterator()
    )

    def max_id(table):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
            return cursor.fetchone()[0]

    deals, lead_rows, history = Copier(Deal), Copier(Lead), Copier(StageHistory)
    activities = Copier(Activity)
    made = History(
        seed=args.seed,
        now=now,
        owners=owners,
        customers_of=customers,
        contact_of=contact_of,
        **history_context(),
        deal_id=max_id("pipelines_deal"),
        lead_id=max_id("pipelines_lead"),
        activity_id=max_id("crm_activity"),
        history_id=max_id("pipelines_stagehistory"),
        deals=deals,
        leads=lead_rows,
        history=history,
        activities=activities,
    )
    rng = made.rng  # pool events and tasks continue its sequence, as before
    if leads:
        for _ in range(args.leads):
            made.lead()
    # Won and lost deals of their own.
    count = 0
    while closed and count < args.closed:
        count += made.closed()

    pool = Copier(PoolEvent)
    pool_rows = 0
    if not PoolEvent.objects.exists():
        pool_id = 0
        for pk, owner, created, released in Customer.objects.values_list(
            "pk", "owner_id", "created_at", "released_at"
        ).iterator():
            events = []
            if released is not None and owner is None:
                user = rng.choice(owners)
                if rng.random() < 0.3 and released - created > timedelta(days=2):
                    events.append((user, "claim", created + (released - created) * rng.random()))
                events.append((user, "release", released))
            elif owner is not None and rng.random() < 0.15:
                events.append((owner, "claim", created + (now - created) * rng.random()))
            for user, action, when in events:
                pool_id += 1
                pool.add(
                    id=pool_id, customer_id=pk, user_id=user, action=action,
                    reason="多次跟进无进展" if action == "release" else "", created_at=when,
                )  # fmt: skip
        pool_rows = pool.count

    tasks = Copier(Task)
    if not Task.objects.exists():
        task_id = 0
        for pk, owner in Customer.objects.exclude(owner=None).values_list("pk", "owner_id"):
            if rng.random() < 0.35:
                task_id += 1
                due = now + timedelta(days=rng.uniform(-60, 30))
                done = due < now and rng.random() < 0.8
                tasks.add(
                    id=task_id, title=demo_data.task_title(rng), notes="", due_at=due,
                    assignee_id=owner, status="done" if done else "open",
                    completed_at=due - timedelta(hours=rng.uniform(0, 48)) if done else None,
                    customer_id=pk, created_by_id=owner, created_at=due - timedelta(days=3),
                )  # fmt: skip

    with transaction.atomic(), connection.cursor() as cursor:
        loader = Loader(cursor)
        loader.load(lead_rows, ())
        loader.load(deals, ())
        loader.load(history, ())
        loader.load(activities, ())
        if pool_rows:
            loader.load(pool, ())
        if tasks.count:
            loader.load(tasks, ())
        for table in (
            "pipelines_lead",
            "pipelines_deal",
            "pipelines_stagehistory",
            "crm_activity",
            "crm_poolevent",
            "crm_task",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
            )
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for table in ("pipelines_lead", "pipelines_deal", "pipelines_stagehistory",
                      "crm_activity", "crm_poolevent", "crm_task"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
        print(f"  VACUUM ANALYZE {time.perf_counter() - started:.1f} s")


# --- Measuring ------------------------------------------------------------------------


def timed(fetch, repeat: int, warmup: int, slow_ms: float):
    """Median and p90 of `repeat` requests after `warmup`; the queries of one more. A
    case whose first request takes over `slow_ms` is timed 3 times only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    response = fetch()
    if (time.perf_counter() - started) * 1000 > slow_ms:
        repeat, warmup = 3, 0
    for _ in range(warmup - 1):
        response = fetch()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = fetch()
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = fetch()
    times.sort()
    p90 = times[min(len(times) - 1, max(0, math.ceil(len(times) * 0.9) - 1))]
    sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
    return statistics.median(times), p90, queries.captured_queries, sql_ms, response


def explain(queries, top: int = 2) -> None:
    """The slowest queries of a request and PostgreSQL's plan of each."""
    from django.db import connection

    slowest = sorted(queries, key=lambda q: float(q["time"]), reverse=True)[:top]
    for query in slowest:
        sql, seconds = query["sql"], float(query["time"])
        print(f"    {seconds * 1000:.1f} ms: {sql[:800]}{'…' if len(sql) > 800 else ''}")
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        # Over 3 s: the plan without running it.
        how = "(ANALYZE, BUFFERS)" if seconds < 3 else ""
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {how} {sql}")
            for (line,) in cursor.fetchall():
                print(f"      {line}")


def main(argv=None) -> None:
    args = parse_args(argv)
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.utils import translation

    import reports.catalogue  # registers every report
    from accounts.models import User
    from crm.models import Activity, Customer, PoolEvent, Task
    from pipelines.models import Deal, Lead, Pipeline, StageHistory
    from reports.base import reports

    if connection.vendor != "postgresql":
        sys.exit("bench/reports.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    if Customer.objects.count() < 10_000:
        sys.exit("run bench/generate.py and bench/pipelines.py first")
    translation.activate("zh-hans")
    # A failing request is reported in the table; no traceback from django.request.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    if args.reset_reports:
        reset()
    have = present()
    if have["leads"] and have["own closed deals"]:
        print(
            f"history present ({have['leads']:,} leads, {have['closed deals']:,} closed "
            "deals): not loading"
        )
    else:
        # A database of bench/generate.py has leads (and their deals) but no won and lost
        # deals of their own: those are loaded, the leads are not.
        started = time.perf_counter()
        print(
            "loading the closed history"
            + (f" (not the leads: {have['leads']:,} present)" if have["leads"] else "")
        )
        load(args, leads=not have["leads"], closed=not have["own closed deals"])
        print(f"loaded in {time.perf_counter() - started:.1f} s")
    if args.load_only:
        return

    users = {
        who: User.objects.select_related("role", "department").get(username=username)
        for who, username in PEOPLE
    }
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    counts = dict(
        Deal.objects.order_by().values_list("status").annotate(n=django.db.models.Count("pk"))
    )
    print(
        f"PostgreSQL {version}; deals {counts.get('open', 0):,} open, "
        f"{counts.get('won', 0):,} won, {counts.get('lost', 0):,} lost; "
        f"{Lead.objects.count():,} leads; "
        f"{StageHistory.objects.count():,} stage moves; {Customer.objects.count():,} customers; "
        f"{Activity.objects.count():,} activities; {Task.objects.count():,} tasks; "
        f"{PoolEvent.objects.count():,} pool events"
    )
    print(f"median of {args.repeat} after {args.warmup} warm-up requests")
    for who, user in users.items():
        scope = user.role.data_scope if user.role else "-"
        print(f"  {who:<8} {user.username:<9} scope {scope}")
    print()

    chosen = [r for r in reports() if args.only in r.slug]
    periods = [p for p in args.periods.split(",") if p]
    rep = users["rep"]
    smallest = {}
    for kind in ("deal", "lead"):
        pipelines = list(Pipeline.objects.filter(kind=kind, is_active=True))
        if kind == "deal":
            sizes = dict(
                Deal.objects.order_by()
                .values_list("pipeline")
                .annotate(n=django.db.models.Count("pk"))
            )
            pipelines.sort(key=lambda p: sizes.get(p.pk, 0))
        if pipelines:
            smallest[kind] = pipelines[0]

    cases = []  # (report, who, label, query string)
    for report in chosen:
        for who in users:
            for period in periods:
                cases.append((report, who, period, f"period={period}"))
        cases.append(
            (report, "admin", f"year, owner={rep.username}", f"period=year&owner={rep.pk}")
        )
        if report.uses_pipeline and report.pipeline_kind in smallest:
            pipeline = smallest[report.pipeline_kind]
            cases.append(
                (
                    report,
                    "admin",
                    f"year, pipeline {pipeline.name}",
                    f"period=year&pipeline={pipeline.pk}",
                )
            )

    with connection.cursor() as cursor:  # a runaway report query fails instead of hanging
        cursor.execute(f"SET statement_timeout = '{args.timeout}s'")
    clients = {}
    for who, user in users.items():
        clients[who] = Client()
        clients[who].force_login(user)

    columns = max(width(f"{r.slug}  {label}") for r, _w, label, _q in cases) + 2
    header = (
        f"{pad('report  period', columns)} {'who':<8} {'median':>8} {'p90':>8} "
        f"{'queries':>7} {'sql ms':>7}  target"
    )
    print(header)
    print("-" * width(header))
    results = []
    misses = []
    for report, who, label, query in cases:
        url = f"/reports/{report.slug}/?{query}"
        client = clients[who]

        def fetch(url=url, client=client):
            return client.get(url)

        try:
            median, p90, queries, sql_ms, response = timed(
                fetch, args.repeat, args.warmup, args.slow_ms
            )
        except Exception as exc:  # a statement timeout, a report's bug: say so, go on
            results.append((report.slug, who, label, -1, False))
            print(
                f"{pad(f'{report.slug}  {label}', columns)} {who:<8} ERROR {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120]}",
                flush=True,
            )
            continue
        status = response.status_code
        good = status == 200 and median <= TARGET_MS
        flag = "ok" if good else (f"HTTP {status}" if status != 200 else "MISSED")
        results.append((report.slug, who, label, len(queries), good))
        if not good and status == 200:
            misses.append((report.slug, who, label, median, queries))
        print(
            f"{pad(f'{report.slug}  {label}', columns)} {who:<8} {median:>6.1f}ms {p90:>6.1f}ms "
            f"{len(queries):>7} {sql_ms:>5.1f}ms  <= {TARGET_MS} ms  {flag}",
            flush=True,
        )

    print("\nqueries per request, by report and person (every period and data size):")
    grows = []

    def shown(value):
        return "error" if value == -1 else value

    for report in chosen:
        counts = {(w, label): q for slug, w, label, q, _g in results if slug == report.slug}
        parts = []
        for who in users:
            seen = sorted({q for (w, _l), q in counts.items() if w == who and q >= 0})
            parts.append(f"{who} {seen}")
        # The same period over all the data and over one rep's: more data, more queries?
        full, small = (
            counts.get(("admin", "year")),
            counts.get(("admin", f"year, owner={rep.username}")),
        )
        if full is not None and small is not None and full > small >= 0:
            grows.append(report.slug)

        print(
            f"  {pad(report.slug, 12)} "
            + ", ".join(parts)
            + f"; admin year: everyone {shown(full)}, one rep {shown(small)}"
        )
    print(
        "  GROWS with the data: " + ", ".join(grows)
        if grows
        else "  no report needs more queries for more data (admin, year: everyone vs one rep)"
    )
    ok = sum(1 for r in results if r[4])
    print(f"\n{ok}/{len(results)} cases within {TARGET_MS} ms")
    if misses and not args.no_explain:
        print("\nslowest queries of the cases over the target, with their plans:")
        for slug, who, label, median, queries in misses:
            print(f"\n  {slug} {label} ({who}, {median:.0f} ms)")
            explain(queries)


if __name__ == "__main__":
    main()
