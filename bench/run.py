#!/usr/bin/env python
"""Server time and query count of the busiest pages, on the database bench/generate.py
filled:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/run.py

In-process with django.test.Client (no network, no browser) and production-like
settings (bench/settings.py: DEBUG off). Each case is requested --warmup times, then
--repeat times; the table shows the median and 90th percentile of the time from request
to rendered response, and the number of SQL queries of one request. Three people: a rep
(scope own: own customers and the public pool), a manager (department and
sub-departments) and the admin (all). Cases: the lists of customers, contacts, leads and
deals (page 1 at 25 and 100 rows), the customer list's filters, quick search and custom
fields, the customer detail, and the global search with common and rare words, a person's
name, phone digits and an email part. At 500,000 customers and more the time targets of
lists, detail and search are 50 ms. Then PostgreSQL's plans (EXPLAIN ANALYZE) of the
slowest queries of every search over its target (--explain-all: of every case over its
target; --explain-rep: also the rep's searches, deep list page and custom-field lists).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402
from table import pad, width  # noqa: E402 (bench/table.py)

# Targets of issue 4: (median ms, queries or None)
LIST_TARGET = (30, 10)
DETAIL_TARGET = (30, 15)
# Issue 17: every search case for every role, with customers, contacts, leads and deals.
SEARCH_TARGET = (20, None)
# Issue 5: a list filtered and sorted by custom fields.
CUSTOM_TARGET = (40, 10)
# Issue 17, a million customers: lists, detail and search within 50 ms; the same
# query counts as at 100k.
LARGE = 500_000
LARGE_MS = 50

PEOPLE = [("rep", "wangfang"), ("manager", "zhangwei"), ("admin", "admin")]


@dataclass
class Case:
    label: str
    who: str
    url: str
    # (median ms, queries); None = not a target of this case
    target: tuple[int | None, int | None]
    kind: str = "list"


@dataclass
class Result:
    case: Case
    median: float
    p90: float
    queries: int
    status: int

    @property
    def ok(self) -> bool:
        ms, queries = self.case.target
        return (
            self.status == 200
            and (ms is None or self.median <= ms)
            and (queries is None or self.queries <= queries)
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument(
        "--explain-rep",
        action="store_true",
        help="Also the plans of all the rep's searches, deep list page and custom-field "
        "lists (the searches over their target get theirs in any case).",
    )
    parser.add_argument(
        "--explain-all",
        action="store_true",
        help="The plans of the slowest queries of every case over its target, not only "
        "the searches'.",
    )
    parser.add_argument("--only", default="", help="Only cases whose label contains this.")
    return parser.parse_args(argv)


def scaled(target: tuple[int | None, int | None], large: bool):
    """A target at a million customers: LARGE_MS for lists, detail and search."""
    ms, queries = target
    if large and ms is not None:
        ms = max(ms, LARGE_MS)
    return (ms, queries)


def build_cases(users, large: bool = False) -> list[Case]:
    from django.db.models import Count
    from django.urls import NoReverseMatch, reverse
    from loading import short_name  # bench/loading.py

    from accounts.phones import format_phone
    from crm.models import Activity, Contact, Customer, DictionaryItem

    list_target = scaled(LIST_TARGET, large)
    detail_target = scaled(DETAIL_TARGET, large)
    search_target = scaled(SEARCH_TARGET, large)
    custom_target = scaled(CUSTOM_TARGET, large)

    level_a = DictionaryItem.objects.of("customer_level").get(code="a").pk
    try:
        reverse("customers:detail", args=[1])
        has_detail = True
    except NoReverseMatch:
        has_detail = False
        print("(no customer detail page yet: skipping it)")
    cases: list[Case] = []
    for who, user in users.items():
        visible = Customer.objects.visible_to(user)
        owned = visible.filter(owner=user) if who == "rep" else visible.exclude(owner=None)
        busiest_owner = (
            owned.values("owner").annotate(n=Count("pk")).order_by("-n").first()["owner"]
        )
        owner = "me" if who == "rep" else str(busiest_owner)
        lists = "/customers/"
        cases += [
            Case("customer list, page 1", who, lists, list_target),
            Case("customer list, page 1, 100 per page", who, f"{lists}?per_page=100", list_target),
            Case("contact list, page 1, 100 per page", who, "/contacts/?per_page=100", list_target),
            Case("lead list, page 1", who, "/leads/", list_target),
            Case("lead list, page 1, 100 per page", who, "/leads/?per_page=100", list_target),
            Case("deal list, page 1", who, "/deals/", list_target),
            Case("deal list, page 1, 100 per page", who, "/deals/?per_page=100", list_target),
            Case("customer list, page 500", who, f"{lists}?page=500", list_target),
            Case(
                "customer list, level A + owner",
                who,
                f"{lists}?level={level_a}&owner={owner}",
                list_target,
            ),
            Case("customer list, quick search 恒信", who, f"{lists}?q=恒信", list_target),
            Case("customer list, quick search 上海", who, f"{lists}?q=上海", list_target),
            Case("customer list, quick search 科技", who, f"{lists}?q=科技", list_target),
            Case(
                "custom: 合作意向 强烈, by 年营业额 desc",
                who,
                f"{lists}?cf_cooperation_intent=strong&sort=-cf_annual_revenue",
                custom_target,
                "custom",
            ),
            Case(
                "custom: 员工人数 100–500, by 年营业额",
                who,
                f"{lists}?cf_staff_count_min=100&cf_staff_count_max=500&sort=cf_annual_revenue",
                custom_target,
                "custom",
            ),
            Case(
                "custom: by 年营业额 desc, page 200",
                who,
                f"{lists}?sort=-cf_annual_revenue&page=200",
                custom_target,
                "custom",
            ),
        ]
        if has_detail:
            busiest = (
                Activity.objects.filter(customer__in=owned.values("pk"))
                .values("customer")
                .annotate(n=Count("pk"))
                .order_by("-n")
                .first()
            )
            url = reverse("customers:detail", args=[busiest["customer"]])
            label = f"customer detail, {busiest['n']} activities"
            cases.append(Case(label, who, url, detail_target, "detail"))
            # The History tab: its rows filtered by what the reader may see of each
            # record type (crm.services.history.readable_changes).
            url = reverse("customers:history", args=[busiest["customer"]])
            cases.append(Case("customer history tab", who, url, detail_target, "detail"))
        sample = owned.order_by("pk").first()
        contact = (
            Contact.objects.filter(customer__in=owned.values("pk"))
            .exclude(mobile="")
            .order_by("pk")
            .first()
        )
        searches = [
            # Words in many names of all four record types (customers, leads' companies,
            # deal titles naming their customer): the search stops at its cap.
            ("search: common word", "上海"),
            ("search: common word", "科技"),
            # A company's brand and trade (鼎航培训): a handful of customers, and their
            # deals and leads.
            ("search: rare word", short_name(sample.name)),
            ("search: person, 2 characters", "王伟"),
            ("search: phone, last 4 digits", contact.mobile[-4:]),
            ("search: full phone, spaced", format_phone(contact.mobile)),
            ("search: email part", "sales@"),
        ]
        for label, q in searches:
            url = f"/search/?{urlencode({'q': q})}"
            cases.append(Case(f"{label} ({q})", who, url, search_target, "search"))
    return cases


def match_counts(user, cases: list[Case]) -> None:
    """What each search finds, per record type (what the page shows: over 200 is
    "200+"), for `user`."""
    from urllib.parse import parse_qs, urlsplit

    from crm.services.search import search

    seen = set()
    for case in cases:
        if case.kind != "search":
            continue
        q = parse_qs(urlsplit(case.url).query)["q"][0]
        if q in seen:
            continue
        seen.add(q)
        groups = search(user, q).groups
        found = ", ".join(f"{g.key} {g.count_display}" for g in groups)
        print(f"  {pad(q, 18)} {found}")


def measure(client, case: Case, repeat: int, warmup: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = None
    for _ in range(warmup):
        response = client.get(case.url)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(case.url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(case.url)
    times.sort()
    p90 = times[min(len(times) - 1, max(0, round(len(times) * 0.9) - 1))]
    return Result(case, statistics.median(times), p90, len(queries), response.status_code)


def explain_slowest(client, case: Case, top: int = 2) -> None:
    """PostgreSQL's plans (EXPLAIN ANALYZE) of the `top` slowest queries of one request,
    slowest by PostgreSQL's own planning + execution time (the time Django records
    includes waiting for a CPU on a busy machine)."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(case.url)
    plans = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}")
            lines = [row[0] for row in cursor.fetchall()]
        ms = sum(
            float(m.group(1))
            for line in lines
            if (m := re.match(r"\s*(?:Planning|Execution) Time: ([\d.]+) ms", line))
        )
        plans.append((ms, sql, lines))
    plans.sort(key=lambda p: -p[0])
    total = sum(p[0] for p in plans)
    print(
        f"\n--- {case.label} · {case.who}: {len(queries)} queries, {total:.1f} ms in "
        f"PostgreSQL (planning + execution); the {min(top, len(plans))} slowest:"
    )
    for ms, sql, lines in plans[:top]:
        plan = "\n".join("      " + line for line in lines)
        print(f"    {ms:.1f} ms: {sql[:300]}{'…' if len(sql) > 300 else ''}\n{plan}")


