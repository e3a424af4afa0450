#!/usr/bin/env python
"""Import and export throughput (issue: imports): our import engine against a plain
django-import-export ModelResource on the same customer file, and our XLSX export
against the ModelResource's export, each case in a fresh process (its peak memory is
its own).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_benchimp env -u REDIS_URL \\
        .venv/bin/python bench/imports.py [--rows 100000] [--cases ours-csv,ie-fast-csv]
    # (without REDIS_URL: the runner's progress keys, imports:progress:<job id>, would
    # meet other databases' jobs in a shared Redis)
    # the profile of one case (cProfile, top 25 by cumulative time):
    ... bench/imports.py --rows 20000 --cases ours-csv --profile

The file (var/bench/customers-<rows>-<seed>.csv and .xlsx, from one seeded Random):
客户名称, 手机号 (a number in the XLSX), 邮箱, 客户等级 (a customer_level label), 地址 and
three custom fields (法人代表 text, 成立日期 date, 注册资本 money). 5% of its phones belong
to customers already in the database and ~0.1% repeat an earlier row's phone: matched on
the phone, they are skipped. Before each import case the customers (and their history,
and the import jobs) are emptied and the 5% re-created, so every case starts alike.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

DATA_DIR = ROOT / "var" / "bench"
HEADERS = ["客户名称", "手机号", "邮箱", "客户等级", "地址", "法人代表", "成立日期", "注册资本"]
# (key, label, type) of the custom fields the file fills.
CUSTOM_FIELDS = [
    ("legal_rep", "法人代表", "text"),
    ("founded_on", "成立日期", "date"),
    ("registered_capital", "注册资本", "money"),
]
IMPORTER, OWNER = "admin", "wangfang"
IMPORT_CASES = [
    "ours-csv",
    "ours-xlsx",
    "ie-default-csv",
    "ie-default-xlsx",
    "ie-fast-csv",
    "ie-fast-xlsx",
]
EXPORT_CASES = ["export-ours", "export-ie"]
# Not run unless named: the fast mode with the level lookups memoised (a widget of our own).
EXTRA_CASES = ["ie-cached-csv", "ie-cached-xlsx"]
# The ModelResource's fields: those the file fills, and those only the export writes.
IMPORT_FIELDS = ("name", "phone", "email", "level", "address", *(k for k, *_ in CUSTOM_FIELDS))
EXPORT_FIELDS = ("owner", "type", "source", "industry", "website", "created_at")
EXPORT_FIELDS += ("last_activity_at", "next_follow_up_at")
# django-import-export's options per case: its defaults, and its fastest bulk mode.
IE_MODES = {
    "default": {},
    "fast": {
        "use_bulk": True,
        "batch_size": 1000,
        "skip_diff": True,
        "force_init_instance": True,
    },
}
IE_MODES["cached"] = IE_MODES["fast"]


# --- The data -----------------------------------------------------------------------------


def make_rows(n: int, seed: int, levels: list[str]) -> tuple[list[list], list[int]]:
    """The file's rows (phones as digit strings, dates, Decimals or None) and the indexes
    of the rows whose phone is already in the database."""
    from crm import demo_data

    rng = random.Random(seed)
    phones: set[str] = set()
    rows = []
    while len(rows) < n:
        phone = demo_data.mobile(rng)[3:]  # 13912345678
        if phone in phones:
            continue
        phones.add(phone)
        company = demo_data.make_company(rng)
        capital = Decimal(rng.randrange(10, 50_000) * 1000) if rng.random() < 0.8 else None
        if capital is not None and rng.random() < 0.2:
            capital += Decimal(rng.randrange(1, 100)) / 100
        rows.append(
            [
                company.name,
                phone,
                demo_data.email(rng, domain=company.domain) if rng.random() < 0.9 else "",
                rng.choice(levels),
                demo_data.address(rng, company.city),
                demo_data.person_name(rng) if rng.random() < 0.9 else "",
                date(1990, 1, 1) + timedelta(days=rng.randrange(12_000)),
                capital,
            ]
        )
    duplicates = set(rng.sample(range(1, n), max(1, n // 1000)))
    originals = [i for i in range(n) if i not in duplicates]
    existing = sorted(rng.sample(originals, n * 5 // 100))
    taken = set(existing)
    for i in sorted(duplicates):
        j = rng.randrange(i)
        while j in duplicates or j in taken:
            j = rng.randrange(i)
        rows[i][1] = rows[j][1]
    return rows, existing


def write_files(rows: list[list], stem: Path) -> tuple[Path, Path]:
    """The rows as a UTF-8 CSV with a byte-order mark and as an XLSX (phones as numbers,
    dates as dates), unless written already."""
    from openpyxl import Workbook

    csv_path, xlsx_path = stem.with_suffix(".csv"), stem.with_suffix(".xlsx")
    stem.parent.mkdir(parents=True, exist_ok=True)
    if not csv_path.exists():
        with csv_path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(HEADERS)
            for row in rows:
                writer.writerow(["" if v is None else str(v) for v in row])
    if not xlsx_path.exists():
        book = Workbook(write_only=True)
        sheet = book.create_sheet("客户")
        sheet.append(HEADERS)
        for name, phone, email, level, address, legal, founded, capital in rows:
            money = float(capital) if capital is not None else None
            sheet.append([name, int(phone), email, level, address, legal, founded, money])
        book.save(xlsx_path)
    return csv_path, xlsx_path


def prepare() -> None:
    """The demo people and the three custom fields (once)."""
    from accounts.demo import seed_organisation
    from crm.models import CustomField

    seed_organisation()
    for order, (key, label, kind) in enumerate(CUSTOM_FIELDS):
        if not CustomField.objects.filter(record_type="customer", key=key).exists():
            field = CustomField(
                record_type="customer", key=key, label=label, field_type=kind, order=order
            )
            field.full_clean()
            field.save()


def level_items() -> dict[str, object]:
    from crm.models import DictionaryItem

    items = DictionaryItem.objects.filter(dictionary__code="customer_level", is_active=True)
    return {item.label: item for item in items.order_by("order", "id")}


def custom_values(row: list) -> dict:
    legal, founded, capital = row[5:8]
    values = {"legal_rep": legal, "founded_on": founded.isoformat()}
    if capital is not None:
        values["registered_capital"] = str(capital.quantize(Decimal("0.01")))
    return {k: v for k, v in values.items() if v}


def empty_customers() -> None:
    from django.db import connection

    from crm.models import Change, Customer
    from imports.models import ImportJob

    tables = [m._meta.db_table for m in (Customer, Change, ImportJob)]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def load_customers(rows: list[list], indexes) -> None:
    """Customers for `rows[i]` (i in `indexes`), owned by OWNER, as stored by a form."""
    from django.db import connection

    from accounts.models import User
    from crm.models import Customer

    owner = User.objects.get(username=OWNER)
    levels = level_items()
    batch = []
    for i in indexes:
        name, phone, email, level, address = rows[i][:5]
        batch.append(
            Customer(
                name=name,
                phone=f"+86{phone}",
                email=email,
                level=levels[level],
                address=address,
                owner=owner,
                created_by=owner,
                custom=custom_values(rows[i]),
            )
        )
        if len(batch) == 5000:
            Customer.objects.bulk_create(batch)
            batch = []
    Customer.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Customer._meta.db_table}")


# --- django-import-export's side ------------------------------------------------------------


def resource_classes(mode: str):
    """The ModelResource a developer would write for the file (import), and one for the
    export with the columns ours writes (less department and tags)."""
    from import_export import fields, resources, widgets

    from accounts.models import User
    from accounts.phones import normalize_phone
    from crm.models import Customer, DictionaryItem

    importer = User.objects.get(username=IMPORTER)
    owner = User.objects.get(username=OWNER)
    memo: dict = {}

    class PhoneWidget(widgets.CharWidget):
        def clean(self, value, row=None, **kwargs):
            return normalize_phone(str(value or ""))  # stored as E.164: the match key

    class LevelWidget(widgets.ForeignKeyWidget):
        def get_queryset(self, value, row, *args, **kwargs):
            return DictionaryItem.objects.filter(dictionary__code="customer_level")

        def clean(self, value, row=None, **kwargs):
            if mode != "cached":
                return super().clean(value, row, **kwargs)  # a query per row
            if value not in memo:
                memo[value] = super().clean(value, row, **kwargs)
            return memo[value]

    class CustomValue(fields.Field):
        """A custom field's value, kept in the `custom` JSON dict."""

        def __init__(self, key, column_name, widget=None, convert=str):
            super().__init__(attribute=f"cf_{key}", column_name=column_name, widget=widget)
            self.key, self.convert = key, convert

        def save(self, instance, row, is_m2m=False, **kwargs):
            value = self.clean(row, **kwargs)
            if value not in (None, ""):
                instance.custom[self.key] = self.convert(value)

        def get_value(self, instance):
            return (instance.custom or {}).get(self.key)

    def day(value) -> str:
        return value.date().isoformat() if hasattr(value, "date") else value.isoformat()

    def money(value) -> str:
        return str(Decimal(value).quantize(Decimal("0.01")))

    options = {"model": Customer, "import_id_fields": ("phone",)} | IE_MODES[mode]
    import_meta = type("Meta", (), {"fields": IMPORT_FIELDS, **options})
    export_meta = type("Meta", (), {"fields": IMPORT_FIELDS + EXPORT_FIELDS, **options})

    class CustomerImport(resources.ModelResource):
        name = fields.Field(attribute="name", column_name="客户名称", widget=widgets.CharWidget())
        phone = fields.Field(attribute="phone", column_name="手机号", widget=PhoneWidget())
        email = fields.Field(attribute="email", column_name="邮箱", widget=widgets.CharWidget())
        level = fields.Field(
            attribute="level", column_name="客户等级", widget=LevelWidget(DictionaryItem, "label")
        )
        address = fields.Field(attribute="address", column_name="地址", widget=widgets.CharWidget())
        legal_rep = CustomValue("legal_rep", "法人代表", widgets.CharWidget())
        founded_on = CustomValue("founded_on", "成立日期", widgets.DateWidget("%Y-%m-%d"), day)
        registered_capital = CustomValue(
            "registered_capital", "注册资本", widgets.DecimalWidget(), money
        )

        Meta = import_meta

        def after_init_instance(self, instance, new, row, **kwargs):
            instance._new = new
            if new:
                instance.owner, instance.created_by = owner, importer

        def skip_row(self, instance, original, row, import_validation_errors=None):
            return not instance._new  # a duplicate of a stored customer: skip it

    class CustomerExport(CustomerImport):
        owner = fields.Field(attribute="owner__name", column_name="负责人")
        type = fields.Field(attribute="type__label", column_name="客户类型")
        source = fields.Field(attribute="source__label", column_name="客户来源")
        industry = fields.Field(attribute="industry__label", column_name="行业")
        website = fields.Field(attribute="website", column_name="网站")
        created_at = fields.Field(
            attribute="created_at", column_name="创建时间", widget=widgets.DateTimeWidget()
        )
        last_activity_at = fields.Field(
            attribute="last_activity_at", column_name="最近跟进", widget=widgets.DateTimeWidget()
        )
        next_follow_up_at = fields.Field(
            attribute="next_follow_up_at", column_name="下次跟进", widget=widgets.DateTimeWidget()
        )

        Meta = export_meta

    return CustomerImport, CustomerExport


