"""Background list exports (imports/services/exports.py, imports/views_exports.py): a
list export of more rows than settings.CRM_EXPORT_BACKGROUND_ROWS becomes a job whose
file a worker writes with the list's filters and sort, the creator's data scope and
field permissions, formulas kept inert; its page shows the progress and, once done, the
download, which only the creator and admins get; the file goes after its retention.
Also the activity and task list exports, which every list now has."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import capfirst
from openpyxl import load_workbook

from accounts.models import DataScope, User
from crm import exports
from crm.models import Customer, TaskStatus
from crm.views.base import RecordListView
from crm.views.exports import list_view_for
from imports.models import ExportJob, ExportStatus
from imports.services import exports as services
from imports.services.retention import delete_expired_files

from .downloads import BOM, as_dicts, restrict
from .downloads import csv_table as read_csv
from .factories import (
    ActivityFactory,
    CustomerFactory,
    TaskFactory,
    crm_permissions,
    give_crm_roles,
    item,
)
from .test_background import celery_worker, wait_for

CUSTOMERS = reverse("customers:export")
ACTIONS = ("view", "add", "change", "export")


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=ACTIONS)
    for name in ("owner", "colleague", "outsider", "admin"):
        person = getattr(org, name)
        person.language = "en"
        person.save(update_fields=["language"])
        setattr(org, name, User.objects.select_related("role", "department").get(pk=person.pk))
    return org


@pytest.fixture(autouse=True)
def threshold(settings):
    """Lists of more than 2 rows export in the background."""
    settings.CRM_EXPORT_BACKGROUND_ROWS = 2


@pytest.fixture
def book(crm):
    level_a, level_c = item("customer_level", "a"), item("customer_level", "c")
    return {
        "mine": [
            CustomerFactory(name="丙公司", owner=crm.owner, level=level_a, phone="+8613800138000"),
            CustomerFactory(name="甲公司", owner=crm.owner, level=level_a),
            CustomerFactory(name="乙公司", owner=crm.owner, level=level_c),
        ],
        "colleague": CustomerFactory(name="同事的公司", owner=crm.colleague, level=level_a),
        "pool": CustomerFactory(name="公海公司", owner=None, level=level_a),
    }


def make_job(user, record_type="customer", query="", fmt="csv", title="Customers") -> ExportJob:
    return ExportJob.objects.create(
        record_type=record_type, created_by=user, query=query, file_format=fmt, title=title
    )


def run(job: ExportJob) -> ExportJob:
    finished = services.run_export(job.pk)
    assert finished is not None
    return finished


def file_rows(job: ExportJob) -> list[dict[str, str]]:
    assert job.status == ExportStatus.DONE, job.message
    with job.file.open("rb") as handle:
        content = handle.read()
    assert content.startswith(BOM)
    return as_dicts(list(csv.reader(io.StringIO(content[len(BOM) :].decode("utf-8")))))


def file_sheet(job: ExportJob):
    assert job.status == ExportStatus.DONE, job.message
    with job.file.open("rb") as handle:
        return load_workbook(io.BytesIO(handle.read())).active


def filename(response) -> str:
    header = response["Content-Disposition"]
    assert header.startswith("attachment;")
    if "filename*=utf-8''" in header:
        return unquote(header.split("filename*=utf-8''", 1)[1])
    return header.split('filename="', 1)[1].rstrip('"')


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


# --- The hand-off -------------------------------------------------------------------------


def test_above_the_threshold_the_export_becomes_a_job_and_its_page(
    client, crm, book, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("imports.tasks.run_export.delay", sent.append)
    client.force_login(crm.owner)
    level = book["mine"][0].level_id

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(
            CUSTOMERS, {"format": "xlsx", "sort": "name", "q": "公司", "page": "2"}
        )

    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:export_job", args=[job.pk])
    assert (job.record_type, job.file_format, job.status) == ("customer", "xlsx", "queued")
    assert job.created_by == crm.owner
    assert job.title == "Customers"
    # The list's filters and sort, without the format or the page.
    assert sorted(job.query.split("&")) == ["q=%E5%85%AC%E5%8F%B8", "sort=name"]
    assert sent == [job.pk], "the task is sent once the job is committed"
    assert level  # the book's customers exist

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert 'hx-trigger="every 1s"' in page.content.decode()


def test_at_or_below_the_threshold_the_export_is_written_in_the_request(client, crm, book):
    client.force_login(crm.owner)
    response = client.get(CUSTOMERS, {"format": "csv", "level": book["mine"][0].level_id})
    assert [row["Name"] for row in as_dicts(read_csv(response))] == ["甲公司", "丙公司"]
    assert not ExportJob.objects.exists()


def test_filters_with_errors_still_send_back_to_the_list(client, crm, book):
    client.force_login(crm.owner)
    response = client.get(CUSTOMERS, {"format": "csv", "stale": "abc"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("customers:list"))
    assert not ExportJob.objects.exists()


# --- The job's file -----------------------------------------------------------------------


def test_the_job_writes_the_lists_rows_in_its_order_and_the_creators_scope(crm, book):
    job = run(make_job(crm.owner, query="sort=name"))
    rows = file_rows(job)
    # Hers only: not her colleague's, not the pool's (scope "own"), sorted as asked.
    assert [row["Name"] for row in rows] == sorted(c.name for c in book["mine"])
    assert "138 0013 8000" in [row["Phone"] for row in rows]
    assert (job.rows_done, job.total_rows) == (3, 3)
    assert job.started_at <= job.finished_at
    assert job.file.name.startswith("exports/")


def test_the_job_applies_the_lists_filters_and_defaults(crm, book):
    level_a = book["mine"][0].level_id
    rows = file_rows(run(make_job(crm.owner, query=f"level={level_a}&sort=-name")))
    assert [row["Name"] for row in rows] == sorted(["丙公司", "甲公司"], reverse=True)
    # The task list shows open tasks when asked for status=open: the same in the file.
    TaskFactory(title="开放的", assignee=crm.owner)
    TaskFactory(title="完成的", assignee=crm.owner, status=TaskStatus.DONE)
    tasks = file_rows(run(make_job(crm.owner, "task", query="status=open", title="Tasks")))
    assert [row["Title"] for row in tasks] == ["开放的"]


def test_a_hidden_fields_column_is_absent_from_the_file(crm, book):
    owner = restrict(crm.owner, "customer", phone="hidden")
    rows = file_rows(run(make_job(owner)))
    assert "Phone" not in rows[0]
    assert "Name" in rows[0] and "Email" in rows[0]


def test_formulas_are_kept_inert_in_both_formats(crm):
    CustomerFactory(name='=HYPERLINK("http://evil.example")', owner=crm.owner)
    CustomerFactory(name="@SUM(A1:A2)", owner=crm.owner)
    CustomerFactory(name="-5", owner=crm.owner)
    names = sorted(row["Name"] for row in file_rows(run(make_job(crm.owner))))
    assert names == ['\'=HYPERLINK("http://evil.example")', "'@SUM(A1:A2)", "-5"]

    sheet = file_sheet(run(make_job(crm.owner, fmt="xlsx", query="sort=name")))
    name_cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert {cell.value for cell in name_cells} == {
        '=HYPERLINK("http://evil.example")',
        "@SUM(A1:A2)",
        "-5",
    }
    assert all(cell.data_type == "s" for cell in name_cells)
    assert sheet.title == "Customers"


def test_xlsx_keeps_datetimes_as_excel_datetimes(crm):
    TaskFactory(
        title="回访",
        assignee=crm.owner,
        due_at=timezone.make_aware(timezone.datetime(2026, 5, 4, 9, 30)),
    )
    sheet = file_sheet(run(make_job(crm.owner, "task", fmt="xlsx", title="Tasks")))
    header = [cell.value for cell in sheet[1]]
    due = sheet.cell(row=2, column=header.index("Due") + 1)
    assert due.is_date and due.value == timezone.datetime(2026, 5, 4, 9, 30)


def test_progress_is_written_to_the_job_row_as_the_file_grows(crm, book, monkeypatch):
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 1)
    seen = []
    write_file = exports.write_file

    def watching(out, fmt, columns, rows, *, progress, **kwargs):
        def tell(count):
            progress(count)
            seen.append(ExportJob.objects.values_list("status", "rows_done", "total_rows").get())

        return write_file(out, fmt, columns, rows, progress=tell, **kwargs)

    monkeypatch.setattr(exports, "write_file", watching)
    run(make_job(crm.owner))
    assert seen == [("running", 1, 3), ("running", 2, 3), ("running", 3, 3)]


def test_a_job_is_written_once_however_often_its_task_comes(crm, book):
    job = make_job(crm.owner)
    assert services.run_export(job.pk) is not None
    assert services.run_export(job.pk) is None  # claimed already: done
    assert services.run_export(10**9) is None  # gone


def test_a_job_whose_worker_died_is_written_again_when_its_task_comes_back(crm, book):
    job = make_job(crm.owner)
    recently = timezone.now() - timedelta(seconds=30)
    ExportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=recently)
    assert services.run_export(job.pk) is None  # alive: another worker writes it
    long_ago = timezone.now() - services.STALLED_AFTER - timedelta(seconds=1)
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=long_ago, rows_done=2000)
    assert len(file_rows(run(job))) == 3


def test_the_file_stops_at_the_most_rows_an_export_writes(crm, book, settings):
    settings.CRM_EXPORT_MAX_ROWS = 2
    job = run(make_job(crm.owner, query="sort=name"))
    assert len(file_rows(job)) == 2
    assert job.rows_done == 2
    assert "first 2 rows" in job.message


def test_a_failure_marks_the_job_failed_with_a_message_to_read(client, crm, book, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "write_file", broken)
    job = run(make_job(crm.owner))
    assert job.status == ExportStatus.FAILED
    assert job.message == "The export could not be written. Try again, or tell an administrator."
    assert not job.file
    client.force_login(crm.owner)
    page = client.get(reverse("imports:export_job", args=[job.pk])).content.decode()
    assert "The export could not be written" in page
    assert "every 1s" not in page


def test_an_export_permission_withdrawn_before_the_run_fails_the_job(crm, book):
    job = make_job(crm.owner)
    crm.set_scope(crm.owner, DataScope.ALL, crm_permissions(("view",)))
    job = run(job)
    assert job.status == ExportStatus.FAILED
    assert job.message == "You may no longer export these records."


# --- Pages and the download -----------------------------------------------------------------


def test_the_page_polls_while_the_job_runs_and_offers_the_file_once_done(client, crm, book):
    client.force_login(crm.owner)
    job = make_job(crm.owner)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.RUNNING,
        total_rows=5000,
        rows_done=2000,
        started_at=timezone.now() - timedelta(seconds=4),
    )
    partial = client.get(reverse("imports:export_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in partial
    assert "2000 of 5000 rows" in partial
    assert 'aria-valuenow="40"' in partial
    assert "rows/s" in partial and "s left" in partial

    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.QUEUED)
    run(job)
    page = client.get(reverse("imports:export_job", args=[job.pk])).content.decode()
    assert "every 1s" not in page
    assert reverse("imports:export_download", args=[job.pk]) in page
    job.refresh_from_db()
    # The site's day (Asia/Shanghai), as the page shows it: from 16:00 UTC it is the next.
    assert f"kept until {timezone.localtime(job.expires_at):%Y-%m-%d}" in page
    expected = job.created_at + timedelta(days=settings.CRM_FILE_RETENTION_DAYS)
    assert job.expires_at == expected


def test_the_download_is_the_file_with_a_name_for_its_creator_and_admins(client, crm, book):
    job = run(make_job(crm.owner, fmt="xlsx", query="sort=name"))
    url = reverse("imports:export_download", args=[job.pk])
    for person in (crm.owner, crm.admin):
        client.force_login(person)
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/vnd.openxmlformats")
        name = filename(response)
        assert name == f"Customers-{timezone.localdate():%Y-%m-%d}.xlsx"
        sheet = load_workbook(io.BytesIO(streamed(response))).active
        assert sheet.max_row == 4


def test_nobody_else_sees_the_job_or_its_file(client, crm, book):
    job = run(make_job(crm.owner))
    urls = [
        reverse(name, args=[job.pk])
        for name in ("imports:export_job", "imports:export_progress", "imports:export_download")
    ]
    manager = crm.set_scope(crm.colleague, DataScope.ALL, crm_permissions(ACTIONS))
    client.force_login(manager)  # sees every customer, not other people's files
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    assert client.get(reverse("imports:export_job", args=["abc"])).status_code == 404
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_shows_ones_own_exports_and_an_admin_everyones(client, crm, book):
    mine = make_job(crm.owner, title="My customers")
    theirs = make_job(crm.colleague, title="Their customers")
    client.force_login(crm.owner)
    page = client.get(reverse("imports:export_list")).content.decode()
    assert "My customers" in page and "Their customers" not in page
    client.force_login(crm.admin)
    page = client.get(reverse("imports:export_list")).content.decode()
    assert "My customers" in page and "Their customers" in page
    assert reverse("imports:export_job", args=[mine.pk]) in page
    assert reverse("imports:export_job", args=[theirs.pk]) in page


# --- Retention ------------------------------------------------------------------------------


def test_the_file_is_deleted_after_its_retention_and_the_page_says_so(client, crm, book):
    job = run(make_job(crm.owner))
    stored, storage = job.file.name, job.file.storage
    assert storage.exists(stored)

    assert delete_expired_files(now=job.expires_at - timedelta(minutes=1)) == 0
    assert storage.exists(stored)
    assert delete_expired_files(now=job.expires_at) == 1
    assert not storage.exists(stored)
    job.refresh_from_db()
    assert not job.file and job.status == ExportStatus.DONE  # the row stays

    client.force_login(crm.owner)
    assert client.get(reverse("imports:export_download", args=[job.pk])).status_code == 404
    page = client.get(reverse("imports:export_job", args=[job.pk])).content.decode()
    assert 'data-testid="export-expired"' in page


# --- Activities and tasks -------------------------------------------------------------------


def test_every_exportable_type_names_the_list_its_export_follows():
    for record_type in exports.exportable_types():
        view = list_view_for(record_type)
        assert issubclass(view, RecordListView)
        assert view.model.record_type == record_type


def test_activity_and_task_lists_offer_their_export_with_the_filters(client, crm):
    client.force_login(crm.owner)
    for name in ("activities", "tasks"):
        page = client.get(
            reverse(f"{name}:list"), {"sort": "-created" if name == "tasks" else "occurred"}
        )
        export = reverse(f"{name}:export")
        assert f"{export}?format=xlsx&amp;sort=" in page.content.decode()


def test_a_rep_exports_only_her_activities(client, crm):
    mine = CustomerFactory(name="我的客户", owner=crm.owner)
    ActivityFactory(customer=mine, author=crm.owner, content="电话沟通报价")
    ActivityFactory(customer=CustomerFactory(owner=crm.colleague), author=crm.colleague)
    client.force_login(crm.owner)
    rows = as_dicts(read_csv(client.get(reverse("activities:export"), {"format": "csv"})))
    assert len(rows) == 1
    assert (rows[0]["Customer"], rows[0]["By"], rows[0]["Content"]) == (
        "我的客户",
        "王芳",
        "电话沟通报价",
    )
    assert list(rows[0]) == [
        "When", "Kind", "Customer", "Contact", "By", "Department", "Content", "Next follow-up",
    ]  # fmt: skip


def test_a_rep_exports_only_her_tasks_in_the_background_too(client, crm):
    for n in range(3):
        TaskFactory(title=f"我的待办{n}", assignee=crm.owner, created_by=crm.owner)
    TaskFactory(title="同事的待办", assignee=crm.colleague)
    client.force_login(crm.owner)
    in_request = as_dicts(
        read_csv(client.get(reverse("tasks:export"), {"assignee": "me", "q": "0"}))
    )
    assert [row["Title"] for row in in_request] == ["我的待办0"]
    assert in_request[0]["Assignee"] == "王芳" and in_request[0]["Status"] == "Open"

    response = client.get(reverse("tasks:export"), {"format": "csv"})
    job = ExportJob.objects.get()
    assert response["Location"] == reverse("imports:export_job", args=[job.pk])
    rows = file_rows(run(job))
    assert sorted(row["Title"] for row in rows) == ["我的待办0", "我的待办1", "我的待办2"]
    assert rows[0]["Created by"] == "王芳"


def test_without_the_export_permission_activities_and_tasks_answer_403(client, crm):
    reader = crm.set_scope(crm.owner, DataScope.ALL, crm_permissions(("view",)))
    client.force_login(reader)
    for name in ("activities", "tasks"):
        assert client.get(reverse(f"{name}:export")).status_code == 403
        assert 'data-testid="export"' not in client.get(reverse(f"{name}:list")).content.decode()


def test_the_file_is_in_the_language_its_creator_reads(crm, book):
    crm.owner.language = "zh-hans"
    crm.owner.save(update_fields=["language"])
    with translation.override("zh-hans"):
        name = str(capfirst(Customer._meta.get_field("name").verbose_name))
    assert name != "Name"
    rows = file_rows(run(make_job(crm.owner)))
    assert name in rows[0]


# --- With a real worker ---------------------------------------------------------------------


@pytest.mark.worker
def test_a_worker_writes_the_export_its_creator_then_downloads(
    transactional_db, crm, client, tmp_path
):
    for name in ("丙公司", "甲公司", "乙公司"):
        CustomerFactory(name=name, owner=crm.owner)
    CustomerFactory(name="同事的公司", owner=crm.colleague)
    files = settings.STORAGES["crm_files"]["OPTIONS"]["location"]
    client.force_login(crm.owner)
    with celery_worker(tmp_path, CRM_FILES_ROOT=files):
        response = client.get(CUSTOMERS, {"format": "xlsx", "sort": "name"})
        job = ExportJob.objects.get()
        assert response["Location"] == reverse("imports:export_job", args=[job.pk])
        wait_for(
            lambda: ExportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(),
            timeout=90,
            what="the worker to write the export",
        )
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE, job.message
    assert (job.rows_done, job.total_rows) == (3, 3)
    download = client.get(reverse("imports:export_download", args=[job.pk]))
    sheet = load_workbook(io.BytesIO(streamed(download))).active
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == ["丙公司", "乙公司", "甲公司"]
