"""Load test: many reps signed in at once against gunicorn + PostgreSQL (issue 17).

One command: picks each rep's customers and search terms from the database, starts
gunicorn (production-like settings, `bench/load_settings.py`), runs locust
(bench/load_locust.py) at increasing user counts, checks every follow-up it logged was
stored, prints requests/s, p50/p95/p99 per page and errors, and stops gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/load.py \
        [--steps 10,25,50,75,100] [--step-duration 40] | [--users 60 --duration 120] \
        [--workers 4] [--worker-class sync] [--think 1,2] [--profile]

Exit status 1 when a request failed (any status but 2xx/3xx, or a redirect to the
sign-in page) or a follow-up the server accepted is not in the database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.load_settings")

import django  # noqa: E402

OUT = ROOT / "var" / "bench"
# What gunicorn loads from bench/ (copied into a --source snapshot).
SERVER_FILES = ("load_settings.py", "load_wsgi.py")
TARGET_RPS = 80
TARGET_P95_MS = 500
# Follow-up texts as reps write them; each gets the run's marker appended.
TEXTS = [
    "电话沟通，客户对新报价有兴趣，下周安排演示。",
    "拜访客户，了解了采购流程，需要提供资质文件。",
    "微信跟进，客户表示预算在审批中。",
    "客户来电询问交货周期，已答复。",
    "发送了产品资料和案例，约定周五再联系。",
    "会议讨论合同条款，法务还在审核。",
    "客户暂时没有需求，三个月后回访。",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="cache (sessions are cached_db) and broker, as in production; 'none': "
        "per-process memory cache",
    )
    parser.add_argument("--users", type=int, help="one run at this many users (no steps)")
    parser.add_argument("--duration", type=float, default=120, help="seconds, with --users")
    parser.add_argument(
        "--steps",
        default="10,30,60,90,120",
        help="user counts to step through to find saturation (default %(default)s)",
    )
    parser.add_argument("--step-duration", type=float, default=30, help="measured, per step")
    parser.add_argument(
        "--settle", type=float, default=5, help="seconds after the ramp, unmeasured"
    )
    parser.add_argument("--spawn-rate", type=float, default=10, help="new users per second")
    parser.add_argument("--think", default="0.5,1.5", help="seconds between actions: min,max")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", help="sync or gthread")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--source",
        default=str(ROOT),
        help="the code gunicorn serves (default: this checkout), e.g. a snapshot made with "
        "`git archive HEAD | tar -x -C DIR` while the checkout is being edited",
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--migrate", action="store_true", help="apply unapplied migrations first (else: stop)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more step at the last user count with py-spy sampling the workers; "
        "prints where each page's time goes",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    args.think = tuple(float(x) for x in args.think.split(","))
    if args.users:
        args.steps = str(args.users)
        args.step_duration = args.duration
    return args


# --- The plan: who signs in and what each rep looks at -----------------------------------


def build_plan(args, run_id: str) -> dict:
    """Each rep's customers (visible ones for the detail page, own ones for follow-ups)
    and realistic search terms, read before the run so the users need no lookups."""
    from django.conf import settings

    from accounts import access
    from accounts.models import User
    from crm.models import Contact, Customer, DictionaryItem
    from pipelines.models import Pipeline, PipelineKind

    rng = random.Random(args.seed)
    reps = list(
        User.objects.filter(role__name="销售代表", is_active=True)
        .select_related("role", "department")
        .order_by("pk")
    )
    if not reps:
        sys.exit("no reps (role 销售代表) in this database: fill it with bench/generate.py")
    wanted = int(args.steps.split(",")[-1])
    plan_reps = []
    pool = list(Customer.objects.filter(owner=None).values_list("pk", flat=True)[:5000])
    for user in reps[:wanted]:
        if not access.has_permission(user, "activity", "add"):
            continue
        own = list(Customer.objects.filter(owner=user).values_list("pk", "name"))
        if not own:
            continue
        sample = rng.sample(own, min(300, len(own)))
        contacts = list(
            Contact.objects.filter(customer__owner=user)
            .exclude(mobile="")
            .values_list("name", "mobile")[:400]
        )
        names = [n for _pk, n in sample]
        search = (
            [n[2:6] for n in names[:20]]  # brand + industry: 恒信机械
            + [c[0] for c in contacts[:12]]  # a person: 王伟
            + [c[1][-4:] for c in contacts[12:20]]  # last digits of a mobile
            + [n[2:4] for n in names[20:28]]  # the brand alone: 恒信
        )
        plan_reps.append(
            {
                "username": user.username,
                "own": [pk for pk, _n in sample[:100]],
                # The detail page: mostly their own customers, some from the pool.
                "customers": [pk for pk, _n in sample] + rng.sample(pool, min(60, len(pool))),
                "search": search,
                "quick": [n[2:4] for n in names[28:48]] + [n[2:6] for n in names[48:58]],
                "contact_names": [c[0] for c in contacts[20:40]] or ["王"],
            }
        )
    return {
        "run": run_id,
        "seed": args.seed,
        "password": "demo1234",
        "think": list(args.think),
        "time_zone": settings.TIME_ZONE,
        "reps": plan_reps,
        "levels": list(DictionaryItem.objects.of("customer_level").values_list("pk", flat=True)),
        "kinds": list(
            DictionaryItem.objects.of("activity_kind").active().values_list("pk", flat=True)
        ),
        "pipelines": list(
            Pipeline.objects.active()
            .filter(kind=PipelineKind.DEAL)
            .order_by("order", "pk")
            .values_list("pk", flat=True)
        ),
        "texts": TEXTS,
    }


# --- The server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(args) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.load_settings"}
    env["DATABASE_URL"] = args.database_url
    env.pop("REDIS_URL", None)
    if args.redis_url != "none":
        env["REDIS_URL"] = args.redis_url
        env["CACHE_KEY_PREFIX"] = "load"
    return env


def start_gunicorn(args, port: int, log_dir: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "bench.load_wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--timeout",
        "60",
        "--graceful-timeout",
        "20",
        "--access-logfile",
        str(log_dir / "load-access.log"),
        "--error-logfile",
        str(log_dir / "load-gunicorn.log"),
    ]
    source = Path(args.source).resolve()
    command += ["--chdir", str(source)]
    process = subprocess.Popen(command, cwd=source, env=server_env(args))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if process.poll() is not None:
                sys.exit(f"gunicorn exited ({process.returncode}): see {log_dir}/load-gunicorn.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return process
            except OSError:
                time.sleep(0.3)
        sys.exit("gunicorn did not answer /healthz within 60 s")
    except BaseException:
        stop_gunicorn(process)
        raise


def stop_gunicorn(process: subprocess.Popen) -> int | None:
    """SIGTERM: gunicorn lets each worker finish its request, then exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def redis_client(args):
    if args.redis_url == "none":
        return None
    import redis

    return redis.Redis.from_url(args.redis_url)


