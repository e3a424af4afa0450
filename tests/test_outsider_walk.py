"""The outsider walk: every URL pattern the resolver knows that takes a record id answers
a signed-in rep who may not see the record with a 404 and changes nothing (DESIGN rule 1:
"A record outside the scope is a 404, never a 403 that confirms it exists").

The outsider has a sales role with every action on every record type, scope "own", in
another department (销售二部), and owns nothing. The records are the owner's (销售一部):
a customer (not in the public pool), its contact, an activity, a task, a lead, a deal
and a saved view. Each pattern is requested with GET and with POST (the POST carries
the fields of the form the owner's page has for that URL, names and titles changed, so
a view that forgot its scope check would save them); the database is compared before
and after every request.

A new URL pattern with an argument must be placed below: a record pattern under
RECORD_NAMESPACES (with a record to fill it), anything else under NOT_RECORDS with the
reason, or the walk fails asking for it.

The exceptions, from what the code does:
- 405 where the view does not take the method at all (a POST-only claim, a GET-only
  timeline): it is the answer a missing id gets too, so it confirms nothing.
- Django admin (staff only): a person who is not staff is sent to the admin's own sign-in
  page before any record is read, whatever the id; it shows nothing of the record.
Everything else must be a 404: a 403, a 200 or a redirect to sign-in is a failure.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import access
from accounts.models import DataScope
from automation.notifications import notify
from imports.models import ExportJob
from imports.services import jobs

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    SavedViewFactory,
    TaskFactory,
    item,
    stage,
)
from .urlwalk import Route, arg_names, build, forms_of, routes

# The record that fills a pattern's `pk`, by the pattern's namespace.
RECORD_NAMESPACES = {
    "customers": "customer",
    "contacts": "contact",
    "activities": "activity",
    "tasks": "task",
    "leads": "lead",
    "deals": "deal",
}
# Patterns whose arguments are not records, and why.
NOT_RECORDS = {
    "board:board": "a pipeline: configuration every rep sees; its cards are scoped (test_board)",
    "board:column": "a pipeline and one of its stages (configuration); cards scoped",
    "board:move": "a pipeline; the record id is in the body (checked below)",
    "board:undo": "a pipeline; the move is in the body, its record scoped (test_board)",
    "reports:report": "a report's slug",
    "reports:customer_segment": "a segment's key",
    "admin:app_list": "an app's label (Django admin)",
    "accounts:password_reset_confirm": "a signed reset token for an account, no record",
    "api:pipeline": "a pipeline: configuration, as board:board (tests/test_api_core.py)",
    "api:dictionary": "a data dictionary's code: configuration",
    "api:revoke_token": "one's own API token; another's is a 404 (tests/test_api_tokens.py)",
    "webforms:page": "a web form's public key: the form is public by design",
    "webforms:embed": "a web form's public key",
    "webforms:submit": "a web form's public key",
    "webforms:api": "a web form's public key",
}
# The API's record routes (api:customer-detail, api:lead-move...) answer JSON and have no
# forms to fill: tests/test_api_records.py walks every one of them as the outsider.
API_RECORD_ROUTES = ("api:customer-", "api:contact-", "api:activity-", "api:task-", "api:lead-")
API_RECORD_ROUTES += ("api:deal-",)
# No record has this id.
MISSING = 987654321
# What the POST changes in the owner's form, so a view without its scope check would save.
CHANGED = {
    "name": "外人改的名字",
    "title": "外人改的标题",
    "content": "外人写的跟进",
    "person_name": "外人",
    "company_name": "外人公司",
    "reason": "外人放回公海",
    "note": "外人",
}
# The apps whose rows a request by the outsider must leave as they were.
WATCHED_APPS = ("accounts", "crm", "pipelines", "reports", "imports", "automation", "testapp")


@pytest.fixture
def world(org):
    """The owner's records and the outsider, both reps with every action (scope own)."""
    permissions = [
        f"{record_type.key}.{action}"
        for record_type in access.record_types()
        for action in access.ACTIONS
    ]
    org.owner = org.set_scope(org.owner, DataScope.OWN, permissions)
    org.outsider = org.set_scope(org.outsider, DataScope.OWN, permissions)
    customer = CustomerFactory(owner=org.owner, name="华东精密机械有限公司")
    contact = ContactFactory(customer=customer, name="陈经理")
    lead = LeadFactory(owner=org.owner, company_name="杭州远景科技", person_name="张伟")
    org.records = {
        "customer": customer,
        "contact": contact,
        "activity": ActivityFactory(
            customer=customer, author=org.owner, kind=item("activity_kind", "call")
        ),
        "task": TaskFactory(assignee=org.owner, customer=customer, title="寄样品"),
        "lead": lead,
        "deal": DealFactory(owner=org.owner, customer=customer, contact=contact),
        "saved view": SavedViewFactory(owner=org.owner, name="王芳的视图"),
    }
    org.other_customer = CustomerFactory(owner=org.owner, name="另一家客户")  # to merge with
    # The owner's import (mapped, not started), her own mapping template and an export.
    upload = SimpleUploadedFile("名单.csv", "客户名称,手机\n甲公司,13800138000\n".encode())
    job, _table = jobs.create_job(
        file=upload, name=upload.name, record_type="customer", by=org.owner
    )
    template = jobs.save_template(job, name="我的模板", shared=False, by=org.owner)
    export = ExportJob.objects.create(
        record_type="customer", created_by=org.owner, file_format="csv"
    )
    org.imports = {"job_id": job.pk, "template_id": template.pk, "export": export.pk}
    # The owner's notification (the bell) about her deal, unread.
    org.notification = notify(user=org.owner, title="报价提醒", record=org.records["deal"])
    assert not any(
        access.can(org.outsider, record, "view")
        for key, record in org.records.items()
        if key != "saved view"
    )
    return org


