"""Imports and bulk actions fire automation rules only when the user opts in: otherwise
their events are written quiet (`automation_depth` NULL) and the engine passes them by."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from automation.models import RuleRun, RunStatus
from crm.models import Change, Customer, EventKind, Task
from imports.models import ImportJob, ImportStatus
from imports.services import engine, jobs, runner
from pipelines.models import Deal, Lead

from .factories import CustomerFactory, deliver_events, make_rule

TASK = {
    "title": "跟进 {{ record }}",
    "assignee": {"type": "owner"},
    "due": {"amount": 1, "unit": "days"},
}
FILES = {
    "customer": [["客户名称", "手机"], ["甲公司", "13800138001"], ["乙公司", "13800138002"]],
    "lead": [["姓名", "手机"], ["周先生", "13900139001"], ["吴女士", "13900139002"]],
    "deal": [["商机名称", "客户名称"], ["年度采购", "丙公司"], ["设备更新", "丙公司"]],
}
MODELS = {"customer": Customer, "lead": Lead, "deal": Deal}


def csv_file(rows: list[list], name: str = "x.csv") -> SimpleUploadedFile:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode("utf-8-sig"), content_type="text/csv")


def import_file(user, record_type: str, *, run_automation: bool) -> ImportJob:
    """The file of `record_type` imported by `user`, in this process as a worker would."""
    job, _table = jobs.create_job(
        file=csv_file(FILES[record_type]), name="x.csv", record_type=record_type, by=user
    )
    job.run_automation = run_automation
    job.save()
    assert runner.queue(job, enqueue=False)
    runner.run(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_count == 2, job.message
    return job


def created_events(record_type: str):
    return Change.objects.filter(record_type__model=record_type, kind=EventKind.CREATED)


@pytest.fixture
def on_created(org):
    """A rule per importable type: a task for the owner of every new record."""
    CustomerFactory(name="丙公司", owner=org.admin)
    return {
        record_type: make_rule(record_type, "created", actions=[("create_task", TASK)])
        for record_type in FILES
    }


# --- Imports --------------------------------------------------------------------------------


@pytest.mark.parametrize("record_type", ["customer", "lead", "deal"])
def test_an_import_fires_no_rules_unless_the_importer_asks(
    org, on_created, record_type, django_capture_on_commit_callbacks
):
    import_file(org.admin, record_type, run_automation=False)

    events = created_events(record_type).filter(actor_type="import")
    assert events.count() == 2
    assert set(events.values_list("automation_depth", flat=True)) == {None}
    deliver_events(django_capture_on_commit_callbacks)
    assert not RuleRun.objects.exists() and not Task.objects.exists()


@pytest.mark.parametrize("record_type", ["customer", "lead", "deal"])
def test_an_import_with_automation_fires_the_rules_for_each_record(
    org, on_created, record_type, django_capture_on_commit_callbacks
):
    import_file(org.admin, record_type, run_automation=True)

    events = created_events(record_type).filter(actor_type="import")
    assert set(events.values_list("automation_depth", flat=True)) == {0}
    deliver_events(django_capture_on_commit_callbacks)
    imported = (
        MODELS[record_type].objects.exclude(name="丙公司")
        if record_type == "customer"
        else (MODELS[record_type].objects.all())
    )
    runs = RuleRun.objects.filter(rule=on_created[record_type])
    assert sorted(runs.values_list("record_id", flat=True)) == sorted(
        imported.values_list("pk", flat=True)
    )
    assert set(runs.values_list("status", flat=True)) == {RunStatus.DONE}
    assert Task.objects.count() == 2
    assert set(Task.objects.values_list("assignee", flat=True)) == {org.admin.pk}


def test_the_import_principal_is_quiet_until_the_job_opts_in(org):
    job, _table = jobs.create_job(
        file=csv_file(FILES["customer"]), name="x.csv", record_type="customer", by=org.admin
    )
    quiet = engine.principal_for(job)
    assert quiet.actor.kind == "import" and quiet.actor.id == job.pk
    assert quiet.automation_depth is None
    job.run_automation = True
    assert getattr(engine.principal_for(job), "automation_depth", 0) == 0


def test_the_mapping_page_offers_the_choice_and_keeps_it(client, org):
    client.force_login(org.admin)
    client.post(
        reverse("imports:index"), {"record_type": "customer", "file": csv_file(FILES["customer"])}
    )
    job = ImportJob.objects.get()
    page = client.get(reverse("imports:job", args=[job.pk])).content.decode()
    assert (
        'name="run_automation"' in page
        and "checked" not in page.split('name="run_automation"')[1][:40]
    )
    fields = {
        "col_0": "name",
        "col_1": "phone",
        "owner_mode": "importer",
        "duplicate_strategy": "skip",
    }
    response = client.post(
        reverse("imports:job", args=[job.pk]), {**fields, "run_automation": "on"}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.run_automation
    client.post(reverse("imports:job", args=[job.pk]), fields)
    job.refresh_from_db()
    assert not job.run_automation


def test_the_command_runs_rules_only_with_its_flag(org, on_created, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("客户名称,手机\n甲公司,13800138001\n", encoding="utf-8-sig")
    call_command("import_records", str(path), "--type", "customer", stdout=io.StringIO())
    path.write_text("客户名称,手机\n乙公司,13800138002\n", encoding="utf-8-sig")
    call_command(
        "import_records", str(path), "--type", "customer", "--run-automation", stdout=io.StringIO()
    )
    plain, opted = ImportJob.objects.order_by("pk")
    assert (plain.run_automation, opted.run_automation) == (False, True)
    depth = dict(
        created_events("customer")
        .filter(actor_type="import")
        .values_list("actor_id", "automation_depth")
    )
    assert depth == {plain.pk: None, opted.pk: 0}


# --- Bulk actions ---------------------------------------------------------------------------


@pytest.fixture
def on_owner_changed(org):
    return make_rule(
        "customer",
        "field_changed",
        params={"field": "owner"},
        actions=[("create_task", {**TASK, "title": "新接手 {{ record }}"})],
    )


def transfer(client, customers, to, **extra):
    return client.post(
        reverse("customers:list"),
        {
            "action": "transfer",
            "selected": [c.pk for c in customers],
            "to_owner": to.pk,
            **extra,
        },
    )


def test_the_bulk_bar_offers_to_run_automation(client, org):
    CustomerFactory(owner=org.admin)
    client.force_login(org.admin)
    page = client.get(reverse("customers:list")).content.decode()
    bar = page.split('data-testid="bulk-bar"')[1]
    assert bar.count('name="run_automation"') == 1


def test_a_bulk_transfer_fires_no_rules_unless_asked(
    client, org, on_owner_changed, django_capture_on_commit_callbacks
):
    customers = [CustomerFactory(owner=org.admin) for _ in range(3)]
    client.force_login(org.admin)

    assert transfer(client, customers, org.colleague).status_code == 302

    events = Change.objects.filter(kind=EventKind.TRANSFERRED)
    assert events.count() == 3
    assert set(events.values_list("automation_depth", flat=True)) == {None}
    deliver_events(django_capture_on_commit_callbacks)
    assert not RuleRun.objects.exists() and not Task.objects.exists()


def test_a_bulk_transfer_with_automation_fires_the_rule_for_each_customer(
    client, org, on_owner_changed, django_capture_on_commit_callbacks
):
    customers = [CustomerFactory(owner=org.admin) for _ in range(3)]
    client.force_login(org.admin)

    transfer(client, customers, org.colleague, run_automation="1")

    events = Change.objects.filter(kind=EventKind.TRANSFERRED)
    assert set(events.values_list("automation_depth", flat=True)) == {0}
    deliver_events(django_capture_on_commit_callbacks)
    runs = RuleRun.objects.filter(rule=on_owner_changed, status=RunStatus.DONE)
    assert sorted(runs.values_list("record_id", flat=True)) == sorted(c.pk for c in customers)
    assert list(Task.objects.values_list("assignee", flat=True)) == [org.colleague.pk] * 3