# --- Checking the writes ----------------------------------------------------------------

MARKER = re.compile(r"\[load (\S+) (\d+-\d+)\]")


def stored_markers(run_id: str) -> Counter:
    from crm.models import Activity

    found = Counter()
    rows = Activity.objects.filter(content__contains=f"[load {run_id} ").values_list(
        "content", flat=True
    )
    for content in rows:
        match = MARKER.search(content)
        if match and match.group(1) == run_id:
            found[f"[load {run_id} {match.group(2)}]"] += 1
    return found


def check_writes(result: dict, run_id: str) -> dict:
    stored = stored_markers(run_id)
    posted, failed, sent = set(result["posted"]), set(result["post_failed"]), set(result["sent"])
    return {
        "sent": len(sent),
        "posted": len(posted),
        "refused": len(failed),
        "stored": sum(stored.values()),
        "missing": sorted(posted - set(stored)),  # accepted, not in the database
        "twice": sorted(m for m, n in stored.items() if n > 1),
        "stored_though_refused": sorted(failed & set(stored)),
        "unanswered_stored": sorted((sent - posted - failed) & set(stored)),
    }


# --- Reporting ---------------------------------------------------------------------------


def verdict(step: dict) -> bool:
    return step["failures"] == 0 and all(p["p95"] < TARGET_P95_MS for p in step["pages"].values())


