#!/usr/bin/env python
"""Time and peak memory of one list export: the customers of a bench database (see
generate.py) as CSV or Excel, as the background export writes them (crm.exports: the
columns, the rows read in chunks, the file written to a temporary file).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench \\
        .venv/bin/python bench/exports.py --format xlsx --rows 100000 [--writer openpyxl]
    # ... --baseline: django-import-export's export of the same rows, for comparison

Each run is one process, so its peak resident memory (ru_maxrss) is the export's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("csv", "xlsx"), default="xlsx")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--user", default="admin", help="who exports (scope and fields)")
    parser.add_argument(
        "--baseline", action="store_true", help="django-import-export's export instead"
    )
    args = parser.parse_args()
    django.setup()

    from django.utils import translation

    from accounts.models import User
    from crm import exports
    from crm.models import Customer

    user = User.objects.select_related("role", "department").get(username=args.user)
    translation.activate("zh-hans")
    before = peak_mb()
    started, cpu = time.perf_counter(), cpu_seconds()
    queryset = Customer.objects.exportable_by(user).order_by("-created_at", "-pk")
    with tempfile.TemporaryFile() as out:
        if args.baseline:
            rows = _baseline(queryset[: args.rows], args.format, out)
        else:
            written = exports.write_file(
                out,
                args.format,
                exports.columns(user, "customer"),
                exports.rows_of(queryset, limit=args.rows),
                title="客户",
                limit=args.rows,
            )
            rows = written.rows
        size = out.tell()
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(
        f"{'baseline ' if args.baseline else ''}{args.format}: {rows:,} rows in {elapsed:.1f} s"
        f" ({rows / elapsed:,.0f} rows/s; CPU {cpu:.1f} s), {size / 1e6:.1f} MB file, peak RSS"
        f" {peak_mb():.0f} MB (after Django set up: {before:.0f} MB)"
    )


def _baseline(queryset, fmt: str, out) -> int:
    """django-import-export's ModelResource over the same fields, exported as the
    admin's export does (a tablib Dataset, then the whole file in memory)."""
    from import_export import resources

    from crm.models import Customer

    class CustomerResource(resources.ModelResource):
        class Meta:
            model = Customer
            fields = (
                "name", "type__label", "level__label", "source__label", "industry__label",
                "owner__name", "phone", "email", "address", "website", "created_at",
                "last_activity_at", "next_follow_up_at",
            )  # fmt: skip

    dataset = CustomerResource().export(
        queryset=queryset.select_related("type", "level", "source", "industry", "owner")
    )
    out.write(dataset.export(fmt) if fmt == "xlsx" else dataset.export(fmt).encode())
    return len(dataset)


if __name__ == "__main__":
    main()
