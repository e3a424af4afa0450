"""No request can cause a 500: every URL pattern, as a rep, a manager, customer service
and the admin, with bad values in every parameter it reads.

The demo company is loaded (custom fields of every type, pipelines, leads, deals, saved
views). For each URL pattern the resolver knows (Django admin included), with its path
arguments filled by a record of the right kind (and by out-of-range ids):

1. one GET and one POST find the parameters the view reads: every key looked up in
   request.GET / request.POST (the QueryDict is watched while the view runs) and every
   field of the forms the page renders (with their current values, as a baseline);
2. every value class below goes into all the parameters at once; where that answer is
   a refusal (4xx), which may have stopped the view before it read the rest, the
   parameters are halved until each has been tried without the one that refused;
3. the fields of each POST form on the page, a few at a time, get each value class,
   the other fields keeping the values the page gave them (as the rep and the admin).

Each request runs in a savepoint rolled back afterwards (and the client's cookies are
put back), so what one request changes, deletes or signs out never hides the next.
Every 500 is collected with its exception; the test fails listing them all.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from django.urls import resolve
from django.urls.exceptions import Resolver404

from accounts.models import User

from .urlwalk import Form, Route, arg_name, build, forms_of, routes

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

# Value classes: digits that are not ASCII, integers past 64 bits, calendar edges, NUL
# bytes, long text, odd Unicode, empty values, markup and quotes.
VALUES = [
    "²",
    "١٢٣",
    "99999999999999999999999",
    "9223372036854775808",
    "-1",
    "0",
    "1e400",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00",
    "9999-12-31 23:59:59",
    "a\x00b",
    "x" * 5000,
    "长" * 400,
    "",
    "🙂𝒳\u202e\ufeff",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
]
# On Django admin's pages (the admin's own parameters: changelist filters, _to_field,
# formset counts...) one value per class that ever broke them: a number there is read by
# Django, not by our code, and the full list costs minutes there for no more coverage.
ADMIN_VALUES = [
    "²",
    "99999999999999999999999",
    "0001-01-01",
    "9999-12-31 23:59:59",
    "a\x00b",
    "x" * 5000,
    "",
    "🙂𝒳\u202e\ufeff",
]
# The classes tried on a form's fields (the others keep the page's values).
FIELD_VALUES = [
    "²",
    "99999999999999999999999",
    "0001-01-01T00:00",
    "x" * 5000,
    "",
    "🙂\u202e",
]
NUL = "\x00"
# Fields of a form given a bad value in one request; more in Django admin's forms, whose
# every field is checked on its own whatever the others hold (nothing reads them by hand).
FIELDS_AT_ONCE = 6
ADMIN_FIELDS_AT_ONCE = 16
# Path arguments that are not records: a number past 64 bits, zero, non-ASCII digits.
BAD_IDS = ["99999999999999999999", "0"]
BAD_PATHS = ["²", "99999999999999999999", "a%00b"]

# Views whose POST would end the session the rest of the walk needs.
SKIP = {"accounts:logout"}
USERS = ["anonymous", "wangfang", "zhangwei", "zhaomin", "admin"]
# Who also gets each form's fields tried a few at a time: the forms are the same code for
# everyone, so the rep (own scope) and the admin (everything, Django admin) stand for all;
# the others send every parameter each value, halving where refused.
FORM_FUZZERS = {"wangfang", "admin"}
# Django admin pages of other packages' models (auth groups, django-axes' logs): their
# pages are visited and their parameters tried, their forms not field by field.
THIRD_PARTY_ADMIN = ("admin:auth_", "admin:axes_")


# --- Watching which parameters a view reads ------------------------------------------------

_read: set[str] = set()


@contextmanager
def watching_parameters(monkeypatch):
    """Record every key looked up in a QueryDict while the block runs."""
    _read.clear()
    for name in ("get", "getlist", "__getitem__", "__contains__", "pop"):
        original = getattr(QueryDict, name)

        def recording(self, key, *args, _original=original, **kwargs):
            if isinstance(key, str):
                _read.add(key)
            return _original(self, key, *args, **kwargs)

        monkeypatch.setattr(QueryDict, name, recording)
    try:
        yield _read
    finally:
        monkeypatch.undo()


# --- The records that fill path arguments ------------------------------------------------


class World:
    """Records of each kind, visible to the reps' manager and the admin (王芳's)."""

    def __init__(self):
        from crm.models import Activity, Contact, Customer, Task
        from pipelines.models import Deal, Lead, Pipeline
        from reports.base import reports as all_reports
        from reports.library import customers as customers_report

        rep = User.objects.get(username="wangfang")
        self.by_namespace = {
            "customers": Customer.objects.filter(owner=rep).first(),
            "contacts": Contact.objects.filter(customer__owner=rep).first(),
            "tasks": Task.objects.filter(assignee=rep).first(),
            "activities": Activity.objects.filter(author=rep).first(),
            "leads": Lead.objects.filter(owner=rep).first(),
            "deals": Deal.objects.filter(owner=rep).first(),
        }
        deal = self.by_namespace["deals"]
        self.pipeline = Pipeline.objects.get(pk=deal.pipeline_id)
        self.imports = self.import_records()
        self.notification_id = self.notification_for(rep)
        self.stage_id = deal.stage_id
        self.report_slugs = [report.slug for report in all_reports()]
        # One segment stands for all (the same view over another key), and "all".
        self.segment_keys = [next(iter(customers_report.SEGMENTS)), customers_report.ALL]

    @staticmethod
    def notification_for(rep) -> str:
        """A rep's notification about her deal (the bell's page and buttons)."""
        from automation.notifications import notify
        from pipelines.models import Deal

        deal = Deal.objects.filter(owner=rep).first()
        return str(notify(user=rep, title="报价提醒", record=deal).pk)

    @staticmethod
    def import_records() -> dict[str, str]:
        """The manager's import (mapped, not started) and template, and a rep's export."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        from imports.models import ExportJob
        from imports.services import jobs

        manager = User.objects.get(username="zhangwei")
        upload = SimpleUploadedFile("名单.csv", "客户名称,手机\n甲公司,13800138000\n".encode())
        job, _table = jobs.create_job(
            file=upload, name=upload.name, record_type="customer", by=manager
        )
        template = jobs.save_template(job, name="名单", shared=True, by=manager)
        export = ExportJob.objects.create(
            record_type="customer",
            created_by=User.objects.get(username="wangfang"),
            file_format="csv",
        )
        return {"job_id": str(job.pk), "template_id": str(template.pk), "export_id": str(export.pk)}

    def arguments(self, route: Route) -> list[dict[str, str]]:
        """Ways to fill the route's arguments: the real ones (several for reports)."""
        names = [n for n in map(arg_name, route.parts) if n]
        if not names:
            return [{}]
        namespace = route.name.split(":")[0]
        if namespace == "admin":
            return self.admin_arguments(route, names)
        if namespace == "board":
            values = {"pk": str(self.pipeline.pk), "stage_id": str(self.stage_id)}
            return [{n: values[n] for n in names}]
        if namespace == "imports":
            key = "export_id" if route.name.startswith("imports:export_") else None
            return [{n: self.imports[key or n] for n in names}]
        if namespace == "automation":
            return [dict.fromkeys(names, self.notification_id)]
        if route.name == "reports:report":
            return [{"slug": slug} for slug in self.report_slugs]
        if route.name == "reports:customer_segment":
            return [{"key": key} for key in self.segment_keys]
        record = self.by_namespace.get(namespace)
        if record is None or names != ["pk"]:
            return []
        return [{"pk": str(record.pk)}]

    def admin_arguments(self, route: Route, names: list[str]) -> list[dict[str, str]]:
        label = route.name.removeprefix("admin:")
        if names == ["app_label"]:
            return [{"app_label": app} for app in ("crm", "accounts", "pipelines")]
        model = None
        for candidate in apps.get_models():
            prefix = f"{candidate._meta.app_label}_{candidate._meta.model_name}_"
            if label.startswith(prefix):
                model = candidate
        if label == "auth_user_password_change":
            model = User
        if model is None:
            return []
        first = model._default_manager.order_by("pk").first()
        if first is None:
            return []
        return [{n: str(first.pk) for n in names}]


