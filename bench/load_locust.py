"""The load test's simulated reps (locust) and its stepped runner.

Run by bench/load.py as a subprocess (`python bench/load_locust.py --plan ... --out ...`):
locust in-process, one step per user count; each step spawns the new users (each signs
in), waits until every user has signed in, lets the load settle, then resets the
statistics and measures for `--step-duration` seconds. Results (per step and page, the
sign-ins, the follow-ups posted) go to `--out` as JSON. Also a plain locustfile for
locust's own UI: `LOAD_PLAN=var/bench/load-plan.json locust -f bench/load_locust.py`.

Kept apart from load.py because locust patches the standard library for gevent on
import; Django and its database connection stay in the other process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import gevent
import psutil
from locust import FastHttpUser, between, events, task
from locust.env import Environment

PLAN: dict = {}
STATE = {
    "next_rep": 0,
    "signed_in": 0,
    "sign_in_failed": 0,
    "posted": [],  # markers of follow-ups the server said it stored
    "post_failed": [],  # markers of follow-ups that got an error back
    "sent": [],  # every follow-up sent
    "sign_in_ms": [],
    "errors": [],  # every failed request of the whole run (steps, ramps, settling)
    # page -> [(cpu ms, queries, sql ms, server wall ms)] from X-Load-Server (bench/load_wsgi.py)
    "server": {},
}
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FORM_ERROR = ("invalid-feedback", "alert-danger")
CUSTOMERS = re.compile(r'href="/customers/(\d+)/"')


def load_plan(path: str) -> None:
    PLAN.update(json.loads(Path(path).read_text(encoding="utf-8")))
    Rep.wait_time = between(*PLAN["think"])


if os.environ.get("LOAD_PLAN"):
    load_plan(os.environ["LOAD_PLAN"])


@events.request.add_listener
def _on_request(name, response_time, exception, response=None, **kwargs):
    cost = ((getattr(response, "headers", None) or {}).get("X-Load-Server") or "").split(";")
    if len(cost) == 5:
        STATE["server"].setdefault(name, []).append(
            (float(cost[1]), int(cost[2]), float(cost[3]), float(cost[4]))
        )
    if name.startswith("sign in") and exception is None:
        STATE["sign_in_ms"].append(response_time)
    if exception is not None:
        status = getattr(response, "status_code", None)
        STATE["errors"].append(
            {"name": name, "status": status, "error": str(exception)[:200], "at": time.time()}
        )


def _redirect_ok(response) -> bool:
    """A redirect is fine unless it sends the rep to the sign-in page (session lost)."""
    location = (response.headers or {}).get("Location") or ""
    return "/accounts/login" not in location


class Rep(FastHttpUser):
    """A sales rep's working day, compressed: lists, records, search, the board, tasks,
    and logging follow-ups. Each locust user is one signed-in rep (a rep can be several
    users when there are more users than reps: several tabs or devices)."""

    wait_time = between(1, 2)

    def on_start(self) -> None:
        reps = PLAN["reps"]
        self.index = STATE["next_rep"]
        STATE["next_rep"] += 1
        self.rep = reps[self.index % len(reps)]
        self.seq = 0
        self.rng = random.Random(PLAN["seed"] * 1000 + self.index)
        self.signed_in = False
        with self.client.get(
            "/accounts/login/", name="sign in: page", catch_response=True, allow_redirects=False
        ) as response:
            match = CSRF.search(response.text or "")
            if not match:
                response.failure("no CSRF token on the sign-in page")
                STATE["sign_in_failed"] += 1
                return
        body = urlencode(
            {
                "csrfmiddlewaretoken": match.group(1),
                "username": self.rep["username"],
                "password": PLAN["password"],
                "next": "",
            }
        )
        with self.client.post(
            "/accounts/login/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            name="sign in: post",
            catch_response=True,
            allow_redirects=False,
        ) as response:
            if response.status_code != 302 or not _redirect_ok(response):
                response.failure(f"sign-in refused ({response.status_code})")
                STATE["sign_in_failed"] += 1
                return
        self.signed_in = True
        STATE["signed_in"] += 1
        self.get("home", "/")

    # --- helpers ----------------------------------------------------------------------

    def get(self, name: str, url: str, **kwargs):
        with self.client.get(url, name=name, catch_response=True, allow_redirects=False) as r:
            if 300 <= r.status_code < 400 and not _redirect_ok(r):
                r.failure("redirected to sign in")
            elif r.status_code >= 400 or r.status_code == 0:
                r.failure(f"HTTP {r.status_code}")
            else:
                r.success()
            return r

    def pick(self, key: str):
        return self.rng.choice(self.rep[key])

    # --- the mix: weights are relative frequencies -------------------------------------

    @task(8)
    def customer_list(self) -> None:
        page = self.rng.choice([1, 1, 1, 2, 3])
        self.get("customer list", "/customers/" + (f"?page={page}" if page > 1 else ""))

    @task(5)
    def customer_list_filtered(self) -> None:
        choices = [
            "owner=me",
            "owner=me&follow_up=due",
            "owner=me&stale=30",
            "owner=pool",
            f"level={self.rng.choice(PLAN['levels'])}&owner=me",
            "owner=me&sort=-last_activity",
        ]
        self.get("customer list: filtered", "/customers/?" + self.rng.choice(choices))

    @task(5)
    def customer_quick_search(self) -> None:
        self.get(
            "customer list: quick search", "/customers/?" + urlencode({"q": self.pick("quick")})
        )

    @task(14)
    def customer_detail(self) -> None:
        self.get("customer detail", f"/customers/{self.pick('customers')}/")

    @task(4)
    def contact_list(self) -> None:
        if self.rng.random() < 0.5:
            self.get("contact list", "/contacts/")
        else:
            self.get("contact list", "/contacts/?" + urlencode({"q": self.pick("contact_names")}))

    @task(4)
    def lead_list(self) -> None:
        self.get("lead list", self.rng.choice(["/leads/", "/leads/?owner=me"]))

    @task(4)
    def deal_list(self) -> None:
        self.get(
            "deal list",
            self.rng.choice(
                ["/deals/", "/deals/?owner=me&status=open", "/deals/?closing=month&status=open"]
            ),
        )

    @task(5)
    def board(self) -> None:
        self.get("board", f"/pipelines/{self.rng.choice(PLAN['pipelines'])}/board/")

    @task(6)
    def task_list(self) -> None:
        self.get(
            "tasks",
            self.rng.choice(
                [
                    "/tasks/",
                    "/tasks/",
                    "/tasks/?assignee=me&status=open&due=today",
                    "/tasks/?assignee=me&due=overdue",
                ]
            ),
        )

    @task(8)
    def search(self) -> None:
        self.get("search", "/search/?" + urlencode({"q": self.pick("search")}))

    @task(2)
    def home(self) -> None:
        self.get("home", "/")

    @task(6)
    def log_follow_up(self) -> None:
        """Open one of the rep's customers, then log a follow-up there (htmx POST)."""
        customer = self.pick("own")
        detail = self.get("customer detail", f"/customers/{customer}/")
        match = CSRF.search(detail.text or "") if detail.status_code == 200 else None
        if not match:
            return
        gevent.sleep(self.rng.uniform(*PLAN["think"]))  # typing
        self.seq += 1
        marker = f"[load {PLAN['run']} {self.index}-{self.seq}]"
        now = datetime.now(ZoneInfo(PLAN["time_zone"])).replace(second=0, microsecond=0)
        data = {
            "csrfmiddlewaretoken": match.group(1),
            "kind": self.rng.choice(PLAN["kinds"]),
            "content": self.rng.choice(PLAN["texts"]) + " " + marker,
            "occurred_at": (now - timedelta(minutes=self.rng.randint(1, 90))).strftime(
                "%Y-%m-%dT%H:%M"
            ),
        }
        if self.rng.random() < 0.3:
            due = now + timedelta(days=self.rng.randint(1, 14))
            data["next_follow_up_at"] = due.replace(hour=10, minute=0).strftime("%Y-%m-%dT%H:%M")
        STATE["sent"].append(marker)
        with self.client.post(
            f"/customers/{customer}/activities/new/",
            data=urlencode(data),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "HX-Request": "true",
                "HX-Target": "activity-section",
                "HX-Current-URL": f"{self.host}/customers/{customer}/",
            },
            name="log follow-up (POST)",
            catch_response=True,
            allow_redirects=False,
        ) as response:
            text = response.text or ""
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                STATE["post_failed"].append(marker)
            elif any(sign in text for sign in FORM_ERROR):
                response.failure("form refused: " + re.sub(r"\s+", " ", text[:300]))
                STATE["post_failed"].append(marker)
            else:
                response.success()
                STATE["posted"].append(marker)


