#!/usr/bin/env python
"""What writing record events costs (issue 13): a customer edit and a stage move through
their services, each in its own committed transaction, three ways:

- "no event row": record_change stubbed out (what the write costs without its history
  and event row: the baseline; for this measurement only);
- "event, no subscriber": as shipped with no background subscriber registered (the row
  is written delivered; no message);
- "event + subscriber": a background subscriber registered, so each commit also queues
  a delivery task on the broker (REDIS_URL, else the SQLite broker of `make run`).

    # after bench/generate.py (the bench org and its customers)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/events.py [--repeat 200]

It makes (once) 10 deals "事件基准" on the rep's customers to move, and leaves the rows
it edits as it found them (names and stages flip back and forth).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

TITLE = "事件基准"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    return parser.parse_args(argv)


@contextmanager
def without_event_rows():
    """The services' record_change replaced by a no-op (baseline only)."""
    import crm.services.customers as customers
    import pipelines.services as pipeline_services

    saved = customers.record_change, pipeline_services.record_change
    customers.record_change = pipeline_services.record_change = lambda *a, **k: None
    try:
        yield
    finally:
        customers.record_change, pipeline_services.record_change = saved


@contextmanager
def with_subscriber():
    from crm import events

    events.register_subscriber(events.Subscriber(name="bench.noop", handle=lambda e: None))
    try:
        yield
    finally:
        events.unregister_subscriber("bench.noop")


def timed(fn, repeat: int) -> list[float]:
    from django.db import transaction

    times = []
    for i in range(repeat):
        start = time.perf_counter()
        with transaction.atomic():
            fn(i)
        times.append((time.perf_counter() - start) * 1000)  # the commit included
    return times


def main(argv=None) -> None:
    args = parse_args(argv)
    django.setup()
    from django.db import connection

    from accounts.models import User
    from crm.models import Change, Customer
    from crm.services.customers import update_customer
    from pipelines.models import Deal, Stage
    from pipelines.services import create_deal, move_to_stage

    rep = User.objects.select_related("role", "department").get(username="wangfang")
    mine = list(Customer.objects.filter(owner=rep).order_by("pk")[:10])
    deals = list(Deal.objects.filter(title=TITLE, owner=rep).order_by("pk"))
    for customer in mine[len(deals) :]:
        contact = customer.contacts.order_by("pk").first()
        deal = Deal(title=TITLE, customer=customer, contact=contact, owner=rep)
        deals.append(create_deal(deal=deal, by=rep))
    open_stages = deals[0].pipeline.stages.filter(kind="open").order_by("order", "id")
    stage_a, stage_b = list(open_stages[:2])  # 意向 and 产品介绍 (asks for a contact)
    stages = {stage_a.pk: stage_b, stage_b.pk: stage_a}

    def edit(i: int) -> None:
        customer = Customer.objects.get(pk=mine[i % len(mine)].pk)
        customer.address = "基准地址 A" if customer.address != "基准地址 A" else "基准地址 B"
        update_customer(customer=customer, by=rep)

    def move(i: int) -> None:
        deal = Deal.objects.select_related("stage").get(pk=deals[i % len(deals)].pk)
        move_to_stage(record=deal, stage=stages.get(deal.stage_id, stage_a), by=rep)

    Stage.objects.filter(pk__in=stages)  # warm
    print(
        f"{connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}"
    )
    print(f"broker: {django.conf.settings.CELERY_BROKER_URL.split('@')[-1]}")
    print(f"median / p90 of {args.repeat} committed writes, one at a time\n")
    print(f"{'write':<16}{'no event row':>18}{'event, no sub':>18}{'event + subscriber':>22}")
    modes = {
        "baseline": without_event_rows,
        "plain": contextlib.nullcontext,
        "subscriber": with_subscriber,
    }
    for label, fn in (("customer edit", edit), ("stage move", move)):
        timed(fn, 20)  # warm-up
        # The three ways interleaved, write by write: a machine that gets busier or
        # quieter during the run weighs on all three alike.
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        written = dict.fromkeys(modes, 0)
        for i in range(args.repeat):
            for mode, context in modes.items():
                before = Change.objects.count() if i == 0 else 0
                with context():
                    times[mode].extend(timed(lambda _i, i=i, fn=fn: fn(i), 1))
                if i == 0:
                    written[mode] = Change.objects.count() - before
        results = []
        for mode in modes:
            q = statistics.quantiles(times[mode], n=10)
            results.append(f"{statistics.median(times[mode]):6.2f} / {q[8]:5.2f} ms")
        print(f"{label:<16}{results[0]:>18}{results[1]:>18}{results[2]:>22}")
        print(
            f"{'':<16}{'rows/write: ' + str(written['baseline']):>18}"
            f"{written['plain']:>18}{written['subscriber']:>22}"
        )
    # What the subscriber runs left undelivered is the bench's own; settle it.
    Change.objects.filter(delivered_at__isnull=True, user=rep).update(
        delivered_at=django.utils.timezone.now()
    )


if __name__ == "__main__":
    main()