# --- The walk ----------------------------------------------------------------------------------


class Walker:
    def __init__(self, client: Client, username: str):
        self.client, self.username = client, username
        self.fuzz_forms = username in FORM_FUZZERS
        self.failures: list[str] = []
        self.requests = 0
        self.seen_forms: set[tuple] = set()
        self.slow: list = []

    def send(self, method: str, path: str, data: dict | None = None):
        """One request in a savepoint that is rolled back; the cookies are put back."""
        cookies = SimpleCookie()
        cookies.load(self.client.cookies.output(header="", sep=";"))
        self.requests += 1
        started = time.monotonic()
        with transaction.atomic():
            if method == "get":
                response = self.client.get(path, data or {})
            else:
                response = self.client.post(path, data or {})
            transaction.set_rollback(True)
        self.client.cookies = cookies
        took = time.monotonic() - started
        if took > 0.3:
            summary = {
                k: v if len(v) < 20 else f"{v[:8]}…({len(v)})" for k, v in (data or {}).items()
            }
            self.slow.append((took, method, path, str(summary)[:300]))
        if response.status_code >= 500:
            exc = response.exc_info[1] if getattr(response, "exc_info", None) else None
            shown = {
                k: v if len(v) < 30 else f"{v[:10]}…({len(v)})" for k, v in (data or {}).items()
            }
            self.failures.append(
                f"{self.username} {method.upper()} {path}: {response.status_code} "
                f"{type(exc).__name__ if exc else ''}: {str(exc)[:200]} | {str(shown)[:400]}"
            )
        return response

    def fuzz(
        self, method: str, path: str, keys: set[str], usual: int, values: list[str] = VALUES
    ) -> None:
        """Every value in every key at once. Where that is refused (a 4xx other than the
        page's `usual` answer), one key may have stopped the view before it read the
        rest: the keys are halved, and halved again where still refused, until each key
        was tried without the one that stopped it (about 2·log2(n) requests, not n).
        A key found refusing on its own is tried alone with the next values, the others
        together again."""
        keys = sorted(keys)
        alone: set[str] = set()
        for value in values:
            together = [key for key in keys if key not in alone]
            if together:
                self._split(method, path, together, value, usual, alone)
            for key in sorted(alone.difference(together)):
                self.send(method, path, {key: value})

    def _split(self, method, path, keys: list[str], value: str, usual: int, alone: set) -> None:
        response = self.send(method, path, dict.fromkeys(keys, value))
        refused = 400 <= response.status_code < 500 and response.status_code != usual
        if not refused or NUL in value:
            return
        if len(keys) == 1:
            alone.add(keys[0])
            return
        middle = len(keys) // 2
        self._split(method, path, keys[:middle], value, usual, alone)
        self._split(method, path, keys[middle:], value, usual, alone)

    def fuzz_form(self, form: Form) -> None:
        """The form's fields, a few at a time, get each value; the rest keep the page's
        values (a view that reads parameters by hand may stop at the first bad one; a
        Django form checks every field anyway, so a few at once lose nothing)."""
        path = urlsplit(form.action).path
        query = urlsplit(form.action).query
        try:
            match = resolve(path)
        except Resolver404:
            return
        if match.url_name == "logout":
            return
        key = (form.method, path, tuple(sorted(form.fields)))
        if key in self.seen_forms:
            return  # the same form on another page (the search box, the language menu)
        self.seen_forms.add(key)
        target = f"{path}?{query}" if query else path
        names = list(form.fields)
        size = ADMIN_FIELDS_AT_ONCE if match.namespace == "admin" else FIELDS_AT_ONCE
        for start in range(0, len(names), size):
            chunk = names[start : start + size]
            for value in FIELD_VALUES:
                self.send(form.method, target, {**form.fields, **dict.fromkeys(chunk, value)})

    def walk(self, route: Route, world: World, monkeypatch) -> None:
        for arguments in world.arguments(route):
            path = build(route, arguments)
            if path is None:
                continue
            # Out-of-range and malformed path arguments.
            for name in arguments:
                for bad in BAD_IDS + (BAD_PATHS if route.name.startswith("admin:") else []):
                    self.send("get", build(route, {**arguments, name: bad}))
                    self.send("post", build(route, {**arguments, name: bad}))
            with watching_parameters(monkeypatch) as read:
                page = self.send("get", path, {"_fuzz": "1"})
                get_keys = set(read)
            with watching_parameters(monkeypatch) as read:
                posted = self.send("post", path, {"_fuzz": "1"})
                post_keys = set(read)
            forms = forms_of(page, path)
            for form in forms:
                if form.method == "get" and urlsplit(form.action).path == path:
                    get_keys |= set(form.fields)
            values = ADMIN_VALUES if route.name.startswith("admin:") else VALUES
            self.fuzz("get", path, get_keys - {"_fuzz"}, page.status_code, values)
            self.fuzz("post", path, post_keys - {"_fuzz"}, posted.status_code, values)
            if not self.fuzz_forms or route.name.startswith(THIRD_PARTY_ADMIN):
                continue
            for form in forms:
                if form.method == "post":
                    self.fuzz_form(form)


