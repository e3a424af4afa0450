#!/usr/bin/env python
"""Automation with a real worker (issue 15): record events processed per second by one
worker process with 50 active rules on 100k deals, and the delay from a stage move's
commit to the commit of the task its robot makes.

    # a database of its own, filled by bench/generate.py (the bench org, its customers)
    createdb -h 127.0.0.1 -U postgres -T template0 -E UTF8 --lc-collate=C.UTF-8 \\
        --lc-ctype=C.UTF-8 crm_automation_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_automation_bench \\
        .venv/bin/python bench/generate.py --customers 100000 --contacts 100000 --activities 100000
    # then (Redis as the broker; a Redis database of its own, no other worker on it)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_automation_bench \\
        REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/automation.py \\
        [--deals 100000] [--moves 5000] [--batch 100] [--latency 200] \\
        [--cases moves,edits,latency] [--profile]

1. Loads open deals up to --deals with bench/pipelines.py's loader (COPY; three deal
   pipelines 零售 / 批发 / 大客户, their open stages, the stage history).
2. Replaces the rules named "基准·…" by 50 active rules (`rule_specs`): stage robots making
   tasks (completed when the deal leaves the stage) and notifying the manager, robots
   with conditions, stage-left robots, field-changed rules with conditions, won / lost,
   created, rules on leads, customers, contacts and tasks, and time rules (time in
   stage, no follow-up, a birthday, a weekly schedule) that no record event fires.
3. Throughput: with no worker running, --moves deals (random, seeded) each go to the
   next open stage of their pipeline through pipelines.services.move_to_stage, --batch
   moves per transaction (each event queues its delivery on commit). Then one worker
   process starts (`celery -A crm worker --pool solo`) and the script waits until every
   event since is delivered (the move's and those the rules' own writes made) and no
   scheduled work is due. Events/s = events / (last delivered_at - first delivered_at):
   the worker's own time, without its start-up ("moves").
   The same with --moves deal edits no rule watches (the title): every rule checks each
   event and none fires ("edits": the engine's cost when nothing happens).
4. Latency ("latency"): with that worker idle, --latency single moves one at a time into a stage
   whose robot makes a task (意向 → 产品介绍, 产生兴趣 → 报价, 评估 → 合同): from the
   move's commit (an on_commit hook registered first) to the task row seen by polling
   every 2 ms (its commit), and to the task's created_at (set just before it commits).
   Each move waits until the worker is idle again.

--profile runs the workers of step 3 under cProfile (this script wrapping celery's
worker_main), keeps var/bench/automation-worker-<case>.prof and prints where the time
goes (the engine's steps, cumulative; the top functions by own time); no latency then.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

EVENTS_TARGET = 500  # events/s per worker process
LATENCY_TARGET_MS = 1000  # p50, move's commit to the task's commit
PREFIX = "基准·"
DATA_DIR = ROOT / "var" / "bench"
DEAL_PIPELINES = ("零售", "批发", "大客户")
# Moves whose target stage has a robot making a task: for the latency.
TASK_MOVES = {"意向": "产品介绍", "产生兴趣": "报价", "评估": "合同"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--moves", type=int, default=5_000, help="stage moves for the throughput")
    parser.add_argument("--batch", type=int, default=100, help="moves per transaction")
    parser.add_argument("--latency", type=int, default=200, help="single moves timed")
    parser.add_argument(
        "--cases", default="moves,edits,latency", help="which of moves, edits, latency to run"
    )
    parser.add_argument("--profile", action="store_true", help="the workers under cProfile")
    parser.add_argument("--serve-worker", metavar="PROFILE", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- The rules ------------------------------------------------------------------------

MANAGER, OWNER = {"type": "manager"}, {"type": "owner"}


def task(title: str, days: int, *, leave: bool = False) -> tuple[str, dict]:
    return (
        "create_task",
        {
            "title": title,
            "assignee": OWNER,
            "due": {"amount": days, "unit": "days"},
            "working_hours": True,
            "complete_on_leave": leave,
        },
    )


def note(title: str, to: dict = MANAGER) -> tuple[str, dict]:
    return ("notify", {"title": title, "to": to})


def big(amount: int) -> list[dict]:
    return [{"field": "amount", "op": "gt", "value": str(amount)}]


def spec(name: str, *, kind: str, trigger: str, actions: list, **rest) -> dict:
    return {"name": name, "type": kind, "trigger": trigger, "actions": actions, **rest}


def rule_specs() -> list[dict]:
    """The 50 rules: (name, record type, trigger, its settings, pipeline and stage by
    name, conditions, actions)."""
    specs = []
    for p in DEAL_PIPELINES:
        specs += [
            spec(f"{p}·产品介绍任务", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="产品介绍", actions=[task("发送产品资料：{{ record }}", 1, leave=True)]),
            spec(f"{p}·报价跟进", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="报价", actions=[task("跟进报价：{{ record }}", 2, leave=True)]),
            spec(f"{p}·合同审批", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="合同", actions=[task("合同审批：{{ record }}", 3)]),
            spec(f"{p}·评估提醒经理", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="评估", actions=[note("{{ record }} 进入评估")]),
            spec(f"{p}·大额报价", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="报价", conditions=big(1_000_000), actions=[note("大额报价：{{ record }}")]),
            spec(f"{p}·准备报价", kind="deal", trigger="stage_left", pipeline=p,
                 stage="产生兴趣", conditions=big(500_000),
                 actions=[task("准备报价方案：{{ record }}", 1)]),
            spec(f"{p}·报价结束", kind="deal", trigger="stage_left", pipeline=p,
                 stage="报价", conditions=big(2_000_000),
                 actions=[note("{{ record }} 离开报价", OWNER)]),
            spec(f"{p}·退回意向", kind="deal", trigger="stage_entered", pipeline=p,
                 stage="意向", actions=[note("{{ record }} 退回意向")]),
            spec(f"{p}·报价超时", kind="deal", trigger="time_in_stage", pipeline=p,
                 stage="报价", params={"use_time_limit": True},
                 actions=[note("{{ record }} 报价超时")]),
            spec(f"{p}·赢单回款", kind="deal", trigger="deal_won", pipeline=p,
                 actions=[task("回款跟进：{{ record }}", 7)]),
            spec(f"{p}·输单复盘", kind="deal", trigger="deal_lost", pipeline=p,
                 actions=[note("输单：{{ record }}")]),
        ]  # fmt: skip
    specs += [
        spec("商机·金额调高", kind="deal", trigger="field_changed", params={"field": "amount"},
             conditions=big(1_000_000), actions=[note("{{ record }} 金额调整")]),
        spec("商机·换负责人", kind="deal", trigger="field_changed", params={"field": "owner"},
             actions=[note("{{ record }} 转给你了", OWNER)]),
        spec("商机·预计成交临近", kind="deal", trigger="field_changed",
             params={"field": "expected_close_date"},
             conditions=[{"field": "expected_close_date", "op": "within_next", "value": "7"}],
             actions=[task("确认成交：{{ record }}", 1)]),
        spec("商机·新建联系", kind="deal", trigger="created",
             actions=[task("首次联系：{{ record }}", 1)]),
        spec("商机·两周未跟进", kind="deal", trigger="no_activity", params={"days": 14},
             actions=[note("{{ record }} 两周未跟进", OWNER)]),
        spec("商机·周一盘点", kind="deal", trigger="schedule",
             params={"at": "09:00", "weekday": 1},
             conditions=[{"field": "expected_close_date", "op": "within_next", "value": "7"}],
             actions=[note("本周预计成交：{{ record }}", OWNER)]),
        spec("线索·新线索", kind="lead", trigger="created",
             actions=[task("联系新线索：{{ record }}", 1)]),
        spec("线索·已指派", kind="lead", trigger="stage_entered", pipeline="线索",
             stage="已指派负责人", actions=[task("首次联系：{{ record }}", 1, leave=True)]),
        spec("线索·联系决策人", kind="lead", trigger="stage_entered", pipeline="线索",
             stage="联系决策人", actions=[note("{{ record }} 联系决策人")]),
        spec("线索·已转化", kind="lead", trigger="lead_converted",
             actions=[note("{{ record }} 已转化")]),
        spec("线索·超时", kind="lead", trigger="time_in_stage", pipeline="线索",
             stage="收集需求", params={"use_time_limit": True},
             actions=[note("{{ record }} 超时")]),
        spec("客户·新客户", kind="customer", trigger="created",
             actions=[task("欢迎新客户：{{ record }}", 1)]),
        spec("客户·升为A级", kind="customer", trigger="field_changed",
             params={"field": "level", "to": "a"}, actions=[note("{{ record }} 升为 A 级")]),
        spec("客户·30天未跟进", kind="customer", trigger="no_activity", params={"days": 30},
             actions=[("release", {"reason": "30 天未跟进"})]),
        spec("联系人·生日", kind="contact", trigger="anniversary",
             params={"field": "birthday", "at": "09:00"},
             actions=[("send_email", {"template": PREFIX + "生日祝福", "to": "contact"})]),
        spec("联系人·新联系人", kind="contact", trigger="created",
             actions=[note("新联系人：{{ record }}", OWNER)]),
        spec("待办·合同待办", kind="task", trigger="created",
             conditions=[{"field": "title", "op": "contains", "value": "合同"}],
             actions=[note("合同待办：{{ record }}")]),
    ]  # fmt: skip
    return specs


def make_rules() -> list:
    """The bench's rules, made afresh (the runs of earlier ones go with them)."""
    from automation.actions import clean_params
    from automation.conditions import clean_conditions
    from automation.models import EmailTemplate, Rule, RuleAction
    from automation.rules import clean_trigger
    from pipelines.models import Pipeline, Stage

    Rule.objects.filter(name__startswith=PREFIX).delete()
    EmailTemplate.objects.get_or_create(
        name=PREFIX + "生日祝福",
        defaults={"subject": "{{ record }}，生日快乐", "body": "祝 {{ record }} 生日快乐！"},
    )
    pipelines = {p.name: p for p in Pipeline.objects.all()}
    rules = []
    for spec in rule_specs():
        pipeline = pipelines[spec["pipeline"]] if "pipeline" in spec else None
        stage = (
            Stage.objects.get(pipeline=pipeline, name=spec["stage"]) if "stage" in spec else None
        )
        kind = spec["type"]
        rule = Rule.objects.create(
            name=PREFIX + spec["name"],
            record_type=kind,
            trigger=spec["trigger"],
            trigger_params=clean_trigger(
                kind, spec["trigger"], spec.get("params", {}), stage=stage
            ),
            conditions=clean_conditions(kind, spec.get("conditions")),
            pipeline=pipeline,
            stage=stage,
            is_active=True,
        )
        for order, (action, params) in enumerate(spec["actions"]):
            RuleAction.objects.create(
                rule=rule, order=order, kind=action, params=clean_params(action, kind, params)
            )
        rules.append(rule)
    return rules


