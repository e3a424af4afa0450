#!/usr/bin/env python
"""The REST API's list pages beside the HTML lists, in one run, on the database
bench/generate.py filled:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/api.py \
        [--repeat 30] [--warmup 3] [--types customers,contacts,leads,deals]

In-process with django.test.Client and bench/settings.py (DEBUG off), for a rep
(wangfang, scope own) and the admin (scope all): each record type's list at 25 and 100
rows, as the HTML page (`?per_page=`, signed in) and as the API (`?page_size=`, with a
personal API token in the Authorization header, as a script calls it). Each case: warm-up
requests, then timed ones; the median server time, requests per second of one process
(1000 / median), and the SQL queries of one request. Target (issue 18): an API list page
within 1.5x the HTML list's server time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
# The benchmark sends hundreds of requests a minute with one token: no rate limit.
os.environ["API_RATE_LIMIT"] = ""

import django  # noqa: E402

PEOPLE = [("rep", "wangfang"), ("admin", "admin")]
TYPES = {  # API path: HTML list
    "customers": "/customers/",
    "contacts": "/contacts/",
    "leads": "/leads/",
    "deals": "/deals/",
}
RATIO_TARGET = 1.5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--types", default=",".join(TYPES))
    return parser.parse_args(argv)


def timed(get, url: str, repeat: int, warmup: int) -> tuple[float, int, int]:
    """(median ms, queries of one request, status)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = None
    for _ in range(warmup):
        response = get(url)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = get(url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        get(url)
    return statistics.median(times), len(queries), response.status_code


def main(argv=None) -> int:
    args = parse_args(argv)
    django.setup()
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from integrations.api.models import ApiToken
    from integrations.api.services import create_token

    types = [t for t in args.types.split(",") if t in TYPES]
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print(f"{version}; median of {args.repeat} after {args.warmup} warm-up requests")
    print(
        f"\n{'list':<10} {'rows':>4} {'who':<6} {'HTML ms':>8} {'q':>3} {'API ms':>8} {'q':>3}"
        f" {'API req/s':>9} {'ratio':>6}  target"
    )
    print("-" * 78)
    failed = 0
    for who, username in PEOPLE:
        user = User.objects.get(username=username)
        page = Client()
        page.force_login(user)
        _row, token = create_token(user, name="bench/api.py", expires_in_days=1, by=user)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            for kind in types:
                for rows in (25, 100):
                    html_ms, html_q, html_status = timed(
                        page.get, f"{TYPES[kind]}?per_page={rows}", args.repeat, args.warmup
                    )
                    api_ms, api_q, api_status = timed(
                        api.get, f"/api/v1/{kind}/?page_size={rows}", args.repeat, args.warmup
                    )
                    ratio = api_ms / html_ms
                    ok = html_status == api_status == 200 and ratio <= RATIO_TARGET
                    failed += not ok
                    verdict = "ok" if ok else f"MISSED (HTTP {html_status}/{api_status})"
                    print(
                        f"{kind:<10} {rows:>4} {who:<6} {html_ms:>7.1f}  {html_q:>3}"
                        f" {api_ms:>7.1f}  {api_q:>3} {1000 / api_ms:>9.0f} {ratio:>6.2f}"
                        f"  <= {RATIO_TARGET}x {verdict}"
                    )
        finally:
            ApiToken.objects.filter(user=user, name="bench/api.py").delete()
    if failed:
        print(f"\n{failed} case(s) over {RATIO_TARGET}x of the HTML list")
    else:
        print(f"\nevery API list within {RATIO_TARGET}x of the HTML list")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