# --- One case, in its own process ------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_ours(path: Path) -> dict:
    from accounts.models import User
    from imports.models import DuplicateStrategy, ImportStatus, OwnerMode
    from imports.services import jobs, runner

    admin = User.objects.get(username=IMPORTER)
    with path.open("rb") as handle:
        # As the upload page does; the worker reads the stored file again (so here too).
        job = jobs.create_job(file=handle, name=path.name, record_type="customer", by=admin)[0]
    mapped = {job.headers[int(i)]: name for i, name in job.mapping.items()}
    if len(mapped) != len(HEADERS):
        print(f"  note: auto-mapped {len(mapped)}/{len(HEADERS)} columns: {mapped}")
    job.owner_mode, job.owner = OwnerMode.FIXED, User.objects.get(username=OWNER)
    job.duplicate_keys, job.duplicate_strategy = ["phone"], DuplicateStrategy.SKIP
    job.save()
    runner.queue(job, enqueue=False)
    runner.run(job.pk)
    job.refresh_from_db()
    if job.status != ImportStatus.DONE:
        print(f"  job #{job.pk} {job.status}: {job.message}")
    job.file.delete(save=False)
    return {"created": job.created_count, "skipped": job.skipped_count, "errors": job.error_count}


def import_ie(path: Path, mode: str) -> dict:
    import tablib

    importer, _export = resource_classes(mode)
    if path.suffix == ".csv":
        dataset = tablib.Dataset().load(path.read_text(encoding="utf-8-sig"), format="csv")
    else:
        dataset = tablib.Dataset().load(path.read_bytes(), format="xlsx")
    result = importer().import_data(dataset, dry_run=False)
    totals = result.totals
    errors = totals["error"] + totals["invalid"] + len(result.base_errors)
    for error in (result.base_errors + [e for _n, es in result.row_errors() for e in es])[:3]:
        print(f"  error: {str(error.error)[:200]}")
    return {"created": totals["new"], "skipped": totals["skip"], "errors": errors}


