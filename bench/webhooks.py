#!/usr/bin/env python
"""Outbound webhooks with a real worker (issue 18): deliveries per second one worker
process sends to a local receiver (target: 200/s per worker).

    # a database of its own (any migrated one will do; the script migrates it)
    createdb -h 127.0.0.1 -U postgres -T template0 -E UTF8 --lc-collate=C.UTF-8 \\
        --lc-ctype=C.UTF-8 crm_webhooks_bench
    # then (Redis as the broker; a Redis database of its own, no other worker on it)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_webhooks_bench \\
        REDIS_URL=redis://127.0.0.1:6379/7 .venv/bin/python bench/webhooks.py [--events 2000]

1. A superuser "webhook-bench" and one active subscription "基准·webhook" (customers,
   created) to a receiver this script serves on 127.0.0.1 (a threading HTTP server
   answering 200 at once, checking every signature). Private targets are allowed for
   the run (WEBHOOKS_ALLOW_PRIVATE_TARGETS=1).
2. With no worker running, --events customers are created through the service, --batch
   per transaction: each transaction's events queue one delivery message.
3. One worker process (`celery -A crm worker --pool solo`) starts; it hands the events
   to the webhooks subscriber (a delivery row each, in the receipt's transaction; one
   send message per transaction) and sends them. The script waits until every delivery
   is delivered. Deliveries/s = deliveries / (last delivered_at - first created_at):
   the worker's own time for the whole path (event handling, claiming, signing, the
   POST, the attempt log), without its start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "1"

import django  # noqa: E402

TARGET = 200  # deliveries/s per worker process
NAME = "基准·webhook"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret.encode()
        self.ids: set[str] = set()
        self.bad = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = self.headers["X-Kedao-Timestamp"].encode() + b"." + body
        expected = "sha256=" + hmac.new(self.server.secret, message, hashlib.sha256).hexdigest()
        with self.server.lock:
            if not hmac.compare_digest(expected, self.headers["X-Kedao-Signature"]):
                self.server.bad += 1
            self.server.ids.add(self.headers["X-Kedao-Delivery"])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="events per transaction")
    args = parser.parse_args()
    django.setup()

    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Max, Min
    from django.utils import timezone

    from accounts.models import User
    from crm.celery import app
    from crm.models import Customer
    from crm.services.customers import create_customer
    from integrations.webhooks.models import (
        DeliveryStatus,
        WebhookAttempt,
        WebhookDelivery,
        WebhookSubscription,
    )
    from integrations.webhooks.tasks import send_deliveries

    call_command("migrate", verbosity=0)
    admin, _ = User.objects.get_or_create(
        username="webhook-bench", defaults={"is_superuser": True, "is_staff": True, "name": "基准"}
    )
    WebhookSubscription.objects.filter(name=NAME).delete()
    subscription = WebhookSubscription.objects.create(
        name=NAME, url="http://127.0.0.1:1/", owner=admin, record_types=["customer"],
        events=["created"],
    )  # fmt: skip
    receiver = Receiver(subscription.secret)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    subscription.url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    subscription.save(update_fields=["url"])

    with app.connection_for_write() as conn:
        queue = app.conf.task_default_queue
        conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        conn.default_channel.queue_purge(queue)

    print(f"writing {args.events} customers, {args.batch} per transaction (no worker yet)")
    stamp = int(time.time())
    for start in range(0, args.events, args.batch):
        with transaction.atomic():
            for n in range(start, min(start + args.batch, args.events)):
                create_customer(
                    customer=Customer(name=f"基准客户{stamp}-{n}", owner=admin), by=admin
                )

    deliveries = WebhookDelivery.objects.filter(subscription=subscription)
    log = ROOT / "var" / "bench-webhooks-worker.log"
    log.parent.mkdir(exist_ok=True)
    run_worker(
        log, lambda: deliveries.filter(status=DeliveryStatus.DELIVERED).count() >= args.events
    )
    span = deliveries.aggregate(first=Min("created_at"), last=Max("delivered_at"))
    report("events to deliveries", args.events, (span["last"] - span["first"]).total_seconds())

    # The sends alone: every delivery again (as the resend does), queued in messages of
    # --batch ids (what one transaction's events queue), sent by a fresh worker.
    started = timezone.now()
    ids = list(deliveries.order_by("pk").values_list("pk", flat=True))
    deliveries.update(status=DeliveryStatus.PENDING, next_attempt_at=started)
    for start in range(0, len(ids), args.batch):
        send_deliveries.delay(ids[start : start + args.batch])
    run_worker(
        log,
        lambda: (
            deliveries.filter(status=DeliveryStatus.DELIVERED, delivered_at__gt=started).count()
            >= args.events
        ),
    )
    first = WebhookAttempt.objects.filter(
        delivery__subscription=subscription, started_at__gt=started
    ).aggregate(first=Min("started_at"))["first"]
    last = deliveries.aggregate(last=Max("delivered_at"))["last"]
    report("sends (resent deliveries)", args.events, (last - first).total_seconds())

    print(f"receiver: {len(receiver.ids)} distinct delivery ids, {receiver.bad} bad signatures")
    receiver.shutdown()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)


def run_worker(log: Path, finished) -> None:
    """One `celery worker --pool solo` process on the bench's settings, until `finished()`."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    command = [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool", "solo",
               "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]  # fmt: skip
    with log.open("w") as out:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not finished():
            if time.monotonic() > deadline or worker.poll() is not None:
                sys.exit(f"the worker did not finish; see {log}")
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def report(what: str, n: int, seconds: float) -> None:
    rate = n / seconds
    verdict = "OK" if rate >= TARGET else "BELOW TARGET"
    print(
        f"{what}: {n} in {seconds:.2f} s by one worker: {rate:.0f} deliveries/s "
        f"(target ≥ {TARGET}/s: {verdict})"
    )


if __name__ == "__main__":
    main()