def print_pages(step: dict) -> None:
    """Client-side latencies, and what each request cost the server (X-Load-Server from
    bench/load_wsgi.py): the worker's CPU, the statements and their time."""
    pages = step["pages"]
    cpu_total = sum(p["requests"] * p.get("server", {}).get("cpu_ms", 0) for p in pages.values())
    print(
        f"{'page':28} {'req':>5} {'req/s':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6} "
        f"{'fails':>5} | {'cpu ms':>6} {'queries':>7} {'sql ms':>6} {'cpu share':>9}"
    )
    for name, p in sorted(pages.items(), key=lambda kv: -kv[1]["p95"]):
        server = p.get("server")
        cost = (
            f"{server['cpu_ms']:6.1f} {server['queries']:7.1f} {server['sql_ms']:6.1f} "
            f"{p['requests'] * server['cpu_ms'] / max(1.0, cpu_total):9.0%}"
            if server
            else ""
        )
        print(
            f"{name:28} {p['requests']:5d} {p['rps']:6.1f} {p['p50']:6.0f} {p['p95']:6.0f} "
            f"{p['p99']:6.0f} {p['max']:6.0f} {p['failures']:5d} | {cost}"
        )
    print(
        "(cpu ms: the gunicorn worker's CPU per request, mean; queries and sql ms: statements "
        "per request and their wall time, mean; cpu share: of all the workers' request CPU)"
    )


def print_report(args, result: dict, writes: dict, sign_in_ms: list[float]) -> bool:
    steps = [s for s in result["steps"] if not s["profiled"]]
    print()
    print(
        f"gunicorn {args.workers} {args.worker_class} workers"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + f"; think time {args.think[0]:g}–{args.think[1]:g} s; {len(result['steps'])} step(s) "
        f"of {args.step_duration:g} s measured after all users signed in "
        f"and {args.settle:g} s settling"
    )
    print()
    print(
        "users  req/s    p50    p95    p99  fails | cores: gunicorn postgres locust others"
        " | CPU ms/req: gunicorn postgres locust | load1  within target"
    )
    for s in result["steps"]:
        c, n = s["cores"], max(1, s["requests"])
        ms = {k: c[k] * s["seconds"] * 1000 / n for k in ("gunicorn", "postgres", "locust")}
        s["cpu_ms"] = ms
        print(
            f"{s['users']:5d} {s['rps']:6.1f} {s['p50']:6.0f} {s['p95']:6.0f} {s['p99']:6.0f} "
            f"{s['failures']:6d} |          {c['gunicorn']:5.2f}    {c['postgres']:5.2f}  "
            f"{c['locust']:5.2f}  {c['others']:5.2f} |           {ms['gunicorn']:5.1f}    "
            f"{ms['postgres']:5.1f}  {ms['locust']:5.1f} | {s['loadavg'][0]:5.2f}  "
            + ("yes" if verdict(s) else "no")
            + ("  (py-spy attached)" if s["profiled"] else "")
        )
    best = max(steps, key=lambda s: s["rps"])
    within = [s for s in steps if verdict(s)]
    best_ok = max(within, key=lambda s: s["rps"]) if within else None
    print()
    print(
        f"requests/s at saturation (highest of any step):        {best['rps']:6.1f}  "
        f"({best['users']} users)"
    )
    per_request = sum(best["cpu_ms"].values())
    cpus = best.get("cpus") or 2
    print(
        f"CPU per request at that step: {per_request:.1f} ms (gunicorn + PostgreSQL + locust): "
        f"{cpus} idle cores would serve at most ~{cpus * 1000 / max(0.1, per_request):.0f} req/s"
    )
    if best_ok:
        print(
            f"requests/s at saturation within target (p95 < {TARGET_P95_MS} ms, no errors): "
            f"{best_ok['rps']:6.1f}  ({best_ok['users']} users)"
        )
    else:
        print(f"requests/s within target (p95 < {TARGET_P95_MS} ms, no errors): no step met it")
    shown = best
    print()
    print(f"per page at the saturated step ({shown['users']} users, {shown['seconds']:.0f} s):")
    print_pages(shown)
    if sign_in_ms:
        ordered = sorted(sign_in_ms)
        pct = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        print(
            f"\nsign-ins (during the ramps, not in the steps): {result['signed_in']} signed in, "
            f"{result['sign_in_failed']} refused; page+post requests p50 {pct(0.5):.0f} ms, "
            f"p95 {pct(0.95):.0f} ms"
        )
    errors = result["errors"]
    print(f"\nerrors over the whole run (ramps included): {len(errors)}")
    for (name, status, error), n in Counter(
        (e["name"], e["status"], e["error"][:120]) for e in errors
    ).most_common(10):
        print(f"  {n:5d}  {name}  {status}  {error}")
    print(
        f"\nfollow-ups: {writes['sent']} sent, {writes['posted']} accepted, "
        f"{writes['refused']} refused, "
        f"{writes['stored']} stored; accepted but missing: {len(writes['missing'])}, "
        f"stored twice: {len(writes['twice'])}, stored though refused: "
        f"{len(writes['stored_though_refused'])}"
    )
    for key in ("missing", "twice", "stored_though_refused"):
        if writes[key]:
            print(f"  {key}: {writes[key][:10]}")
    ok = not errors and not writes["missing"] and not writes["twice"]
    targets = [
        (f">= {TARGET_RPS} requests/s at saturation", best["rps"] >= TARGET_RPS),
        (
            f"p95 of every page < {TARGET_P95_MS} ms at that load",
            all(p["p95"] < TARGET_P95_MS for p in best["pages"].values()),
        ),
        ("no errors", not errors),
        ("every write stored", not writes["missing"] and not writes["twice"]),
    ]
    print()
    for label, met in targets:
        print(f"  {label:45} {'ok' if met else 'MISSED'}")
    return ok