def export_case(case: str, rows: int) -> dict:
    from django.utils import translation

    from accounts.models import User
    from crm import exports
    from crm.models import Customer

    translation.activate("zh-hans")
    admin = User.objects.get(username=IMPORTER)
    queryset = Customer.objects.exportable_by(admin).order_by("-created_at", "-id")
    with tempfile.TemporaryFile() as out:
        if case == "export-ours":
            columns = exports.columns(admin, "customer", exports.Lookups())
            written = exports.write_file(
                out,
                "xlsx",
                columns,
                exports.rows_of(queryset, limit=rows),
                title="客户",
                limit=rows,
            )
            count = written.rows
        else:
            _import, exporter = resource_classes("default")
            related = queryset.select_related("owner", "type", "source", "industry", "level")
            dataset = exporter().export(queryset=related[:rows])
            out.write(dataset.export("xlsx"))
            count = len(dataset)
    return {"created": count}


def run_case(case: str, rows: int, seed: int, profile: bool) -> None:
    """Run one case here and print its figures as the last line (RESULT {...})."""
    django.setup()
    stem = DATA_DIR / f"customers-{rows}-{seed}"
    base = rss_mb()
    if case.startswith("export"):
        work = lambda: export_case(case, rows)  # noqa: E731
    else:
        path = stem.with_suffix("." + case.rsplit("-", 1)[1])
        if case.startswith("ours"):
            work = lambda: import_ours(path)  # noqa: E731
        else:
            work = lambda: import_ie(path, case.split("-")[1])  # noqa: E731
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    figures = work()
    seconds = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(DATA_DIR / f"{case}-{rows}.prof")  # for pstats/snakeviz
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    figures.update(case=case, rows=rows, seconds=seconds, base_mb=base, peak_mb=rss_mb("VmHWM"))
    print("RESULT " + json.dumps(figures))