# --- Moves ----------------------------------------------------------------------------


def next_stages() -> dict[int, object]:
    """Each open deal stage's next open stage."""
    from itertools import pairwise

    from pipelines.models import Stage, StageKind

    by_pipeline: dict[int, list] = {}
    for stage in Stage.objects.filter(kind=StageKind.OPEN, pipeline__kind="deal").order_by(
        "pipeline", "order"
    ):
        by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
    return {a.pk: b for stages in by_pipeline.values() for a, b in pairwise(stages)}


def movable(following: dict, *, from_stages=None) -> list[tuple[int, int]]:
    """(deal id, its stage) of open deals that have what the next stage requires."""
    from pipelines.models import Deal

    qs = Deal.objects.filter(status="open", stage_id__in=list(from_stages or following))
    qs = qs.exclude(contact__isnull=True).exclude(expected_close_date__isnull=True)
    return list(qs.values_list("pk", "stage_id").order_by("pk"))


def move(deal_id: int, current: int, following: dict, by) -> bool:
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from pipelines import services
    from pipelines.models import Deal

    try:
        with transaction.atomic():
            services.move_to_stage(
                record=Deal.objects.get(pk=deal_id),
                stage=following[current],
                by=by,
                expected_stage_id=current,
            )
    except ValidationError:  # StageMoveRefused too: a required field is missing
        return False
    return True