# --- Profile: where the workers' time goes, by page ----------------------------------------

PARTS = [
    ("SQL: waiting on PostgreSQL", ("_execute (django/db/backends/utils.py", "psycopg2")),
    ("ORM: compiling SQL", ("django/db/models/sql/compiler.py",)),
    ("ORM: rows to objects", ("django/db/models/query.py", "django/db/models/base.py")),
    ("cache/sessions (Redis)", ("redis/",)),
    ("templates", ("django/template/",)),
    ("forms", ("django/forms/",)),
    ("translation", ("django/utils/translation/",)),
]
APP_PACKAGES = (
    "crm/",
    "accounts/",
    "pipelines/",
    "reports/",
    "imports/",
    "automation/",
    "integrations/",
)


def _frame_file(frame: str) -> str:
    return frame.rpartition(" (")[2]


def summarise_profile(path: Path, top: int = 8) -> str:
    """py-spy raw output (one collapsed stack and its sample count per line), each stack
    tagged with its page by bench/load_wsgi.py (a frame `page__<name>`)."""
    if not path.exists():
        return f"(no profile at {path})"
    by_page: Counter = Counter()
    parts: dict[str, Counter] = defaultdict(Counter)
    app_fns: dict[str, Counter] = defaultdict(Counter)
    leaf_fns: dict[str, Counter] = defaultdict(Counter)
    total = other = 0
    gunicorn: Counter = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        page = next((f.split(" ")[0][6:] for f in frames if f.startswith("page__")), None)
        if page is None:
            if "Worker.run" in stack or "Worker.accept" in stack or "Worker.handle" in stack:
                gunicorn[frames[-1].split(" (")[0]] += n  # waiting, reading, writing, closing
            else:
                other += n  # the master, helper threads
            continue
        by_page[page] += n
        tail = frames[-8:]
        part = next(
            (label for label, keys in PARTS if any(k in f for f in tail for k in keys)),
            None,
        ) or next(
            (label for label, keys in PARTS if any(k in f for f in frames for k in keys)),
            "other Python",
        )
        parts[page][part] += n
        own = [f for f in frames if _frame_file(f).startswith(APP_PACKAGES)]
        app_fns[page][own[-1] if own else "(no application frame)"] += n
        leaf_fns[page][frames[-1]] += n
    busy = sum(by_page.values())
    workers = busy + sum(gunicorn.values())
    lines = [
        f"py-spy: wall time of the workers (50 samples/s each, waits included: on PostgreSQL, "
        f"Redis, and for a core when the machine is busy): {workers} samples, "
        f"{busy / max(1, workers):.0%} in Django (by page below), the rest in gunicorn: "
        + ", ".join(f"{fn} {m / max(1, workers):.0%}" for fn, m in gunicorn.most_common(4))
    ]
    for page, n in by_page.most_common():
        lines.append(f"\n{page}: {n / max(1, busy):.0%} of the samples in requests")
        for label, m in parts[page].most_common():
            lines.append(f"    {m / n:5.0%}  {label}")
        lines.append("  innermost application frame:")
        for fn, m in app_fns[page].most_common(top):
            lines.append(f"    {m / n:5.0%}  {fn}")
        lines.append("  innermost frame:")
        for fn, m in leaf_fns[page].most_common(top // 2):
            lines.append(f"    {m / n:5.0%}  {fn}")
    return "\n".join(lines)


def unapplied_migrations(connection) -> list[str]:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, _backwards in plan]