def explain(client, case: Case, tables: tuple[str, ...]) -> None:
    """EXPLAIN ANALYZE the queries of one request that read `tables`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(case.url)
    for query in queries:
        sql = query["sql"]
        main_table = sql.split(" FROM ", 1)[1].split()[0].strip('"') if " FROM " in sql else ""
        if main_table not in tables and not any(f'FROM "{t}"' in sql for t in tables):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}")
            plan = "\n".join("    " + row[0] for row in cursor.fetchall())
        print(f"\n--- {case.label} · {case.who}\n    {sql[:160]}…\n{plan}")


def main(argv=None) -> None:
    args = parse_args(argv)
    django.setup()
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from crm.models import Activity, Contact, Customer
    from pipelines.models import Deal, Lead

    if connection.vendor != "postgresql":
        sys.exit("bench/run.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    users = {
        who: User.objects.select_related("role", "department").get(username=username)
        for who, username in PEOPLE
    }
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    customers = Customer.objects.count()
    large = customers >= LARGE
    print(
        f"PostgreSQL {version}; {customers:,} customers, "
        f"{Contact.objects.count():,} contacts, {Activity.objects.count():,} activities, "
        f"{Lead.objects.count():,} leads, {Deal.objects.count():,} deals; "
        f"median of {args.repeat} after {args.warmup} warm-up requests"
        + (f"; targets at this size: lists, detail, search <= {LARGE_MS} ms" if large else "")
    )
    for who, user in users.items():
        scope = user.role.data_scope if user.role else "-"
        print(f"  {who:<8} {user.username:<9} scope {scope}")
    clients = {}
    for who, user in users.items():
        client = Client()
        client.force_login(user)
        clients[who] = client
    cases = [c for c in build_cases(users, large) if args.only in c.label]
    print("\nwhat the searches find (admin):")
    match_counts(users["admin"], cases)
    print()
    columns = 48
    header = f"{pad('case', columns)} {'who':<8} {'median':>7} {'p90':>7} {'queries':>7}  target"
    print(header)
    print("-" * width(header))
    results = []
    for case in cases:
        result = measure(clients[case.who], case, args.repeat, args.warmup)
        results.append(result)
        ms, queries = case.target
        target = ", ".join(
            ([f"<= {ms} ms"] if ms else []) + ([f"<= {queries} q"] if queries else [])
        )
        if result.ok:
            flag = "ok"
        elif result.status != 200:
            flag = f"HTTP {result.status}"
        else:
            flag = "MISSED"
        times = f"{result.median:>5.1f}ms {result.p90:>5.1f}ms {result.queries:>7}"
        print(f"{pad(case.label, columns)} {case.who:<8} {times}  {target:<18} {flag}")
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} cases meet their target")
    if args.no_explain:
        return
    missed = [
        r for r in failed if r.status == 200 and (args.explain_all or r.case.kind == "search")
    ]
    if missed:
        print(
            "\nPostgreSQL plans (EXPLAIN ANALYZE) of the slowest queries of the "
            + ("cases" if args.explain_all else "search cases")
            + " over their target:"
        )
        for result in missed:
            explain_slowest(clients[result.case.who], result.case)
    if args.explain_rep:
        print(
            "\nPostgreSQL plans (EXPLAIN ANALYZE) of the rep's searches, deep list page and "
            "custom-field lists:"
        )
        for case in cases:
            if case.who != "rep":
                continue
            if case.kind == "search":
                explain(
                    clients[case.who],
                    case,
                    ("crm_customer", "crm_contact", "pipelines_lead", "pipelines_deal"),
                )
            elif case.label == "customer list, page 500" or case.kind == "custom":
                explain(clients[case.who], case, ("crm_customer",))


if __name__ == "__main__":
    main()