# --- The stepped run ----------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used over a step by the web server (master and workers), PostgreSQL
    (the backends of this database), this load generator, and the whole machine: who
    shares the cores. Polled every second, so that backends that start or end during
    the step (CONN_MAX_AGE reconnects) count; PostgreSQL's parallel query workers live
    for one query and are missed (they count under "others")."""

    def __init__(self, server_pid: int, database: str) -> None:
        self.server = psutil.Process(server_pid)
        self.me = psutil.Process()
        self.database = f" {database} "  # in a backend's title: "postgres: 15/main: user db host"

    def _procs(self) -> dict[int, tuple[str, psutil.Process]]:
        procs = {self.me.pid: ("locust", self.me)}
        try:
            for p in [self.server, *self.server.children(recursive=True)]:
                procs[p.pid] = ("gunicorn", p)
        except psutil.Error:
            pass
        for p in psutil.process_iter(["name", "cmdline"]):
            if p.info["name"] == "postgres" and self.database in " ".join(p.info["cmdline"] or ()):
                procs[p.pid] = ("postgres", p)
        return procs

    def poll(self) -> None:
        for pid, (group, p) in self._procs().items():
            try:
                t = p.cpu_times()
                used = t.user + t.system
                if pid not in self.first:
                    # Started during the step: all of its CPU is the step's.
                    self.first[pid] = 0.0 if p.create_time() >= self.t0 else used
                self.last[pid] = (group, used)
            except psutil.Error:
                pass  # exited: its last reading stands

    def _machine(self) -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def start(self) -> None:
        self.t0 = time.time()
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.machine0 = self._machine()
        self.poll()

    def stop(self) -> dict:
        self.poll()
        seconds = time.time() - self.t0
        used = {"gunicorn": 0.0, "postgres": 0.0, "locust": 0.0}
        for pid, (group, cpu) in self.last.items():
            used[group] += cpu - self.first.get(pid, 0.0)
        used["machine"] = self._machine() - self.machine0
        cores = {k: round(v / seconds, 2) for k, v in used.items()}
        cores["others"] = round(
            max(0.0, cores["machine"] - cores["gunicorn"] - cores["postgres"] - cores["locust"]),
            2,
        )
        return {"cores": cores, "cpus": psutil.cpu_count(), "loadavg": list(os.getloadavg())}


def snapshot(env: Environment, seconds: float) -> dict:
    pages = {}
    for (name, method), entry in sorted(env.stats.entries.items()):
        if not entry.num_requests and not entry.num_failures:
            continue
        pages[name] = {
            "method": method,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.num_requests / seconds,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99),
            "max": entry.max_response_time,
            "avg": entry.avg_response_time,
        }
    for name, costs in STATE["server"].items():
        if name in pages and costs:
            n = len(costs)
            cpu = sorted(c[0] for c in costs)
            pages[name]["server"] = {
                "cpu_ms": sum(cpu) / n,
                "cpu_p50": cpu[n // 2],
                "queries": sum(c[1] for c in costs) / n,
                "sql_ms": sum(c[2] for c in costs) / n,
                "wall_ms": sum(c[3] for c in costs) / n,
            }
    total = env.stats.total
    return {
        "seconds": seconds,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": total.num_requests / seconds,
        "p50": total.get_response_time_percentile(0.5),
        "p95": total.get_response_time_percentile(0.95),
        "p99": total.get_response_time_percentile(0.99),
        "pages": pages,
    }


def wait_signed_in(target: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while STATE["signed_in"] + STATE["sign_in_failed"] < target:
        if time.time() > deadline:
            return False
        gevent.sleep(0.2)
    return True


def run(args) -> dict:
    load_plan(args.plan)
    # stop_timeout: at the end each user finishes its task (a follow-up in flight is
    # answered and counted) before it stops.
    env = Environment(user_classes=[Rep], events=events, host=args.host, stop_timeout=20)
    runner = env.create_local_runner()
    meter = CpuMeter(args.server_pid, args.database)
    steps = []
    plan_steps = [int(n) for n in args.steps.split(",")]
    profile_step = len(plan_steps) - 1 if args.profile else None
    if args.profile:
        plan_steps.append(plan_steps[-1])  # the same load again, under the profiler
    started = time.time()
    for i, users in enumerate(plan_steps):
        t0 = time.time()
        runner.start(users, spawn_rate=args.spawn_rate)
        ok = wait_signed_in(users, timeout=max(60.0, users * 2.0))
        ramp = time.time() - t0
        gevent.sleep(args.settle)
        env.stats.reset_all()
        STATE["server"].clear()
        errors_before = len(STATE["errors"])
        profiler = None
        profiled = i == len(plan_steps) - 1 and profile_step is not None
        if profiled:
            profiler = subprocess.Popen(
                [
                    args.py_spy,
                    "record",
                    "--pid",
                    str(args.server_pid),
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--duration",
                    str(int(args.step_duration)),
                    "--nonblocking",
                    "--idle",
                    "-o",
                    args.profile,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        meter.start()
        t1 = time.time()
        while time.time() - t1 < args.step_duration:
            gevent.sleep(min(1.0, args.step_duration - (time.time() - t1)))
            meter.poll()
        seconds = time.time() - t1
        step = snapshot(env, seconds)
        step.update(meter.stop())
        step.update(
            {
                "users": users,
                "signed_in": ok,
                "ramp_seconds": round(ramp, 1),
                "profiled": profiled,
                "errors": STATE["errors"][errors_before:][:20],
            }
        )
        if profiler is not None:
            _out, err = profiler.communicate(timeout=60)
            step["profiler_rc"] = profiler.returncode
            step["profiler_err"] = err.decode(errors="replace")[-500:]
        steps.append(step)
        pages = step["pages"]
        slowest = max(pages.items(), key=lambda kv: kv[1]["p95"])[0] if pages else "-"
        print(
            f"  step {i + 1}/{len(plan_steps)}: {users:4d} users  {step['rps']:6.1f} req/s  "
            f"p50 {step['p50']:5.0f} ms  p95 {step['p95']:5.0f} ms  failures {step['failures']}  "
            f"slowest p95: {slowest}  load {step['loadavg'][0]:.1f}"
            + ("  (under py-spy)" if profiled else ""),
            flush=True,
        )
    runner.stop()
    runner.quit()
    return {
        "started": started,
        "steps": steps,
        "signed_in": STATE["signed_in"],
        "sign_in_failed": STATE["sign_in_failed"],
        "sign_in_ms": STATE["sign_in_ms"],
        "posted": STATE["posted"],
        "post_failed": STATE["post_failed"],
        "sent": STATE["sent"],
        "errors": STATE["errors"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--steps", required=True, help="user counts, e.g. 10,25,50")
    parser.add_argument("--step-duration", type=float, default=40)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--database", default="", help="its name: PostgreSQL CPU of its backends")
    parser.add_argument("--profile", default="", help="py-spy raw output file")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).with_name("py-spy")))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