def last_event_id() -> int:
    from crm.models import Change

    return Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def settle_events() -> int:
    """Events left undelivered by an earlier run are not this run's work."""
    from django.utils import timezone

    from crm.models import Change

    return Change.objects.filter(delivered_at__isnull=True).update(delivered_at=timezone.now())


def purge_queue() -> int:
    from crm.celery import app

    with app.connection_for_write() as conn:
        queue = app.conf.task_default_queue
        conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        return conn.default_channel.queue_purge(queue) or 0


# --- The worker -----------------------------------------------------------------------


@contextmanager
def worker_process(log: Path, profile: Path | None):
    """One `celery worker --pool solo` process on the bench's settings and broker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    if profile:
        command = [sys.executable, __file__, "--serve-worker", str(profile)]
    else:
        command = [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool", "solo",
                   "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_worker(profile: str) -> None:
    """The worker in this process, under cProfile (stats written when it stops)."""
    import cProfile

    from crm.celery import app

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        app.worker_main(
            ["worker", "--pool", "solo", "--without-gossip", "--without-mingle",
             "--loglevel", "WARNING"]
        )  # fmt: skip
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def wait_idle(since: int, *, timeout: float, poll: float = 0.2) -> None:
    """Until every event after `since` is delivered and no scheduled work is due."""
    from django.db.models import Q
    from django.utils import timezone

    from automation.models import ScheduledAction
    from crm.models import Change

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        undelivered = Change.objects.filter(pk__gt=since, delivered_at__isnull=True).exists()
        due = ScheduledAction.objects.filter(
            Q(status="pending", due_at__lte=timezone.now()) | Q(status="claimed")
        ).exists()
        if not undelivered and not due:
            return
        time.sleep(poll)
    sys.exit(f"the worker did not finish within {timeout:.0f} s")


# --- Measurements ---------------------------------------------------------------------


def write_moves(args, admin, following) -> tuple[int, int]:
    """--moves deals each to its next stage, --batch per transaction, with no worker
    running: (the last event id before, moves made)."""
    from django.db import transaction

    rng = random.Random(args.seed)
    candidates = movable(following)
    work = rng.sample(candidates, min(args.moves, len(candidates)))
    since = prepare()
    started = time.perf_counter()
    moved = 0
    for offset in range(0, len(work), args.batch):
        with transaction.atomic():
            for deal_id, current in work[offset : offset + args.batch]:
                moved += move(deal_id, current, following, admin)
    written = time.perf_counter() - started
    print(
        f"wrote {moved:,} stage moves ({len(work) - moved} refused) in {args.batch}-move "
        f"transactions: {written:.1f} s, {moved / written:,.0f} moves/s"
    )
    return since, moved


def write_edits(args, admin) -> tuple[int, int]:
    """--moves deal edits no rule watches (the title), --batch per transaction: each
    event is checked against every rule and fires none."""
    from django.db import transaction

    from pipelines.models import Deal
    from pipelines.services import update_deal

    rng = random.Random(args.seed + 2)
    ids = list(Deal.objects.filter(status="open").values_list("pk", flat=True))
    work = rng.sample(ids, min(args.moves, len(ids)))
    since = prepare()
    started = time.perf_counter()
    for offset in range(0, len(work), args.batch):
        with transaction.atomic():
            for deal in Deal.objects.filter(pk__in=work[offset : offset + args.batch]):
                deal.title = deal.title[:-1] if deal.title.endswith("·") else deal.title + "·"
                update_deal(deal=deal, by=admin)
    written = time.perf_counter() - started
    print(
        f"wrote {len(work):,} deal edits in {args.batch}-edit transactions: {written:.1f} s, "
        f"{len(work) / written:,.0f} edits/s"
    )
    return since, len(work)


def prepare() -> int:
    """No queued message or undelivered event of an earlier run, fresh statistics; the
    last event id."""
    settle_events()
    purge_queue()
    vacuum_grown()
    return last_event_id()


def vacuum_grown(threshold: int = 1000) -> list[str]:
    """VACUUM ANALYZE the tables earlier runs grew or churned, as autovacuum would have
    by now. Where it is off (as on some machines this runs on), a table the generator
    left empty keeps its empty-table estimate: the receipts of a message were then read
    by a sequential scan, slower with every run (682 -> 564 -> 481 events/s in three
    runs)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables"
            " WHERE n_mod_since_analyze > %s OR n_dead_tup > %s",
            [threshold, threshold],
        )
        tables = [name for (name,) in cursor.fetchall()]
        for name in tables:
            cursor.execute(f'VACUUM (ANALYZE) "{name}"')
    return tables