@pytest.fixture
def demo_company(db):
    call_command("seed_demo", "--force", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.fuzz
@pytest.mark.parametrize("username", USERS)
def test_no_request_answers_500(demo_company, monkeypatch, username):
    world = World()
    client = Client(raise_request_exception=False)
    if username != "anonymous":
        client.force_login(User.objects.get(username=username))
    walker = Walker(client, username)
    by_route = defaultdict(int)
    timings = defaultdict(float)
    for route in routes():
        if route.name in SKIP:
            continue
        before, started = walker.requests, time.monotonic()
        walker.walk(route, world, monkeypatch)
        by_route[route.name] += walker.requests - before
        timings[route.name] += time.monotonic() - started
    print(f"{username}: {walker.requests} requests over {len(by_route)} URL patterns")
    for name, count in sorted(by_route.items(), key=lambda item: -timings[item[0]])[:15]:
        print(f"  {count:6} {timings[name]:7.1f}s {name}")
    for took, method, path, summary in sorted(walker.slow, reverse=True)[:12]:
        print(f"  SLOW {took:5.2f}s {method} {path} {summary}")
    report = ARTIFACTS / f"fuzz-{username}.txt"
    ARTIFACTS.mkdir(exist_ok=True)
    report.write_text("\n".join(walker.failures))
    assert not walker.failures, "\n".join(walker.failures[:200])