def snapshot() -> dict[str, list[dict]]:
    """Every row of the watched apps (many-to-many tables included)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in WATCHED_APPS
    }


def changed_tables(before, after) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def owners_form_data(owner: Client, path: str, detail: str, extra: dict) -> dict[str, str]:
    """The fields of the owner's forms that post to `path` (on its page or the record's
    detail page), names and titles changed, and `extra`."""
    data: dict[str, str] = {}
    for page in {path, detail}:
        response = owner.get(page)
        for form in forms_of(response, page):
            if form.method == "post" and urlsplit(form.action).path == path:
                data.update(form.fields)
    data.pop("csrfmiddlewaretoken", None)
    return {**data, **{k: v for k, v in CHANGED.items() if k in data}, **extra}


class Walk:
    def __init__(self, world):
        self.world = world
        self.outsider = signed_in(world.outsider)
        self.owner = signed_in(world.owner)
        self.admin_login = reverse("admin:login")
        self.failures: list[str] = []
        self.checked: list[str] = []

    def request(
        self, method: str, path: str, data: dict, *, name: str, allowed=(404,), admin=False
    ) -> None:
        """One request as the outsider: an answer in `allowed` (for the admin: its sign-in
        page), and no row changed."""
        before = snapshot()
        response = getattr(self.outsider, method)(path, data)
        changed = changed_tables(before, snapshot())
        where = f"{method.upper()} {path} ({name})"
        self.checked.append(where)
        location = response.get("Location", "")
        if admin:
            answered = response.status_code == 302 and location.startswith(self.admin_login)
        else:
            answered = response.status_code in allowed
        if not answered:
            self.failures.append(f"{where}: {response.status_code} {location}".rstrip())
        if changed:
            self.failures.append(f"{where} changed {', '.join(changed)}")

    def record_route(self, route: Route, record, detail_name: str) -> None:
        path = build(route, {"pk": str(record.pk)})
        missing = build(route, {"pk": str(MISSING)})
        # The owner reaches it: the record is one this pattern is about.
        owner_answer = self.owner.get(path).status_code
        assert owner_answer != 404, f"the owner gets 404 on {path} ({route.name})"
        detail = reverse(detail_name, args=[record.pk]) if detail_name else path
        self.request("get", path, {}, name=route.name, allowed=self.allowed(missing, "get"))
        # With every POST: the outsider as a new owner, the owner's other customer to merge.
        extra = {"to_owner": self.world.outsider.pk, "other": self.world.other_customer.pk}
        data = owners_form_data(self.owner, path, detail, extra)
        self.request("post", path, data, name=route.name, allowed=self.allowed(missing, "post"))

    def imports_route(self, route: Route, names: list[str]) -> None:
        """An import, a template or an export of the owner's: files and jobs are who
        made them's (and admins'), a 404 to anyone else, GET and POST."""
        ids = self.world.imports
        key = "export" if route.name.startswith("imports:export_") else None
        path = build(route, {n: str(ids[key or n]) for n in names})
        missing = build(route, dict.fromkeys(names, str(MISSING)))
        for method in ("get", "post"):
            self.request(method, path, {}, name=route.name, allowed=self.allowed(missing, method))

    def notification_route(self, route: Route, names: list[str]) -> None:
        """The owner's notification: hers alone, a 404 to anyone else, GET and POST."""
        pk = str(self.world.notification.pk)
        path = build(route, dict.fromkeys(names, pk))
        missing = build(route, dict.fromkeys(names, str(MISSING)))
        for method in ("get", "post"):
            self.request(method, path, {}, name=route.name, allowed=self.allowed(missing, method))

    def allowed(self, missing: str, method: str) -> tuple[int, ...]:
        """404, or 405 where a missing id gets 405 too (the view does not take it)."""
        answer = getattr(self.outsider, method)(missing).status_code
        return (404, 405) if answer == 405 else (404,)

    def admin_route(self, route: Route, names: list[str]) -> None:
        """Staff only: the outsider is sent to the admin's sign-in whatever the id."""
        path = build(route, self.admin_arguments(route, names))
        if path is None:
            return  # a model with no row to fill it with: the gate is the same anyway
        for method in ("get", "post"):
            self.request(method, path, {}, name=route.name, admin=True)

    def admin_arguments(self, route: Route, names: list[str]) -> dict[str, str]:
        """Our record where the model is one of ours, else the model's first row."""
        if route.name == "admin:view_on_site":
            deal = self.world.records["deal"]
            content_type = ContentType.objects.get_for_model(deal)
            return {"content_type_id": str(content_type.pk), "object_id": str(deal.pk)}
        label = route.name.removeprefix("admin:")
        for model in apps.get_models():
            if label.startswith(f"{model._meta.app_label}_{model._meta.model_name}_"):
                record = self.record_of(model) or model._default_manager.order_by("pk").first()
                return dict.fromkeys(names, str(record.pk)) if record else {}
        return {}

    def record_of(self, model):
        for record in self.world.records.values():
            if isinstance(record, model):
                return record
        return None