def drain(since: int, name: str, profile: bool) -> dict:
    """One worker started, until every event after `since` is delivered: how fast."""
    from django.db.models import Count, Max, Min

    from automation.models import ActionRun, RuleRun
    from crm.models import Change

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    prof = DATA_DIR / f"automation-worker-{name}.prof" if profile else None
    started = time.perf_counter()
    with worker_process(DATA_DIR / f"automation-worker-{name}.log", prof):
        wait_idle(since, timeout=3600)
        wall = time.perf_counter() - started
    events = Change.objects.filter(pk__gt=since)
    window = events.aggregate(first=Min("delivered_at"), last=Max("delivered_at"))
    span = (window["last"] - window["first"]).total_seconds()
    total = events.count()
    runs = RuleRun.objects.filter(event__pk__gt=since)
    return {
        "events": total,
        "by_kind": dict(events.values_list("kind").annotate(n=Count("id")).order_by("-n")),
        "span": span,
        "wall": wall,
        "per_second": (total - 1) / span if span else 0,
        "runs": dict(runs.values_list("status").annotate(n=Count("id")).order_by("status")),
        "actions": dict(
            ActionRun.objects.filter(run__in=runs)
            .values_list("kind")
            .annotate(n=Count("id"))
            .order_by("kind")
        ),
        "profile": prof,
    }


