"""What the benchmark scripts share to fill a database: rows by PostgreSQL COPY, the
secondary indexes and foreign keys set aside around a large load, and the records
several scripts make (open deals with their stage history; leads walked through the lead
pipeline, the deals of converted ones, their follow-ups; won and lost deals).

    copier = Copier(Customer)            # rows of one model as COPY text
    Loader(cursor).load(copier, rows())  # COPY in batches of 50,000, rows/s printed

bench/generate.py, bench/pipelines.py and bench/reports.py load with these; each builds
what the records go on (people, customers, primary contacts) its own way: generate.py
from what it has just written (in memory), the others from the database.
"""

from __future__ import annotations

import io
import json
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from crm import demo_data

# --- COPY -------------------------------------------------------------------------------


class Copier:
    """Rows of one model to PostgreSQL COPY text; columns the caller leaves out get the
    field's default, so fields added to the models later do not break the generator."""

    def __init__(self, model):
        self.model = model
        self.table = model._meta.db_table
        self.fields = list(model._meta.concrete_fields)
        self.columns = [f.column for f in self.fields]
        self.defaults = {}
        for f in self.fields:
            if f.has_default():
                value = f.get_default()
            elif f.null:
                value = None
            else:
                value = ""
            self.defaults[f.attname] = _text(value)
        self._plan = [(f.attname, self.defaults[f.attname]) for f in self.fields]
        self.buffer = io.StringIO()
        self.count = 0

    def add(self, **values) -> None:
        line = "\t".join(
            [_text(values[name]) if name in values else default for name, default in self._plan]
        )
        self.buffer.write(line)
        self.buffer.write("\n")
        self.count += 1

    def take(self) -> io.StringIO:
        """The rows so far (to COPY), and an empty buffer for the next ones."""
        buffer = self.buffer
        buffer.seek(0)
        self.buffer = io.StringIO()
        self.count = 0
        return buffer

    def copy(self, cursor, buffer: io.StringIO) -> None:
        cursor.copy_expert(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN", buffer)

    def flush(self, cursor) -> None:
        self.copy(cursor, self.take())


def _text(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            text = text.replace(raw, escaped)
    return text


class Loader:
    """COPY in batches, reporting rows per second per table.

    With `background=True` a batch is sent by a second thread while the next one is
    made (the connection is used by that thread only meanwhile): Python making rows and
    PostgreSQL storing them overlap, on two CPUs nearly halving a large load."""

    BATCH = 50_000

    def __init__(self, cursor, background: bool = False):
        self.cursor = cursor
        self.background = background
        self.tables: list[tuple[str, int, float]] = []  # (table, rows, seconds) per load

    def load(self, copier: Copier, rows: Iterable) -> int:
        started = time.perf_counter()
        total = 0
        sender = _Sender(self.cursor) if self.background else None
        try:
            for _ in rows:
                if copier.count >= self.BATCH:
                    total += copier.count
                    self._send(sender, copier)
            total += copier.count
            self._send(sender, copier)
        finally:
            if sender:
                sender.close()
        elapsed = time.perf_counter() - started
        rate = total / elapsed if elapsed else 0
        self.tables.append((copier.table, total, elapsed))
        print(
            f"  {copier.table:<22} {total:>9,} rows  {elapsed:6.1f} s  {rate:>9,.0f} rows/s",
            flush=True,
        )
        return total

    def _send(self, sender, copier: Copier) -> None:
        buffer = copier.take()
        if sender:
            sender.send(copier, buffer)
        else:
            copier.copy(self.cursor, buffer)


class _Sender:
    """One thread sending COPY batches in order; at most one batch waits for it."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                copier, buffer = item
                try:
                    copier.copy(self.cursor, buffer)
                except BaseException as exc:  # re-raised in the caller's thread
                    self.error = exc

    def send(self, copier: Copier, buffer: io.StringIO) -> None:
        if self.error:
            raise self.error
        self.queue.put((copier, buffer))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error:
            raise self.error


# --- Indexes and foreign keys set aside around a large load -----------------------------


class SetAside:
    """Drops the secondary indexes (trigram and bigram GIN, btree, custom-field ones:
    every index that backs no primary-key or unique constraint) and the foreign keys of
    `tables`, and puts them back after the load: building an index once over the loaded
    rows is far cheaper than maintaining a GIN index row by row, and adding a foreign key
    checks it with one join instead of a trigger per row. The indexes are built on two
    connections at once (a GIN build uses one CPU), with a large maintenance_work_mem.

        with SetAside(connection_params, tables) as aside:
            ... COPY ...
        aside.report()
    """

    WORKERS = 2
    MEMORY = "1GB"
    # Set aside and not restored yet (a load that failed leaves them so: say it).
    pending: list[SetAside] = []

    def __init__(self, params: dict, tables: Sequence[str]):
        self.params = params
        self.tables = list(tables)
        self.indexes: list[tuple[str, str, str]] = []  # (name, table, definition)
        self.foreign_keys: list[tuple[str, str, str]] = []  # (name, table, definition)
        self.timings: list[tuple[str, float]] = []

    def _connect(self):
        import psycopg2

        conn = psycopg2.connect(**self.params)
        conn.autocommit = True
        return conn

    def __enter__(self):
        conn = self._connect()
        with conn.cursor() as cursor:
            cursor.execute(
                """
                SELECT c.relname, t.relname, pg_get_indexdef(i.indexrelid),
                       pg_relation_size(t.oid)
                FROM pg_index i
                JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_class t ON t.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
                WHERE t.relname = ANY(%s)
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_constraint k
                      WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                        AND k.contype IN ('p', 'u', 'x'))
                ORDER BY t.relname, c.relname
                """,
                [self.tables],
            )
            self.indexes = [(name, table, definition) for name, table, definition, _ in cursor]
            cursor.execute(
                """
                SELECT k.conname, t.relname, pg_get_constraintdef(k.oid)
                FROM pg_constraint k
                JOIN pg_class t ON t.oid = k.conrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
                WHERE k.contype = 'f' AND t.relname = ANY(%s)
                ORDER BY t.relname, k.conname
                """,
                [self.tables],
            )
            self.foreign_keys = list(cursor)
            for name, table, _definition in self.foreign_keys:
                cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for name, _table, _definition in self.indexes:
                cursor.execute(f'DROP INDEX "{name}"')
        conn.close()
        SetAside.pending.append(self)
        print(
            f"  set aside {len(self.indexes)} indexes and {len(self.foreign_keys)} foreign keys "
            f"of {len(self.tables)} tables",
            flush=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def restore(self) -> None:
        """Build the indexes (biggest tables first, two at a time), then the keys."""
        if self in SetAside.pending:
            SetAside.pending.remove(self)
        started = time.perf_counter()
        sizes = {}
        conn = self._connect()
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                [self.tables],
            )
            sizes = dict(cursor.fetchall())
        conn.close()
        work = queue.Queue()
        for name, table, definition in sorted(self.indexes, key=lambda row: -sizes.get(row[1], 0)):
            work.put((name, table, definition))
        errors: list[BaseException] = []

        def build() -> None:
            conn = self._connect()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(f"SET maintenance_work_mem = '{self.MEMORY}'")
                    cursor.execute("SET max_parallel_maintenance_workers = 0")
                    while True:
                        try:
                            name, table, definition = work.get_nowait()
                        except queue.Empty:
                            return
                        step = time.perf_counter()
                        cursor.execute(definition)
                        self.timings.append((f"{table}.{name}", time.perf_counter() - step))
            except BaseException as exc:
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=build) for _ in range(self.WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        built = time.perf_counter() - started
        step = time.perf_counter()
        conn = self._connect()
        with conn.cursor() as cursor:
            cursor.execute(f"SET maintenance_work_mem = '{self.MEMORY}'")
            for name, table, definition in self.foreign_keys:
                cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        conn.close()
        print(
            f"  {len(self.indexes)} indexes built in {built:.1f} s (2 at a time), "
            f"{len(self.foreign_keys)} foreign keys checked and added in "
            f"{time.perf_counter() - step:.1f} s",
            flush=True,
        )

    def report(self, top: int = 8) -> None:
        """The slowest index builds."""
        for name, seconds in sorted(self.timings, key=lambda t: -t[1])[:top]:
            print(f"    {name:<56} {seconds:6.1f} s")


# --- Deal titles --------------------------------------------------------------------------

# What deals are about: products, systems, services (with the words that make a title).
# fmt: off
DEAL_PRODUCTS = [
    "数控机床", "激光切割机", "注塑机", "空压机", "工业机器人", "叉车", "仓储货架",
    "智能仓储系统", "冷链设备", "包装设备", "检测设备", "实验室仪器", "医疗设备",
    "办公家具", "打印复印设备", "安防监控", "门禁考勤系统", "网络设备", "云服务器",
    "数据中心机柜", "ERP 系统", "MES 系统", "WMS 仓储系统", "CRM 系统", "OA 办公系统",
    "财务软件", "视频会议系统", "企业邮箱", "网络安全服务", "车队 GPS 管理系统",
    "门店收银终端", "光伏电站", "节能照明", "污水处理设备", "中央空调", "电梯维保",
    "食堂设备", "员工技能培训", "管理咨询", "包装材料", "劳保用品", "工装定制",
]
DEAL_KINDS = ["采购项目", "采购", "项目", "升级", "改造项目", "扩容", "更换", "维保服务", "试点"]
DEAL_REGIONS = [
    "华东区", "华南区", "华北区", "西南区", "华中区", "总部", "一期", "二期", "新厂区",
    "研发中心", "各门店", "集团", "分公司",
]
DEAL_AGREEMENTS = ["年度框架协议", "年度采购合同", "年度服务合同", "年续约"]
# fmt: on
_SUFFIXES = sorted(set(demo_data.COMPANY_SUFFIXES), key=len, reverse=True)
_CITIES = {c[0] for c in demo_data.CITIES}
# How people shorten a trade in a company's name (the first two characters otherwise).
_SHORT_TRADES = {
    "房地产开发": "地产", "进出口": "进出口", "供应链管理": "供应链", "新材料": "新材料",
    "融资租赁": "租赁", "餐饮管理": "餐饮", "投资管理": "投资", "物业管理": "物业",
}  # fmt: skip


def short_name(name: str) -> str:
    """上海恒信机械设备有限公司 -> 恒信机械: the brand and the start of the trade, as people
    write a company in a title; a person's name stays as it is."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        return name
    if name[:2] in _CITIES:
        name = name[2:]
    trade = name[2:]
    return name[:2] + _SHORT_TRADES.get(trade, trade[:2])


def deal_title(rng: random.Random, customer: str, year: int) -> str:
    """A deal's title as reps write them: "上海恒信机械设备有限公司 数控机床采购项目",
    "恒信机械 2027年度框架协议", "华东区仓储系统升级", "恒信机械 激光切割机采购"."""
    product = rng.choice(DEAL_PRODUCTS)
    roll = rng.random()
    if roll < 0.35:
        return f"{customer} {product}{rng.choice(DEAL_KINDS)}"
    if roll < 0.55:
        return f"{short_name(customer)} {product}{rng.choice(DEAL_KINDS)}"
    if roll < 0.7:
        agreement = rng.choice(DEAL_AGREEMENTS)
        return f"{short_name(customer)} {year + rng.choice((0, 0, 1))}{agreement}"
    if roll < 0.9:
        return f"{rng.choice(DEAL_REGIONS)}{product}{rng.choice(DEAL_KINDS)}"
    return f"{product}{rng.choice(DEAL_KINDS)}"


# --- Open deals (bench/pipelines.py) -----------------------------------------------------

PIPELINE_SHARES = {"零售": 0.5, "批发": 0.3, "大客户": 0.2}
# The titles of the first version; a deal's title now comes from deal_title().
TITLES = [
    "年度设备采购", "生产线自动化改造", "办公家具集中采购", "ERP 系统升级", "仓储货架采购",
    "门店收银终端更换", "员工技能培训服务", "数控机床采购", "空压机节能改造",
    "包装材料年度框架协议", "实验室仪器采购", "车队 GPS 管理系统", "云服务器扩容",
    "厂区安防监控项目", "食堂设备更新",
]  # fmt: skip


def open_deals(
    *,
    count: int,
    seed: int,
    now: datetime,
    first_id: int,
    history_id: int,
    owners: Sequence[int],
    customers_of: Mapping[int, Sequence[int]],
    contact_of: Mapping[int, int],
    name_of: Callable[[int], str],
    pipelines: Mapping[str, object],
    open_stages: Mapping[str, list],
    deals,
    history,
):
    """`count` open deals (into the `deals` copier, yielded one by one) and the stage
    history that brought each one to its stage (into `history`): 50% / 30% / 20% over
    the pipelines of PIPELINE_SHARES, the stage drawn deeper less often, each on a
    customer its owner owns with that customer's primary contact, amounts 5万–300万.
    One Random(seed); the titles from a second one (seed + 1)."""
    rng = random.Random(seed)
    title_rng = random.Random(seed + 1)
    names = list(PIPELINE_SHARES)
    weights = list(PIPELINE_SHARES.values())
    for offset in range(count):
        pk = first_id + offset
        pipeline = pipelines[rng.choices(names, weights=weights)[0]]
        stages = open_stages[pipeline.name]
        depth = min(int(rng.expovariate(0.45)), len(stages) - 1)
        stage = stages[depth]
        owner = rng.choice(owners)
        customer = rng.choice(customers_of[owner])
        amount = Decimal(int(50_000 * (60 ** rng.random()) / 1000) * 1000)
        created = now - timedelta(days=rng.uniform(5, 200))
        entered = created
        times = [created]
        for _ in stages[1 : depth + 1]:
            entered = entered + timedelta(days=rng.uniform(0.5, 14))
            times.append(min(entered, now - timedelta(hours=1)))
        rng.choice(TITLES)  # the first version's title: keeps the sequence as it was
        deals.add(
            id=pk,
            title=deal_title(title_rng, name_of(customer), now.year),
            customer_id=customer,
            contact_id=contact_of.get(customer),
            amount=amount,
            expected_close_date=(now + timedelta(days=rng.randint(-15, 120))).date(),
            probability=stage.probability,
            status="open",
            owner_id=owner,
            pipeline_id=pipeline.pk,
            stage_id=stage.pk,
            stage_entered_at=times[-1],
            created_by_id=owner,
            created_at=created,
            updated_at=times[-1],
            custom={},
        )
        previous = None
        for index, when in enumerate(times):
            history_id += 1
            history.add(
                id=history_id,
                record_type="deal",
                record_id=pk,
                pipeline_id=pipeline.pk,
                from_stage_id=stages[index - 1].pk if index else None,
                to_stage_id=stages[index].pk,
                user_id=owner,
                moved_at=when,
                seconds_in_previous=int((when - previous).total_seconds()) if previous else 0,
                note="",
            )
            previous = when
        yield pk


# --- Leads and closed deals (bench/reports.py) --------------------------------------------

# Lead sources: (weight, share converted).
SOURCES = {
    "website_form": (25, 0.20),
    "phone_in": (15, 0.25),
    "exhibition": (15, 0.30),
    "referral": (10, 0.45),
    "online_ad": (15, 0.12),
    "wechat": (15, 0.15),
    "cold_call": (5, 0.08),
}
LEAD_LOST = {"invalid": 25, "no_response": 30, "no_need": 20, "no_budget": 10, "timing": 5,
             "price": 5, "competitor": 5}  # fmt: skip
DEAL_LOST = {"price": 25, "competitor": 25, "no_budget": 15, "timing": 15, "product_fit": 10,
             "no_response": 8, "no_need": 2}  # fmt: skip
# Days in each open stage (median): leads, deals. Log-normal around these.
LEAD_DAYS = [0.3, 1, 2, 3, 4, 5]
DEAL_DAYS = [3, 5, 7, 10, 12, 15]
# Where lost deals drop out (index of the last open stage reached).
DEAL_DROP = [30, 25, 15, 15, 10, 5]
WIN_RATE = 0.38
FIRST_CONTACT_KINDS = {"call": 60, "wechat": 25, "email": 15}
LEAD_CONTENT = {
    "call": "电话联系{name}，了解需求",
    "wechat": "加{name}微信，发送产品资料",
    "email": "给{name}发邮件介绍产品",
    "visit": "上门拜访{name}",
}
LEAD_TITLES = ["总经理", "采购经理", "采购专员", "技术总监", "行政主管", "项目经理", "老板"]


def pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def stay(rng: random.Random, median_days: float) -> timedelta:
    """Time spent in a stage: log-normal around `median_days` (a long tail)."""
    return timedelta(days=median_days * math.exp(rng.gauss(0, 0.8)))


class Walk:
    """A record's way through its pipeline: the StageHistory rows and where it ends."""

    def __init__(self, history, next_id: int):
        self.history = history
        self.next_id = next_id

    def walk(self, *, record_type, record_id, pipeline_id, stages, user_id, start, rng, back=0.0):
        """Enter `stages` in order from `start`, each after the time spent in the one
        before; with probability `back` one step back and forward again. Returns the
        moments each stage was entered (the last is the current stage's)."""
        moves = []  # (from index or None, to index, when)
        when = start
        moves.append((None, 0, when))
        days = DEAL_DAYS if record_type == "deal" else LEAD_DAYS
        stepped_back = False
        index = 0
        while index < len(stages) - 1:
            median = days[min(index, len(days) - 1)] if stages[index][1] == "open" else 1
            when = when + stay(rng, median)
            if not stepped_back and index > 0 and rng.random() < back:
                moves.append((index, index - 1, when))
                when = when + stay(rng, 2)
                moves.append((index - 1, index, when))
                when = when + stay(rng, median / 2)
                stepped_back = True
            moves.append((index, index + 1, when))
            index += 1
        previous = None
        for from_index, to_index, moment in moves:
            self.next_id += 1
            self.history.add(
                id=self.next_id,
                record_type=record_type,
                record_id=record_id,
                pipeline_id=pipeline_id,
                from_stage_id=stages[from_index][0] if from_index is not None else None,
                to_stage_id=stages[to_index][0],
                user_id=user_id,
                moved_at=moment,
                seconds_in_previous=int((moment - previous).total_seconds()) if previous else 0,
                note="",
            )
            previous = moment
        return [m[2] for m in moves]


def span(rng, stages, record_type) -> timedelta:
    """How long a walk of `stages` takes on average (to place it before now)."""
    days = DEAL_DAYS if record_type == "deal" else LEAD_DAYS
    return timedelta(days=sum(days[min(i, len(days) - 1)] for i in range(len(stages) - 1)) * 1.6)


class History:
    """Leads and closed deals with their stage history and the leads' follow-ups, into
    the copiers `leads`, `deals`, `history` and `activities`.

    Ids continue from the `*_id` given (the largest in the table). The lead's contact
    details (email, WeChat id, job title) come from a second Random (seed + 1), so the
    records the first one draws stay as they were before leads had them."""

    def __init__(
        self,
        *,
        seed: int,
        now: datetime,
        owners: Sequence[int],
        customers_of: Mapping[int, Sequence[int]],
        contact_of: Mapping[int, int],
        items: Mapping[tuple[str, str], int],
        deal_pipelines: Mapping[int, tuple[str, tuple]],
        lead_pipeline: int,
        lead_stages: tuple,
        lead_type: int,
        deal_id: int,
        lead_id: int,
        activity_id: int,
        history_id: int,
        deals,
        leads,
        history,
        activities,
    ):
        self.rng = random.Random(seed)
        self.detail_rng = random.Random(seed + 1)
        self.now = now
        self.owners = owners
        self.customers_of = customers_of
        self.contact_of = contact_of
        self.items = items
        self.deal_pipelines = deal_pipelines
        self.by_name = {name: pk for pk, (name, _s) in deal_pipelines.items()}
        self.lead_pipeline = lead_pipeline
        self.lead_open, self.lead_won, self.lead_lost = lead_stages
        self.lead_type = lead_type
        self.deal_id, self.lead_id, self.activity_id = deal_id, lead_id, activity_id
        self.deals, self.leads, self.activities = deals, leads, activities
        self.walker = Walk(history, history_id)
        self.two_years = timedelta(days=730)
        self.source_names = list(SOURCES)
        self.source_weights = [w for w, _ in SOURCES.values()]

    def closed_deal(self, *, owner, customer, created, won, pipeline_pk=None, title=None):
        """A won or lost deal from `created`; None when it would close after now."""
        rng, now = self.rng, self.now
        if pipeline_pk is None:
            pipeline_pk = self.by_name[pick(rng, PIPELINE_SHARES)]
        opens, won_stage, lost_stage = self.deal_pipelines[pipeline_pk][1]
        if won:
            path = [*opens, won_stage]
        else:
            depth = rng.choices(range(len(opens)), weights=DEAL_DROP[: len(opens)])[0]
            path = [*opens[: depth + 1], lost_stage]
        probe = created + span(rng, path, "deal")
        if probe >= now - timedelta(days=1):
            return None
        self.deal_id += 1
        times = self.walker.walk(
            record_type="deal",
            record_id=self.deal_id,
            pipeline_id=pipeline_pk,
            stages=path,
            user_id=owner,
            start=created,
            rng=rng,
            back=0.12,
        )
        closed = times[-1]
        if closed >= now:  # the long tail: close it just before now
            closed = now - timedelta(hours=rng.uniform(1, 48))
        amount = Decimal(int(50_000 * (60 ** rng.random()) / 1000) * 1000)
        self.deals.add(
            id=self.deal_id,
            title=title or rng.choice(TITLES[:13]),
            customer_id=customer,
            contact_id=self.contact_of.get(customer),
            amount=amount,
            expected_close_date=(closed + timedelta(days=rng.randint(-20, 20))).date(),
            probability=100 if won else 0,
            status="won" if won else "lost",
            lost_reason_id=None if won else self.items[("lost_reason", pick(rng, DEAL_LOST))],
            owner_id=owner,
            pipeline_id=pipeline_pk,
            stage_id=path[-1][0],
            stage_entered_at=closed,
            closed_at=closed,
            created_by_id=owner,
            created_at=created,
            updated_at=closed,
            custom={},
        )
        return self.deal_id

    def closed(self) -> bool:
        """A won or lost deal of its own (not a lead's): False when it would close
        after now (the caller draws again)."""
        rng, now = self.rng, self.now
        owner = rng.choice(self.owners)
        created = now - timedelta(seconds=rng.uniform(20 * 86400, self.two_years.total_seconds()))
        return bool(
            self.closed_deal(
                owner=owner,
                customer=rng.choice(self.customers_of[owner]),
                created=created,
                won=rng.random() < WIN_RATE,
            )
        )

    def activity(self, *, author, when, kind, subject, customer, name):
        self.activity_id += 1
        self.activities.add(
            id=self.activity_id,
            customer_id=customer,
            contact_id=self.contact_of.get(customer) if customer else None,
            kind_id=self.items[("activity_kind", kind)],
            content=LEAD_CONTENT[kind].format(name=name),
            occurred_at=when,
            author_id=author,
            next_follow_up_at=None,
            subject_type_id=self.lead_type,
            subject_id=subject,
            created_at=when,
        )

    def _contact_details(self, person: demo_data.Person, company) -> dict:
        """The lead's email, WeChat id and job title (from the second Random)."""
        rng = self.detail_rng
        email = ""
        roll = rng.random()
        if roll < 0.55:
            email = demo_data.email(rng, person, company.domain if company else None)
        elif roll < 0.65 and company:
            email = demo_data.email(rng, None, company.domain)  # sales@..., info@...
        wechat = ""
        roll = rng.random()
        if roll < 0.35:
            wechat = f"{person.pinyin}_{rng.randrange(100, 9999)}"
        elif roll < 0.5:
            wechat = f"wxid_{rng.randrange(36**8):08x}"
        title = rng.choice(LEAD_TITLES) if company and rng.random() < 0.5 else ""
        return {"email": email, "wechat": wechat, "title": title}

    def lead(self) -> None:
        """One lead: its source, its walk through the lead pipeline, its outcome (open,
        lost with a reason, converted to one of its owner's customers, most of them with a
        deal), its follow-ups."""
        rng, now = self.rng, self.now
        self.lead_id += 1
        lead_id = self.lead_id
        lead_open, lead_won, lead_lost = self.lead_open, self.lead_won, self.lead_lost
        created = now - timedelta(seconds=rng.uniform(0, self.two_years.total_seconds()))
        source = rng.choices(self.source_names, weights=self.source_weights)[0]
        age = (now - created).days
        roll = rng.random()
        if age < 30 and rng.random() < 0.6:
            outcome = "open"
        elif roll < SOURCES[source][1]:
            outcome = "converted"
        elif roll < SOURCES[source][1] + 0.6:
            outcome = "lost"
        else:
            outcome = "open"
        owner = rng.choice(self.owners)
        if outcome == "converted":
            path = [*lead_open[: rng.randint(3, len(lead_open))], lead_won]
        elif outcome == "lost":
            path = [*lead_open[: rng.randint(1, 4)], lead_lost]
        else:
            path = lead_open[: 1 + min(int(rng.expovariate(0.8)), len(lead_open) - 1)]
        if created + span(rng, path, "lead") >= now:
            path = lead_open[:1]
            outcome = "open"
        if outcome == "open" and len(path) == 1 and rng.random() < 0.5:
            owner = None  # not assigned yet
        times = self.walker.walk(
            record_type="lead",
            record_id=lead_id,
            pipeline_id=self.lead_pipeline,
            stages=path,
            user_id=owner,
            start=created,
            rng=rng,
        )
        entered = min(times[-1], now - timedelta(minutes=5))
        person = demo_data.make_person(rng)
        company = demo_data.make_company(rng) if rng.random() < 0.8 else None
        company_name = company.name if company else ""
        customer = deal = None
        if outcome == "converted":
            customer = rng.choice(self.customers_of[owner])
            if rng.random() < 0.7:
                deal = self.closed_deal(
                    owner=owner,
                    customer=customer,
                    created=entered,
                    won=rng.random() < WIN_RATE + 0.1,
                    title=f"{company_name or person.name} 首单",
                )
        self.leads.add(
            id=lead_id,
            person_name=person.name,
            company_name=company_name,
            phone=demo_data.mobile(rng),
            **self._contact_details(person, company),
            source_id=self.items[("lead_source", source)],
            notes="",
            owner_id=owner,
            status=outcome,
            converted_customer_id=customer,
            converted_contact_id=self.contact_of.get(customer) if customer else None,
            converted_deal_id=deal,
            pipeline_id=self.lead_pipeline,
            stage_id=path[-1][0],
            stage_entered_at=entered,
            lost_reason_id=self.items[("lost_reason", pick(rng, LEAD_LOST))]
            if outcome == "lost"
            else None,
            closed_at=entered if outcome != "open" else None,
            created_by_id=owner,
            created_at=created,
            updated_at=entered,
            custom={},
        )
        if owner is not None:
            # The first contact: hours to days after the lead came in; then a few more.
            first = created + timedelta(hours=3 * math.exp(rng.gauss(0, 1.5)))
            if first < now:
                kind = pick(rng, FIRST_CONTACT_KINDS)
                self.activity(
                    author=owner, when=first, kind=kind, subject=lead_id, customer=customer,
                    name=person.name,
                )  # fmt: skip
                last = max(times[-1], first)
                for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
                    moment = first + (last - first) * rng.random()
                    self.activity(
                        author=owner, when=moment, kind=rng.choice(list(LEAD_CONTENT)),
                        subject=lead_id, customer=customer, name=person.name,
                    )  # fmt: skip


def history_context() -> dict:
    """What History needs from the database besides the people and customers: the
    dictionary items, the deal pipelines (零售, 批发, 大客户) and the lead pipeline with
    their stages, the lead's content type."""
    from django.contrib.contenttypes.models import ContentType

    from crm.models import DictionaryItem
    from pipelines.models import Lead, Pipeline

    items = {
        (code, item): pk
        for code, item, pk in DictionaryItem.objects.filter(
            dictionary__code__in=["lead_source", "lost_reason", "activity_kind"]
        ).values_list("dictionary__code", "code", "pk")
    }

    def stage_rows(pipeline):
        rows = list(pipeline.stages.order_by("order", "id").values_list("pk", "kind"))
        return (
            [r for r in rows if r[1] == "open"],
            next(r for r in rows if r[1] == "won"),
            next(r for r in rows if r[1] == "lost"),
        )

    lead_pipeline = Pipeline.objects.for_leads().order_by("-is_default", "order", "id").first()
    return {
        "items": items,
        "deal_pipelines": {
            p.pk: (p.name, stage_rows(p))
            for p in Pipeline.objects.for_deals().filter(name__in=PIPELINE_SHARES).order_by("pk")
        },
        "lead_pipeline": lead_pipeline.pk,
        "lead_stages": stage_rows(lead_pipeline),
        "lead_type": ContentType.objects.get_for_model(Lead).pk,
    }
