#!/usr/bin/env python
"""Fill a PostgreSQL database with a big, realistic CRM for the benchmark.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench \\
        .venv/bin/python bench/generate.py --customers 100000 [--contacts 200000] \\
        [--activities 500000] [--leads 40000] [--deals 50000]

Creates the database if it does not exist (UTF-8 ctype, so trigram search works on
Chinese), migrates it, and loads with COPY:
- the demo organisation (admin, zhangwei, wangfang, ... password demo1234) grown to
  about 50 people in a deeper department tree (sub-teams, a key-account team);
- customers (companies and a few individuals, ~20% in the public pool), with type,
  source, level and industry from the dictionaries, tags, a "created" history entry;
- contacts (one primary per customer; default 2 per customer), activities over two
  years (default 5 per customer; some customers, the key accounts, with hundreds),
  follow-up times and tasks;
- open deals with their stage history (bench/pipelines.py's records) and leads with
  their history, follow-ups and the deals of converted ones (bench/reports.py's), both
  by bench/loading.py.
The secondary indexes and foreign keys of the loaded tables are set aside during the
load and built after it (--keep-indexes: not). Everything comes from seeded random
generators: the same seed and day give the same data. It refuses a database that
already has customers unless --reset (which drops and re-creates the database).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from array import array
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
# Copier and Loader lived here first: `from generate import Copier, Loader` still works.
from loading import Copier, Loader, SetAside, _text  # noqa: E402, F401 (bench/loading.py)

# The bench's people: (username, name, department, role); the demo users come first.
EXTRA_DEPARTMENTS = [
    # (parent, name, order)
    ("销售一部", "华东组", 10),
    ("销售一部", "华南组", 20),
    ("销售二部", "华北组", 10),
    ("销售二部", "西南组", 20),
    ("销售部", "大客户部", 30),
]
# department -> number of extra reps
EXTRA_REPS = {
    "销售一部": 4,
    "华东组": 7,
    "华南组": 6,
    "销售二部": 4,
    "华北组": 7,
    "西南组": 6,
    "大客户部": 5,
}
EXTRA_MANAGERS = ["销售一部", "销售二部", "大客户部"]
EXTRA_SERVICE = 2

POOL_SHARE = 0.2
INDIVIDUAL_SHARE = 0.1
YEARS = 2
KEY_ACCOUNTS = 200  # customers that get a tenth of all activities
TAGGED_SHARE = 0.3
TASKS_PER_CUSTOMER = 0.4

LEVEL_WEIGHTS = {"a": 10, "b": 25, "c": 35, "d": 30}
SOURCE_WEIGHTS = {
    "website": 20,
    "referral": 14,
    "exhibition": 14,
    "cold_call": 16,
    "online_ad": 14,
    "partner": 10,
    "existing": 12,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--contacts", type=int, default=None, help="default: 2 per customer (200,000)"
    )
    parser.add_argument(
        "--activities", type=int, default=None, help="default: 5 per customer (500,000)"
    )
    parser.add_argument("--leads", type=int, default=40_000)
    parser.add_argument("--deals", type=int, default=50_000, help="open deals")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        default=None,
        help="The day the data is relative to (YYYY-MM-DD; default: today).",
    )
    parser.add_argument(
        "--reset", action="store_true", help="Drop and re-create the database first."
    )
    parser.add_argument(
        "--keep-indexes",
        action="store_true",
        help="COPY into the indexed tables (slower: to compare) instead of setting the "
        "secondary indexes and foreign keys aside and building them after the load.",
    )
    args = parser.parse_args(argv)
    if args.contacts is None:
        args.contacts = 2 * args.customers
    if args.activities is None:
        args.activities = 5 * args.customers
    return args


# --- The database ---------------------------------------------------------------------


def ensure_database(reset: bool) -> None:
    """Create the database (UTF-8 ctype) when missing; drop it first with --reset."""
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/generate.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    params = {
        "dbname": "postgres",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    name = db["NAME"]
    admin = psycopg2.connect(**{k: v for k, v in params.items() if v})
    admin.autocommit = True
    with admin.cursor() as cursor:
        if reset:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute("SELECT datctype FROM pg_database WHERE datname = %s", [name])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' "
                "LC_CTYPE 'C.UTF-8' TEMPLATE template0"
            )
            print(f"created database {name} (UTF-8)")
        elif "utf" not in row[0].lower():
            sys.exit(f"{name} has ctype {row[0]}: trigram search needs UTF-8 (use --reset)")
    admin.close()


# --- The organisation -----------------------------------------------------------------


def build_organisation(rng: random.Random):
    from django.contrib.auth.hashers import make_password

    from accounts.demo import DEMO_PASSWORD, seed_organisation
    from accounts.models import Department, Role, User
    from crm import demo_data

    seed_organisation(reset_passwords=True)
    departments = {d.name: d for d in Department.objects.all()}
    for parent, name, order in EXTRA_DEPARTMENTS:
        departments[name], _ = Department.objects.get_or_create(
            parent=departments[parent], name=name, defaults={"sort_order": order}
        )
    roles = {r.name: r for r in Role.objects.all()}
    password = make_password(DEMO_PASSWORD)  # hashed once: 50 hashes would take seconds
    taken = set(User.objects.values_list("username", flat=True))
    people = []

    def person(department, role):
        who = demo_data.make_person(rng)
        username = who.pinyin
        n = 1
        while username in taken:
            n += 1
            username = f"{who.pinyin}{n}"
        taken.add(username)
        people.append(
            User(
                username=username,
                name=who.name,
                department=departments[department],
                role=roles[role],
                phone=demo_data.mobile(rng),
                email=f"{username}@bench.example.com",
                password=password,
            )
        )

    for department in EXTRA_MANAGERS:
        person(department, "销售经理")
    for department, count in EXTRA_REPS.items():
        for _ in range(count):
            person(department, "销售代表")
    for _ in range(EXTRA_SERVICE):
        person("客服部", "客服")
    User.objects.bulk_create(people)
    users = list(User.objects.select_related("role", "department").order_by("pk"))
    print(f"  {len(users)} users in {len(departments)} departments")
    return users


# --- Records --------------------------------------------------------------------------


def birthday(rng: random.Random) -> date:
    return date(rng.randrange(1965, 2000), rng.randrange(1, 13), rng.randrange(1, 29))


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


INTENT_WEIGHTS = {"strong": 15, "medium": 40, "watching": 30, "none": 15}
STAFF_SIZES = [8, 15, 25, 40, 60, 85, 120, 180, 260, 400, 750, 1200, 3500, 12000]


def custom_values(rng: random.Random, pk: int, individual: bool, chars: str) -> dict:
    """The demo custom fields of one customer; companies have most of them filled."""
    values = {}
    if rng.random() < 0.9:
        values["cooperation_intent"] = weighted(rng, INTENT_WEIGHTS)
    if individual:
        return values
    if rng.random() < 0.8:
        staff = rng.choice(STAFF_SIZES)
        values["staff_count"] = staff
        values["annual_revenue"] = f"{staff * rng.randint(20, 200) * 10000}.00"
    if rng.random() < 0.7:
        # Unique: the id in base 31 after random characters.
        tail, n = "", pk
        while n:
            n, digit = divmod(n, len(chars))
            tail = chars[digit] + tail
        head = "".join(rng.choice(chars) for _ in range(16 - len(tail)))
        values["credit_code"] = "91" + head + tail
    if rng.random() < 0.3:
        values["commission_rate"] = rng.choice(["3", "5", "8", "10"])
    return values


# --- Names kept small: 1M customers and 2M contacts in a few arrays ---------------------


class Names:
    """Companies and people packed into ints (array("l")), so the generator keeps who
    each customer and contact is for a million of them in a few MB instead of ~1 GB of
    objects: a company is city, two brand characters, trade words, suffix and top-level
    domain (indexes into crm.demo_data's tables); a person a surname and one or two given
    characters."""

    def __init__(self):
        from crm import demo_data

        self.demo_data = demo_data
        self.cities = [c[0] for c in demo_data.CITIES]
        self.city_index = {c: i for i, c in enumerate(self.cities)}
        self.brands = list(demo_data.BRAND_CHARS)
        self.brand_index = {c: i for i, c in enumerate(self.brands)}
        self.trades = demo_data.INDUSTRY_WORDS
        self.trade_index = {w: i for i, (w, _c, _s) in enumerate(self.trades)}
        self.suffixes = sorted(set(demo_data.COMPANY_SUFFIXES), key=len, reverse=True)
        self.tlds = [".com.cn", ".cn", ".com"]  # longest first: how a domain is read
        self.surnames = [s for s, _p, _w in demo_data.SURNAMES]
        self.surname_index = {s: i for i, s in enumerate(self.surnames)}
        self.given = list(demo_data.GIVEN_CHARS)
        self.given_index = {c: i for i, c in enumerate(self.given)}
        self._company_cache: dict[int, object] = {}

    def company_code(self, company) -> int:
        name = company.name
        suffix = next(i for i, s in enumerate(self.suffixes) if name.endswith(s))
        city = self.city_index[company.city]
        start = len(company.city) + 2
        trade = self.trade_index[name[start : len(name) - len(self.suffixes[suffix])]]
        tld = next(i for i, t in enumerate(self.tlds) if company.domain.endswith(t))
        first, second = (self.brand_index[ch] for ch in company.brand)
        return ((((city * 64 + first) * 64 + second) * 64 + trade) * 4 + suffix) * 4 + tld

    def company(self, code: int):
        """The Company a code stands for (the same as make_company made)."""
        company = self._company_cache.get(code)
        if company is not None:
            return company
        rest, tld = divmod(code, 4)
        rest, suffix = divmod(rest, 4)
        rest, trade = divmod(rest, 64)
        rest, second = divmod(rest, 64)
        city, first = divmod(rest, 64)
        word, industry, short = self.trades[trade]
        a, b = self.brands[first], self.brands[second]
        chars = self.demo_data.BRAND_CHARS
        company = self.demo_data.Company(
            name=f"{self.cities[city]}{a}{b}{word}{self.suffixes[suffix]}",
            city=self.cities[city],
            brand=a + b,
            industry=industry,
            domain=f"{chars[a]}{chars[b]}-{short}{self.tlds[tld]}",
        )
        if len(self._company_cache) < 200_000:
            self._company_cache[code] = company
        return company

    def person_code(self, name: str) -> int:
        if name[:2] in self.surname_index:
            surname, given = self.surname_index[name[:2]], name[2:]
        else:
            surname, given = self.surname_index[name[:1]], name[1:]
        first = self.given_index[given[0]]
        second = self.given_index[given[1]] + 1 if len(given) > 1 else 0
        return (surname * 128 + first) * 128 + second

    def person(self, code: int) -> str:
        rest, second = divmod(code, 128)
        surname, first = divmod(rest, 128)
        name = self.surnames[surname] + self.given[first]
        return name + self.given[second - 1] if second else name


class PrimaryContacts:
    """customer id -> id of its primary contact (the first of its contacts), as a
    mapping over the generator's arrays."""

    def __init__(self, first_contact, per_customer):
        self.first = first_contact
        self.counts = per_customer

    def get(self, customer: int, default=None):
        i = customer - 1
        return self.first[i] if self.counts[i] else default

    def __getitem__(self, customer: int) -> int:
        pk = self.get(customer)
        if pk is None:
            raise KeyError(customer)
        return pk


def connection_params() -> dict:
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    return {k: v for k, v in params.items() if v}


def generate(args) -> None:
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from loading import History, history_context, open_deals

    from bench.pipelines import third_pipeline
    from crm import demo_data
    from crm.demo_config import CREDIT_CODE_CHARS, seed_configuration
    from crm.models import (
        Activity,
        Change,
        Contact,
        Customer,
        DictionaryItem,
        Tag,
        Task,
    )
    from pipelines.models import Deal, Lead, Pipeline, StageHistory, StageKind

    rng = random.Random(args.seed)
    tz = ZoneInfo(settings.TIME_ZONE)
    today = args.today or datetime.now(tz).date()
    now = datetime(today.year, today.month, today.day, 18, 0, tzinfo=tz)
    start = now - timedelta(days=365 * YEARS)
    span = (now - start).total_seconds()
    names = Names()

    print("organisation")
    users = build_organisation(rng)
    owners = [u for u in users if u.role and u.role.name in ("销售代表", "销售经理")]
    # Reps carry most customers, managers a few; some reps are busier than others.
    owner_weights = [(0.15 if u.role.name == "销售经理" else rng.uniform(0.5, 1.5)) for u in owners]
    admin = next(u for u in users if u.is_superuser)

    # The demo's custom fields (统一社会信用代码 unique, 年营业额, 员工人数, 合作意向 ...):
    # defined before the rows go in, so their indexes are there, as in a real system.
    seed_configuration()
    custom_rng = random.Random(args.seed + 1)  # leaves the main sequence as it was
    # The deals' third pipeline (大客户), as bench/pipelines.py makes it.
    third_pipeline()

    items = {}
    for item in DictionaryItem.objects.select_related("dictionary"):
        items.setdefault(item.dictionary.code, {})[item.code] = item.pk
    tags = [
        Tag.objects.get_or_create(name=name, defaults={"color": color})[0].pk
        for name, color in zip(
            demo_data.TAG_NAMES,
            ["red", "green", "purple", "teal", "pink", "yellow", "lime", "azure"],
            strict=False,
        )
    ]
    customer_type = ContentType.objects.get_for_model(Customer).pk

    n_customers, n_contacts, n_activities = args.customers, args.contacts, args.activities
    # Creation times ascending with the id, like a real table.
    created = array(
        "d", sorted(start.timestamp() + rng.random() * span * 0.97 for _ in range(n_customers))
    )
    owner_of: list[int | None] = []
    for _ in range(n_customers):
        if rng.random() < POOL_SHARE:
            owner_of.append(None)
        else:
            owner_of.append(rng.choices(owners, weights=owner_weights)[0].pk)
    rep_ids = [u.pk for u in owners]
    # Contacts per customer: at least one, the rest spread at random.
    per_customer = array("i", [1 if n_contacts >= n_customers else 0]) * n_customers
    for _ in range(max(0, n_contacts - sum(per_customer))):
        per_customer[rng.randrange(n_customers)] += 1
    first_contact = array("l")
    next_id = 1
    for count in per_customer:
        first_contact.append(next_id)
        next_id += count
    key_accounts = rng.sample(range(n_customers), min(KEY_ACCOUNTS, n_customers))
    # Which customer each activity is about and when: planned first, so each customer is
    # written with its last activity time (no UPDATE of 100k rows afterwards).
    activity_customer = array("i")
    activity_time = array("d")
    last_activity = array("d", [0.0]) * n_customers
    end = now.timestamp()
    for _ in range(n_activities):
        i = rng.choice(key_accounts) if rng.random() < 0.1 else rng.randrange(n_customers)
        when = created[i] + rng.random() * (end - created[i])
        activity_customer.append(i)
        activity_time.append(when)
        if when > last_activity[i]:
            last_activity[i] = when

    def ts(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, tz)

    # Who each customer is: a company's code, or -1 - a person's code (individuals).
    customer_code = array("q")

    def company_of(i: int):
        code = customer_code[i]
        return names.company(code) if code >= 0 else None

    def name_of(pk: int) -> str:
        code = customer_code[pk - 1]
        return names.company(code).name if code >= 0 else names.person(-1 - code)

    loaded = [
        Customer,
        Customer.tags.through,
        Change,
        Contact,
        Activity,
        Task,
        Deal,
        StageHistory,
        Lead,
    ]
    aside = None
    if not args.keep_indexes:
        print("indexes")
        aside = SetAside(connection_params(), [m._meta.db_table for m in loaded])
        aside.__enter__()
    total_started = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        loader = Loader(cursor, background=True)
        print("records", flush=True)

        # Customers -------------------------------------------------------------------
        customers = Copier(Customer)

        def customer_rows():
            for i in range(n_customers):
                pk = i + 1
                born = created[i]
                owner = owner_of[i]
                individual = rng.random() < INDIVIDUAL_SHARE
                if individual:
                    who = demo_data.make_person(rng)
                    customer_code.append(-1 - names.person_code(who.name))
                    name = who.name
                    phone = demo_data.mobile(rng)
                    email = demo_data.email(rng, who) if rng.random() < 0.5 else ""
                    industry = None
                    address = demo_data.address(rng) if rng.random() < 0.3 else ""
                    website = ""
                else:
                    company = demo_data.make_company(rng)
                    customer_code.append(names.company_code(company))
                    name = company.name
                    phone = demo_data.landline(rng, company.city) if rng.random() < 0.85 else ""
                    email = demo_data.email(rng, None, company.domain) if rng.random() < 0.7 else ""
                    industry = items["industry"].get(company.industry)
                    address = demo_data.address(rng, company.city)
                    website = demo_data.website(company) if rng.random() < 0.5 else ""
                follow_up = None
                if owner and rng.random() < 0.35:
                    follow_up = ts(now.timestamp() + rng.uniform(-10, 30) * 86400)
                customers.add(
                    id=pk,
                    name=name,
                    owner_id=owner,
                    type_id=items["customer_type"]["individual" if individual else "company"],
                    source_id=items["customer_source"][weighted(rng, SOURCE_WEIGHTS)],
                    level_id=items["customer_level"][weighted(rng, LEVEL_WEIGHTS)],
                    industry_id=industry,
                    phone=phone,
                    email=email,
                    address=address,
                    website=website,
                    custom=custom_values(custom_rng, pk, individual, CREDIT_CODE_CHARS),
                    created_by_id=owner or rng.choice(rep_ids),
                    created_at=ts(born),
                    updated_at=ts(born + rng.random() * (now.timestamp() - born)),
                    last_activity_at=ts(last_activity[i]) if last_activity[i] else None,
                    next_follow_up_at=follow_up,
                    released_at=(
                        ts(born + rng.random() * (now.timestamp() - born))
                        if owner is None and rng.random() < 0.6
                        else None
                    ),
                )
                yield pk

        loader.load(customers, customer_rows())

        # Tags and history ------------------------------------------------------------
        through = Copier(Customer.tags.through)

        def tag_rows():
            pk = 0
            for i in range(n_customers):
                if rng.random() < TAGGED_SHARE:
                    for tag in rng.sample(tags, rng.choice((1, 1, 2))):
                        pk += 1
                        through.add(id=pk, customer_id=i + 1, tag_id=tag)
                        yield pk

        loader.load(through, tag_rows())

        changes = Copier(Change)

        def change_rows():
            for i in range(n_customers):
                changes.add(
                    id=i + 1,
                    record_type_id=customer_type,
                    record_id=i + 1,
                    customer_id=i + 1,
                    action="created",
                    kind="created",
                    changes=[],
                    note="",
                    user_id=owner_of[i] or admin.pk,
                    created_at=ts(created[i]),
                    delivered_at=ts(created[i]),
                )
                yield i

        loader.load(changes, change_rows())

        # Contacts --------------------------------------------------------------------
        contacts = Copier(Contact)
        contact_names = array("l")  # person codes, by contact id - 1

        def contact_rows():
            for i in range(n_customers):
                company = company_of(i)
                for k in range(per_customer[i]):
                    pk = first_contact[i] + k
                    who = demo_data.make_person(rng)
                    contact_names.append(names.person_code(who.name))
                    born = created[i] + rng.random() * 86400 * 30 * k
                    contacts.add(
                        id=pk,
                        customer_id=i + 1,
                        name=who.name,
                        title=rng.choice(demo_data.JOB_TITLES) if company else "",
                        mobile=demo_data.mobile(rng) if rng.random() < 0.9 else "",
                        phone=(
                            demo_data.landline(rng, company.city)
                            if company and rng.random() < 0.2
                            else ""
                        ),
                        email=(
                            demo_data.email(rng, who, company.domain if company else None)
                            if rng.random() < 0.7
                            else ""
                        ),
                        wechat=(
                            f"{who.pinyin}_{rng.randrange(100, 9999)}" if rng.random() < 0.4 else ""
                        ),
                        birthday=(birthday(rng) if rng.random() < 0.2 else None),
                        is_primary=(k == 0),
                        do_not_contact=rng.random() < 0.02,
                        custom={},
                        created_by_id=owner_of[i] or admin.pk,
                        created_at=ts(min(born, now.timestamp())),
                        updated_at=ts(min(born, now.timestamp())),
                    )
                    yield pk

        loader.load(contacts, contact_rows())

        # Activities ------------------------------------------------------------------
        activities = Copier(Activity)
        kinds = items["activity_kind"]

        def activity_rows():
            for pk in range(1, n_activities + 1):
                i = activity_customer[pk - 1]
                when = ts(activity_time[pk - 1])
                kind = demo_data.activity_kind(rng)
                contact_id = None
                contact_name = ""
                if per_customer[i] and rng.random() < 0.6:
                    contact_id = first_contact[i] + rng.randrange(per_customer[i])
                    contact_name = names.person(contact_names[contact_id - 1])
                author = owner_of[i] or rng.choice(rep_ids)
                activities.add(
                    id=pk,
                    customer_id=i + 1,
                    contact_id=contact_id,
                    kind_id=kinds[kind],
                    content=demo_data.activity_content(rng, kind, contact_name),
                    occurred_at=when,
                    author_id=author,
                    next_follow_up_at=(
                        when + timedelta(days=rng.randrange(1, 15)) if rng.random() < 0.1 else None
                    ),
                    created_at=when,
                )
                yield pk

        loader.load(activities, activity_rows())

        # Tasks -----------------------------------------------------------------------
        tasks = Copier(Task)

        def task_rows():
            pk = 0
            for _ in range(int(n_customers * TASKS_PER_CUSTOMER)):
                i = rng.randrange(n_customers)
                if owner_of[i] is None:
                    continue
                pk += 1
                due = ts(now.timestamp() + rng.uniform(-60, 30) * 86400)
                due = due.replace(minute=rng.choice((0, 30)), second=0, microsecond=0)
                if due < now:
                    status = weighted(rng, {"done": 80, "open": 15, "cancelled": 5})
                else:
                    status = "open"
                contact = (
                    names.person(contact_names[first_contact[i] - 1]) if per_customer[i] else ""
                )
                company = company_of(i)
                tasks.add(
                    id=pk,
                    title=demo_data.task_title(rng, company.name if company else "", contact),
                    notes="",
                    due_at=due,
                    assignee_id=owner_of[i],
                    status=status,
                    completed_at=due if status == "done" else None,
                    customer_id=i + 1,
                    created_by_id=owner_of[i],
                    created_at=due - timedelta(days=rng.randrange(1, 20)),
                )
                yield pk

        loader.load(tasks, task_rows())

        # Deals and leads: the loaders of bench/pipelines.py and bench/reports.py --------
        # (bench/loading.py), on these people and customers, each from a Random of its
        # own so the records above do not change with --deals and --leads.
        deal_owners = [u.pk for u in owners]
        customers_of: dict[int, array] = {pk: array("l") for pk in deal_owners}
        for i, owner in enumerate(owner_of):
            if owner is not None:
                customers_of[owner].append(i + 1)
        deal_owners = [pk for pk in deal_owners if customers_of[pk]]
        contact_of = PrimaryContacts(first_contact, per_customer)
        pipelines = {
            p.name: p
            for p in Pipeline.objects.for_deals().filter(name__in=("零售", "批发", "大客户"))
        }
        deals, history = Copier(Deal), Copier(StageHistory)
        deal_count = 0
        if args.deals and deal_owners:
            deal_count = loader.load(
                deals,
                open_deals(
                    count=args.deals,
                    seed=args.seed + 20,
                    now=now,
                    first_id=1,
                    history_id=0,
                    owners=deal_owners,
                    customers_of=customers_of,
                    contact_of=contact_of,
                    name_of=name_of,
                    pipelines=pipelines,
                    open_stages={
                        name: list(p.stages.filter(kind=StageKind.OPEN).order_by("order"))
                        for name, p in pipelines.items()
                    },
                    deals=deals,
                    history=history,
                ),
            )
        history_id = history.count
        if history.count:
            loader.load(history, ())
        leads, lead_history = Copier(Lead), Copier(StageHistory)
        lead_activities = Copier(Activity)
        if args.leads and deal_owners:
            made = History(
                seed=args.seed + 10,
                now=now,
                owners=deal_owners,
                customers_of=customers_of,
                contact_of=contact_of,
                **history_context(),
                deal_id=deal_count,
                lead_id=0,
                activity_id=n_activities,
                history_id=history_id,
                deals=deals,
                leads=leads,
                history=lead_history,
                activities=lead_activities,
            )

            def lead_rows():
                for _ in range(args.leads):
                    made.lead()
                    yield

            loader.load(leads, lead_rows())
            loader.load(deals, ())
            loader.load(lead_history, ())
            loader.load(lead_activities, ())

    records_done = time.perf_counter()
    if aside:
        print("indexes and foreign keys", flush=True)
        aside.restore()
        aside.report()
    print("sequences, statistics", flush=True)
    step = time.perf_counter()
    with connection.cursor() as cursor:
        for model in loaded:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - our tables
                f"(SELECT COALESCE(max(id), 1) FROM {table}))"
            )
    print(f"  sequences {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    with raw.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE {time.perf_counter() - step:.1f} s")
    rows = sum(n for _table, n, _s in loader.tables)
    print(
        f"done in {time.perf_counter() - total_started:.0f} s: {rows:,} rows in "
        f"{records_done - total_started:.0f} s, then indexes, keys and statistics "
        f"(seed {args.seed}, day {today})"
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    django.setup()
    ensure_database(args.reset)
    from django.core.management import call_command

    from crm.models import Customer

    step = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - step:.1f} s")
    if Customer.objects.exists():
        sys.exit("The database already has customers: run with --reset to start over.")
    try:
        generate(args)
    except BaseException:
        if SetAside.pending:
            print(
                "\nThe load failed with the secondary indexes and foreign keys of its tables "
                "set aside (dropped): run again with --reset.",
                file=sys.stderr,
            )
        raise


if __name__ == "__main__":
    main()