def report(label: str, result: dict) -> None:
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in result["by_kind"].items())
    ok = result["per_second"] >= EVENTS_TARGET
    print(
        f"{label}: one worker delivered {result['events']:,} events ({kinds}) in "
        f"{result['span']:.1f} s from the first delivery to the last ({result['wall']:.1f} s "
        f"with its start-up)\n"
        f"  rule runs: {result['runs'] or '-'}; actions: {result['actions'] or '-'}\n"
        f"  events/s: {result['per_second']:,.0f}  (target >= {EVENTS_TARGET}: "
        f"{'ok' if ok else 'MISSED'})"
    )
    if result["profile"]:
        print_profile(result["profile"], result["events"])
        print("(profiled: the figures above are slower than without --profile)")


def stamp(into: list[float]) -> None:
    into.append(time.time())


def latency(args, admin, following) -> list[tuple[float, float]]:
    """(ms to the task seen committed, ms to its created_at) for single moves."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction

    from crm.models import Task
    from pipelines.models import Deal, Stage
    from pipelines.services import move_to_stage

    rng = random.Random(args.seed + 1)
    sources = Stage.objects.filter(
        pipeline__name__in=DEAL_PIPELINES, name__in=list(TASK_MOVES)
    ).values_list("pk", flat=True)
    work = rng.sample(movable(following, from_stages=list(sources)), args.latency + 5)
    deal_type = ContentType.objects.get_for_model(Deal)
    results = []
    for index, (deal_id, current) in enumerate(work):
        since = last_event_id()
        newest_task = Task.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        committed: list[float] = []
        with transaction.atomic():
            transaction.on_commit(partial(stamp, committed))  # runs first
            move_to_stage(
                record=Deal.objects.get(pk=deal_id),
                stage=following[current],
                by=admin,
                expected_stage_id=current,
            )
        tasks = Task.objects.filter(subject_type=deal_type, subject_id=deal_id, pk__gt=newest_task)
        deadline = time.monotonic() + 30
        created = None
        while created is None:
            created = tasks.values_list("created_at", flat=True).first()
            if created is None:
                if time.monotonic() > deadline:
                    sys.exit(f"no task for deal {deal_id} after 30 s: is the robot active?")
                time.sleep(0.002)
        seen = time.time()
        if index >= 5:  # the first ones warm the worker up
            results.append(
                ((seen - committed[0]) * 1000, (created.timestamp() - committed[0]) * 1000)
            )
        wait_idle(since, timeout=60, poll=0.01)
    return results


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# --- Where the time goes --------------------------------------------------------------

# (module path suffix, function): the engine's steps and what they call.
BREAKDOWN = [
    ("celery/app/trace.py", "trace_task"),
    ("crm/events.py", "deliver"),
    ("crm/events.py", "deliver_one"),
    ("crm/events.py", "_handle_once"),
    ("automation/engine.py", "batch"),
    ("automation/engine.py", "_preload"),
    ("automation/batch.py", "flush"),
    ("automation/engine.py", "handle_event"),
    ("automation/engine.py", "active_rules"),
    ("automation/engine.py", "fires"),
    ("automation/engine.py", "complete_left_tasks"),
    ("automation/engine.py", "_new_run"),
    ("automation/engine.py", "run_now"),
    ("automation/engine.py", "run_scheduled"),
    ("automation/engine.py", "claim"),
    ("automation/engine.py", "_run"),
    ("automation/records.py", "load"),
    ("automation/engine.py", "_end_early"),
    ("automation/engine.py", "evaluate"),
    ("automation/engine.py", "_outcomes"),
    ("automation/engine.py", "_act"),
    ("automation/engine.py", "principal_for"),
    ("automation/engine.py", "_do"),
    ("automation/actions.py", "_run_task"),
    ("automation/actions.py", "placeholder_values"),
    ("automation/actions.py", "_assignee"),
    ("crm/services/tasks.py", "create_task"),
    ("automation/actions.py", "_run_notify"),
    ("automation/actions.py", "manager_of"),
    ("automation/engine.py", "_finish"),
    ("crm/events.py", "_dispatch"),
    ("crm/events.py", "enqueue"),
    ("django/db/backends/utils.py", "execute"),
    ("django/db/backends/base/base.py", "commit"),
    ("django/db/models/sql/compiler.py", "as_sql"),
]


def print_profile(path: Path, events: int) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    by_name = {}
    for (filename, _line, name), (_cc, calls, _tt, cumulative, _callers) in stats.stats.items():
        for suffix, wanted in BREAKDOWN:
            if name == wanted and filename.endswith(suffix):
                calls_, cum_ = by_name.get((suffix, wanted), (0, 0.0))
                by_name[(suffix, wanted)] = (calls_ + calls, cum_ + cumulative)
    print(f"\nwhere the worker's time goes (cProfile, {events:,} events; cumulative)")
    print(f"{'function':<48}{'calls':>9}{'total s':>10}{'ms/event':>10}{'ms/call':>9}")
    for key in BREAKDOWN:
        if key in by_name:
            calls, cumulative = by_name[key]
            name = f"{key[0].rsplit('/', 1)[-1].removesuffix('.py')}.{key[1]}"
            print(
                f"{name:<48}{calls:>9,}{cumulative:>10.2f}{cumulative * 1000 / events:>10.2f}"
                f"{cumulative * 1000 / calls:>9.2f}"
            )
    print("\ntop 25 by own time")
    stats.sort_stats("tottime").print_stats(25)


# --- Main -----------------------------------------------------------------------------


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.serve_worker:
        return serve_worker(args.serve_worker)
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import translation

    from accounts.models import User
    from automation.models import TIME_TRIGGERS
    from crm.models import Customer
    from pipelines.models import Deal

    if connection.vendor != "postgresql":
        sys.exit("bench/automation.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        sys.exit("bench/automation.py measures a worker on Redis: set REDIS_URL=redis://...")
    if Customer.objects.count() < 10_000:
        sys.exit("run bench/generate.py first: the deals go on its customers")
    translation.activate("zh-hans")

    from bench.pipelines import load_deals, third_pipeline

    third_pipeline()
    have = Deal.objects.filter(status="open").count()
    if have < args.deals:
        started = time.perf_counter()
        load_deals(args.deals - have, args.seed)
        print(f"loaded {args.deals - have:,} deals in {time.perf_counter() - started:.1f} s")
    rules = make_rules()
    admin = User.objects.select_related("role", "department").get(username="admin")
    following = next_stages()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    timed = sum(r.trigger in TIME_TRIGGERS for r in rules)
    print(
        f"PostgreSQL {version}; {Deal.objects.count():,} deals, "
        f"{Customer.objects.count():,} customers; {len(rules)} active rules "
        f"({timed} time rules); broker {settings.CELERY_BROKER_URL.split('@')[-1]}; "
        f"{os.cpu_count()} CPUs\n"
    )

    cases = set(args.cases.split(","))
    for case, label, write in (
        ("moves", "stage moves", lambda: write_moves(args, admin, following)),
        ("edits", "edits no rule watches", lambda: write_edits(args, admin)),
    ):
        if case in cases:
            since, _written = write()
            report(label, drain(since, case, args.profile))
            print()
    if args.profile or "latency" not in cases:
        return

    print(f"latency: {args.latency} single moves into a stage whose robot makes a task")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with worker_process(DATA_DIR / "automation-worker-latency.log", None):
        samples = latency(args, admin, following)
    seen = [s for s, _c in samples]
    created = [c for _s, c in samples]
    for label, values in (("task committed (polled)", seen), ("task created_at", created)):
        print(
            f"  move commit -> {label:<24} p50 {percentile(values, 50):7.1f} ms   "
            f"p95 {percentile(values, 95):7.1f} ms   max {max(values):7.1f} ms"
        )
    ok = percentile(seen, 50) < LATENCY_TARGET_MS
    print(f"  (target p50 < {LATENCY_TARGET_MS} ms: {'ok' if ok else 'MISSED'})")


if __name__ == "__main__":
    main()