def test_the_outsider_gets_404_on_every_record_url_and_changes_nothing(world):
    walk = Walk(world)
    unplaced, reached = [], set()
    for route in routes():
        names = arg_names(route)
        namespace = route.name.split(":")[0]
        if not names or route.name in NOT_RECORDS or route.name.startswith(API_RECORD_ROUTES):
            continue
        reached.add(namespace)
        if namespace == "admin":
            walk.admin_route(route, names)
        elif namespace == "imports":
            walk.imports_route(route, names)
        elif namespace == "automation":
            walk.notification_route(route, names)
        elif namespace in RECORD_NAMESPACES and names == ["pk"]:
            record = world.records[RECORD_NAMESPACES[namespace]]
            detail = f"{namespace}:detail" if route.name != f"{namespace}:detail" else ""
            walk.record_route(route, record, detail)
        else:
            unplaced.append(route.name)
    assert not unplaced, f"URL patterns with arguments not placed in this walk: {unplaced}"
    walked = {"customers", "contacts", "tasks", "leads", "deals", "imports", "automation", "admin"}
    assert walked <= reached
    assert not walk.failures, "\n".join(walk.failures)


def test_record_ids_in_a_request_body_are_404_too(world):
    """The board moves the record named in the body; a list deletes the saved view named
    in the body: the outsider's ids are not found either, and nothing changes."""
    walk = Walk(world)
    deal, lead = world.records["deal"], world.records["lead"]
    walk.request(
        "post",
        reverse("board:move", args=[deal.pipeline_id]),
        {"record": deal.pk, "stage": stage("零售", "产品介绍").pk, "expected_stage": deal.stage_id},
        name="board:move (deal)",
    )
    walk.request(
        "post",
        reverse("board:move", args=[lead.pipeline_id]),
        {
            "record": lead.pk,
            "stage": stage("线索", "已指派负责人").pk,
            "expected_stage": lead.stage_id,
        },
        name="board:move (lead)",
    )
    walk.request(
        "post",
        reverse("customers:list"),
        {"delete_view": world.records["saved view"].pk},
        name="customers:list delete_view",
    )
    assert not walk.failures, "\n".join(walk.failures)