# --- The main process --------------------------------------------------------------------------


def spawn(case: str, args) -> dict | None:
    command = [sys.executable, __file__, "--case", case, "--rows", str(args.rows)]
    command += ["--seed", str(args.seed)] + (["--profile"] if args.profile else [])
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    result = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
        else:
            print(line)
    if result is None:
        print(f"{case}: failed (exit {done.returncode})")
    return result


def report(results: dict[str, dict]) -> None:
    print(
        f"\n{'case':<18}{'rows':>9}{'seconds':>9}{'rows/s':>9}{'peak MB':>9}{'base MB':>9}"
        f"{'created':>9}{'skipped':>9}{'errors':>8}"
    )
    for case, r in results.items():
        print(
            f"{case:<18}{r['rows']:>9,}{r['seconds']:>9.1f}{r['rows'] / r['seconds']:>9,.0f}"
            f"{r['peak_mb']:>9.0f}{r['base_mb']:>9.0f}{r['created']:>9,}"
            f"{r.get('skipped', ''):>9}{r.get('errors', ''):>8}"
        )

    def rate(case):
        return results[case]["rows"] / results[case]["seconds"] if case in results else None

    lines = []
    for fmt in ("csv", "xlsx"):
        ours = rate(f"ours-{fmt}")
        for mode, target in (("default", 10), ("fast", 2), ("cached", None)):
            other = rate(f"ie-{mode}-{fmt}")
            if ours and other:
                ratio = ours / other
                verdict = "" if target is None else "ok" if ratio >= target else "MISSED"
                aim = "" if target is None else f"(target >= {target}x)"
                lines.append(f"ours/ie-{mode} {fmt}: {ratio:5.1f}x  {aim}  {verdict}")
        if f"ours-{fmt}" in results:
            peak = results[f"ours-{fmt}"]["peak_mb"]
            verdict = "ok" if peak < 300 else "MISSED"
            lines.append(f"ours {fmt} peak: {peak:.0f} MB  (target < 300 MB)  {verdict}")
    if "export-ours" in results and "export-ie" in results:
        ratio = results["export-ie"]["seconds"] / results["export-ours"]["seconds"]
        verdict = "ok" if ratio >= 3 else "MISSED"
        lines.append(f"export ie/ours time: {ratio:5.1f}x  (target >= 3x)  {verdict}")
    if "export-ours" in results:
        peak = results["export-ours"]["peak_mb"]
        verdict = "ok" if peak < 150 else "MISSED"
        lines.append(f"export ours peak: {peak:.0f} MB  (target < 150 MB)  {verdict}")
    print("\n" + "\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--cases", default=",".join(IMPORT_CASES + EXPORT_CASES), help="comma-separated"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each case: top 25, var/bench/*.prof"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # run one case in this process
    args = parser.parse_args(argv)
    if args.case:
        run_case(args.case, args.rows, args.seed, args.profile)
        return

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(IMPORT_CASES + EXTRA_CASES + EXPORT_CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    django.setup()
    from django.db import connection

    prepare()
    started = time.perf_counter()
    rows, existing = make_rows(args.rows, args.seed, list(level_items()))
    write_files(rows, DATA_DIR / f"customers-{args.rows}-{args.seed}")
    print(
        f"{connection.vendor} {connection.pg_version}; {args.rows:,} rows, {len(existing):,} "
        f"phones already stored, {max(1, args.rows // 1000)} repeated in the file; files "
        f"ready in {time.perf_counter() - started:.1f} s (var/bench/)"
    )
    results: dict[str, dict] = {}
    loaded = False
    for case in cases:
        if case in IMPORT_CASES + EXTRA_CASES:
            empty_customers()
            load_customers(rows, existing)
            loaded = False
        elif not loaded:
            empty_customers()
            load_customers(rows, range(len(rows)))
            loaded = True
        print(f"{case} ...", flush=True)
        result = spawn(case, args)
        if result is not None:
            results[case] = result
    report(results)


if __name__ == "__main__":
    main()