def main(argv=None) -> None:
    args = parse_args(argv)
    source = Path(args.source).resolve()
    if source != ROOT:
        # This process reads the database with the served code's models too.
        for name in SERVER_FILES:
            shutil.copy(ROOT / "bench" / name, source / "bench" / name)
        sys.path.insert(0, str(source))
        os.chdir(source)  # Celery's Django fix-up puts the working directory first on the path
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)  # this process only reads the database
    django.setup()
    from django.db import connection

    from crm.events import has_subscribers

    OUT.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d%H%M%S")
    plan = build_plan(args, run_id)
    plan_path = OUT / "load-plan.json"
    plan_path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
        cursor.execute(
            "SELECT (SELECT count(*) FROM crm_customer), (SELECT count(*) FROM crm_contact),"
            " (SELECT count(*) FROM pipelines_deal), (SELECT count(*) FROM pipelines_lead)"
        )
        customers, contacts, deals, leads = cursor.fetchone()
    pending = unapplied_migrations(connection)
    if pending and args.migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=1)
    elif pending:
        sys.exit(
            "the database lacks migrations the code has (pages would fail): "
            + ", ".join(pending)
            + "\nrun with --migrate (or migrate a copy: "
            "CREATE DATABASE crm_load TEMPLATE crm_bench)"
        )
    listening = has_subscribers()
    connection.close()
    print(
        f"{pg}; {customers:,} customers, {contacts:,} contacts, {deals:,} deals, {leads:,} leads; "
        f"{len(plan['reps'])} reps; run {run_id}"
    )
    print(
        "record events: "
        + (
            "a subscriber listens (an active rule): each write queues a delivery message"
            if listening
            else "no subscriber listening (no active rule): written delivered, no message"
        )
    )
    r = redis_client(args)
    if r is not None:
        r.flushdb()  # this run's own database: sessions, caches, queued messages
    # Stopped by a signal: unwind (the finally below stops gunicorn and the load generator).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = args.port or free_port()
    server = start_gunicorn(args, port, OUT)
    print(f"gunicorn pid {server.pid} on 127.0.0.1:{port}; load average {os.getloadavg()[0]:.2f}")
    result_path = OUT / f"load-{run_id}.json"
    profile_path = OUT / f"load-{run_id}.pyspy.txt"
    command = [
        sys.executable,
        str(ROOT / "bench" / "load_locust.py"),
        "--plan",
        str(plan_path),
        "--host",
        f"http://127.0.0.1:{port}",
        "--steps",
        args.steps,
        "--step-duration",
        str(args.step_duration),
        "--settle",
        str(args.settle),
        "--spawn-rate",
        str(args.spawn_rate),
        "--server-pid",
        str(server.pid),
        "--out",
        str(result_path),
        "--database",
        connection.settings_dict["NAME"],
    ]
    if args.profile:
        command += ["--profile", str(profile_path)]
    try:
        locust_rc = subprocess.call(command, cwd=ROOT)
    finally:
        rc = stop_gunicorn(server)
    print(f"gunicorn stopped (exit {rc})")
    if locust_rc != 0 or not result_path.exists():
        sys.exit(f"the load generator failed ({locust_rc})")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    queued = r.llen("celery") if r is not None else 0
    if r is not None:
        r.flushdb()
    writes = check_writes(result, run_id)
    ok = print_report(args, result, writes, result["sign_in_ms"])
    if listening or queued:
        print(f"delivery messages left queued (no worker ran): {queued}")
    if args.profile:
        print("\n--- profile of the last step (py-spy on all workers) ---")
        print(summarise_profile(profile_path))
    print(f"\nraw results: {result_path}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
