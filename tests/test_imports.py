"""Imports: files in, records exactly as the forms would make them, with history; a preview
that writes nothing; duplicates and scope; undo; the command."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from accounts.models import DataScope, User
from crm.models import Change, Contact, Customer, DictionaryItem, EventKind, FieldType
from crm.services.customers import create_customer
from imports.models import DuplicateStrategy, ImportJob, ImportStatus, OwnerMode
from imports.readers import read_table
from imports.services import engine, jobs, runner, undo
from pipelines.models import Deal, Lead

from .factories import (
    ContactFactory,
    CustomerFactory,
    UserFactory,
    custom_field,
    give_crm_roles,
)

SAMPLES = Path(__file__).parent / "samples"
IMPORT_ALL = [
    f"{t}.{a}"
    for t in ("customer", "contact", "activity", "task", "lead", "deal")
    for a in ("view", "add", "change", "import", "export")
]


def csv_file(rows: list[list], *, encoding: str = "utf-8-sig", name: str = "x.csv"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")


def new_job(user, upload, record_type="customer", **settings) -> ImportJob:
    job, _table = jobs.create_job(file=upload, name=upload.name, record_type=record_type, by=user)
    for name, value in settings.items():
        setattr(job, name, value)
    job.save()
    return job


def run_now(job: ImportJob) -> ImportJob:
    """Queue and run the job in this process (the worker does the same)."""
    assert runner.queue(job, enqueue=False)
    runner.run(job.pk)
    job.refresh_from_db()
    return job


def sample(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (SAMPLES / name).read_bytes())


@pytest.fixture
def people(org):
    """The owners the sample files name, and reps who may import."""
    org.sales1 = UserFactory(username="sales1", name="销售一号", department=org.team1)
    org.sales2 = UserFactory(username="sales2", name="销售二号", department=org.team1)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, IMPORT_ALL))
    return org


# --- The sample files, end to end ------------------------------------------------------------


def test_customers_messy_xlsx_cell_by_cell(people):
    org = people
    custom_field("id_number", FieldType.TEXT, label="身份证号", max_length=18)
    custom_field("founded", FieldType.DATE, label="成立日期")
    custom_field("revenue", FieldType.MONEY, label="年营业额(万元)")
    job = new_job(org.admin, sample("customers_messy.xlsx"))
    headers = job.headers
    mapped = {headers[int(i)]: name for i, name in job.mapping.items()}
    assert mapped["客户名称"] == "name"
    assert mapped["手机号"] == "phone"
    assert mapped["邮箱"] == "email"
    assert mapped["客户等级"] == "level"
    assert mapped["身份证号"] == "cf_id_number"
    assert mapped["成立日期"] == "cf_founded"
    assert mapped["年营业额(万元)"] == "cf_revenue"
    assert job.duplicate_keys == ["phone"]
    # The sample's types, sources, levels and industries are not in the seeded
    # dictionaries: the admin lets the import add them.
    job.create_missing_items = True
    job.save()
    preview = engine.plan(job)
    assert {"VIP", "普通客户"} <= preview.new_items["customer_level"]
    assert not DictionaryItem.objects.filter(label="普通客户").exists()  # a dry run

    job = run_now(job)
    assert job.status == ImportStatus.DONE, job.message
    table = read_table(io.BytesIO((SAMPLES / "customers_messy.xlsx").read_bytes()), name="x.xlsx")
    column = {h: i for i, h in enumerate(table.headers)}
    rows = dict(zip(table.row_numbers, table.rows, strict=True))
    errors = {e.row_number: e.message for e in job.row_errors.all()}
    by_phone = {c.phone: c for c in Customer.objects.all()}
    assert job.created_count == Customer.objects.count() > 400
    assert job.created_count + job.skipped_count + job.error_count == len(table.rows)
    # The first row: a phone Excel stored as a number, an 18-digit ID kept as text.
    first = by_phone["+8618900602677"]
    assert first.name == "韦桂"
    assert first.custom["id_number"] == "354684874526859693"
    assert first.custom["founded"] == "2012-06-08"
    assert first.custom["revenue"] == "38004.01"
    assert first.level.label == "VIP" and first.industry.label == "物流"
    # IDs Excel rounded are errors asking to format the column as text, never stored.
    rounded = [n for n, r in rows.items() if isinstance(r[column["身份证号"]], float)]
    assert rounded and all(
        "format the column as text" in errors[n] or "文本" in errors[n] for n in rounded
    )
    stored_ids = {c.custom.get("id_number") for c in by_phone.values()}
    assert all(v is None or (isinstance(v, str) and len(v) == 18) for v in stored_ids)
    # Every stored phone is E.164, none like 1.89E+10 or 18900602677.0.
    assert all(p.startswith("+861") and len(p) == 14 for p in by_phone)
    # History: each new customer's created event, by the import.
    events = Change.objects.filter(
        record_type=ContentType.objects.get_for_model(Customer), kind=EventKind.CREATED
    )
    assert events.count() == job.created_count
    assert set(events.values_list("actor_type", "actor_id")) == {("import", job.pk)}
    assert job.error_report
    report = read_table(job.error_report.open("rb"), name=job.error_report.name)
    assert report.headers[-1] in ("Error", "错误")
    assert len(report.rows) == job.error_count


@pytest.mark.parametrize("name", ["leads_gbk.csv", "leads_utf8.csv"])
def test_leads_csv_with_owners_stages_and_sources(people, name):
    org = people
    job = new_job(org.admin, sample(name), record_type="lead")
    mapped = {job.headers[int(i)]: f for i, f in job.mapping.items()}
    assert mapped["手机"] == "phone" and mapped["负责人"] == "owner"
    assert mapped["线索状态"] == "stage" and mapped["公司"] == "company_name"
    job = run_now(job)
    assert job.status == ImportStatus.DONE, job.message
    errors = list(job.row_errors.values_list("message", flat=True))
    # "张经理" is nobody one may assign to; "展会获取" no source: each row says so.
    assert any("张经理" in e for e in errors) and any("展会获取" in e for e in errors)
    assert job.created_count == Lead.objects.count() > 50
    table = read_table(io.BytesIO((SAMPLES / name).read_bytes()), name=name)
    column = {h: i for i, h in enumerate(table.headers)}
    by_phone = {"+86" + row[column["手机"]]: row for row in table.rows}
    for lead in Lead.objects.select_related("owner", "stage"):
        row = by_phone[lead.phone]
        assert (lead.person_name, lead.company_name) == (row[column["姓名"]], row[column["公司"]])
        assert lead.stage.name == row[column["线索状态"]]
        assert lead.notes == row[column["需求描述"]]  # line breaks kept
        # An empty owner cell: the import's owner choice, here the importer.
        assert lead.owner.username == (row[column["负责人"]] or "admin")


def test_deals_xlsx_linked_to_customers_by_name(people):
    org = people
    table = read_table(io.BytesIO((SAMPLES / "deals.xlsx").read_bytes()), name="deals.xlsx")
    names = {row[1] for row in table.rows}
    for customer_name in names:
        CustomerFactory(name=customer_name, owner=org.sales1)
    job = new_job(org.admin, sample("deals.xlsx"), record_type="deal")
    mapped = {job.headers[int(i)]: f for i, f in job.mapping.items()}
    assert mapped["客户名称"] == "customer" and mapped["商机名称"] == "title"
    job = run_now(job)
    assert job.status == ImportStatus.DONE, job.message
    assert job.created_count + job.error_count + job.skipped_count == 300
    # The pipeline's later stages require a contact, which the sheet does not give.
    messages = set(job.row_errors.values_list("message", flat=True))
    assert messages and all("联系人" in m for m in messages)
    assert job.created_count == Deal.objects.count() > 20
    column = {h: i for i, h in enumerate(table.headers)}
    by_key = {(row[column["商机名称"]], row[column["客户名称"]]): row for row in table.rows}
    for deal in Deal.objects.select_related("customer", "owner", "stage"):
        row = by_key[(deal.title, deal.customer.name)]
        assert deal.stage.name == row[column["销售阶段"]]
        assert deal.owner.username == row[column["负责人"]]
        assert deal.expected_close_date == row[column["预计成交日期"]]
        assert deal.amount > 0 and deal.amount.as_tuple().exponent == -2
    eleven = Deal.objects.filter(title="批发订单-945", customer__name="上海军华贸易有限公司")
    if eleven:
        assert eleven.get().amount == Decimal("110000.00")  # "11万"


# --- Preview ------------------------------------------------------------------------------------


def test_the_preview_writes_nothing_and_advances_no_sequence(people):
    org = people
    before = CustomerFactory(name="之前")
    job = new_job(
        org.admin,
        csv_file([["客户名称", "手机"], ["甲公司", "13800138000"], ["乙公司", "13900139000"]]),
    )
    events = Change.objects.count()
    result = engine.plan(job)
    assert result.counts["create"] == 2
    assert Customer.objects.count() == 1 and Change.objects.count() == events
    after = CustomerFactory(name="之后")
    assert after.pk == before.pk + 1


def test_values_are_kept_exact(people):
    org = people
    custom_field("credit", FieldType.TEXT, label="信用代码", max_length=30)
    job = new_job(
        org.admin,
        csv_file(
            [
                ["客户名称", "电话", "信用代码", "客户等级"],
                ["甲", "13800138000", "91310000MA1FL0XX1X", "a"],
                ["乙", "1.38E+10", "", ""],
                ["丙", "13800138001", "913100001234567890", "不存在的级别"],
            ]
        ),
    )
    result = engine.plan(job)
    first, second, third = result.rows
    assert first.values["phone"] == "+8613800138000"
    assert first.values["cf_credit"] == "91310000MA1FL0XX1X"
    assert first.values["level"].code == "a"
    assert second.action == "error" and "1.38E+10" in second.errors[0]
    assert third.action == "error" and "不存在的级别" in " ".join(third.errors)


# --- Duplicates and scope ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(DuplicateStrategy))
def test_duplicate_strategies(people, strategy):
    org = people
    existing = CustomerFactory(name="老客户", phone="+8613800138000", owner=org.admin)
    upload = csv_file(
        [
            ["客户名称", "手机", "地址"],
            ["老客户新名", "13800138000", "上海"],
            ["新客户", "13900139000", "北京"],
            ["新客户重复", "13900139000", "杭州"],
        ]
    )
    job = run_now(new_job(org.admin, upload, duplicate_keys=["phone"], duplicate_strategy=strategy))
    existing.refresh_from_db()
    if strategy == DuplicateStrategy.SKIP:
        assert (job.created_count, job.updated_count, job.skipped_count) == (1, 0, 2)
        assert existing.name == "老客户"
    elif strategy == DuplicateStrategy.UPDATE:
        assert (job.created_count, job.updated_count) == (1, 1)
        assert (existing.name, existing.address) == ("老客户新名", "上海")
        # The later row of the file merged into the earlier one's new record.
        assert Customer.objects.get(phone="+8613900139000").address == "杭州"
    else:
        assert job.created_count == 3
        assert Customer.objects.filter(phone="+8613800138000").count() == 2


def test_a_match_outside_the_scope_is_reported_never_updated_nor_created(people):
    org = people
    theirs = CustomerFactory(name="李娜的客户", phone="+8613800138000", owner=org.colleague)
    upload = csv_file([["客户名称", "手机"], ["改名", "13800138000"], ["我的", "13700137000"]])
    for strategy in DuplicateStrategy:
        job = run_now(
            new_job(org.owner, upload, duplicate_keys=["phone"], duplicate_strategy=strategy)
        )
        assert job.error_count == 1, strategy
        message = job.row_errors.get().message
        assert "李娜" in message
        theirs.refresh_from_db()
        assert theirs.name == "李娜的客户"
        assert Customer.objects.filter(phone="+8613800138000").count() == 1
        upload.seek(0)


def test_owners_only_among_people_the_importer_may_assign_to(people):
    org = people
    upload = csv_file([["客户名称", "负责人"], ["甲", "owner"], ["乙", "colleague"], ["丙", ""]])
    job = run_now(new_job(org.owner, upload))
    assert job.created_count == 2 and job.error_count == 1
    assert "colleague" in job.row_errors.get().message
    assert set(Customer.objects.values_list("owner__username", flat=True)) == {"owner"}


def test_round_robin_over_a_department(people):
    org = people
    upload = csv_file([["客户名称"], ["甲"], ["乙"], ["丙"], ["丁"]])
    job = run_now(
        new_job(org.admin, upload, owner_mode=OwnerMode.ROUND_ROBIN, owner_department=org.team1)
    )
    assert job.created_count == 4
    owners = list(Customer.objects.order_by("pk").values_list("owner__username", flat=True))
    team = sorted(User.objects.filter(department=org.team1).values_list("username", flat=True))
    assert owners == [team[i % len(team)] for i in range(4)]


def test_hidden_and_readonly_fields_cannot_be_mapped(people):
    org = people
    role = org.owner.role
    role.field_permissions = {"customer": {"phone": "hidden", "email": "readonly"}}
    role.save()
    job = new_job(
        org.owner, csv_file([["客户名称", "手机", "邮箱"], ["甲", "13800138000", "a@b.cn"]])
    )
    assert set(job.mapping.values()) == {"name"}
    job.mapping = {"0": "name", "1": "phone"}
    job.save()
    assert engine.plan(job).problems


# --- Contacts and activities ---------------------------------------------------------------------


def test_contacts_link_to_their_customer_by_name_or_phone(people):
    org = people
    acme = CustomerFactory(name="甲公司", phone="+8613800138000", owner=org.owner)
    upload = csv_file(
        [
            ["客户", "联系人", "手机"],
            ["甲公司", "张三", "13911112222"],
            ["13800138000", "李四", ""],
            ["无此公司", "王五", ""],
        ]
    )
    job = run_now(new_job(org.owner, upload, record_type="contact"))
    assert job.created_count == 2 and job.error_count == 1
    assert set(Contact.objects.filter(customer=acme).values_list("name", flat=True)) == {
        "张三",
        "李四",
    }


def test_follow_ups_from_an_old_crm(people):
    org = people
    acme = CustomerFactory(name="甲公司", owner=org.sales1)
    ContactFactory(customer=acme, name="张三")
    upload = csv_file(
        [
            ["客户", "联系人", "跟进方式", "跟进内容", "跟进时间", "跟进人"],
            ["甲公司", "张三", "电话", "聊了报价", "2025-03-01 10:00", "sales1"],
        ]
    )
    job = run_now(new_job(org.admin, upload, record_type="activity"))
    assert job.created_count == 1, list(job.row_errors.values_list("message", flat=True))
    activity = acme.activities.get()
    assert activity.author == org.sales1 and activity.contact.name == "张三"
    assert activity.occurred_at.year == 2025


# --- The fast path makes what the service makes --------------------------------------------------


def test_a_bulk_created_customer_equals_a_form_created_one(people):
    org = people
    custom_field("credit", FieldType.TEXT, label="信用代码", max_length=30)
    job = run_now(
        new_job(
            org.admin,
            csv_file(
                [
                    ["客户名称", "手机", "信用代码", "标签"],
                    ["甲公司", "13800138000", "X1", "重点,华东"],
                ]
            ),
        )
    )
    imported = Customer.objects.get(name="甲公司")
    form = create_customer(
        customer=Customer(
            name="乙公司", phone="+8613800138000", custom={"credit": "X1"}, owner=org.admin
        ),
        by=org.admin,
        tags=["重点", "华东"],
    )
    fields = [
        f.attname
        for f in Customer._meta.concrete_fields
        if f.name not in ("id", "name", "created_at", "updated_at")
    ]
    assert {f: getattr(imported, f) for f in fields} == {f: getattr(form, f) for f in fields}
    assert sorted(imported.tags.values_list("name", flat=True)) == ["华东", "重点"]
    ct = ContentType.objects.get_for_model(Customer)
    one = Change.objects.get(record_type=ct, record_id=imported.pk)
    two = Change.objects.get(record_type=ct, record_id=form.pk)
    strip = lambda fields: {k: v for k, v in fields.items() if k not in ("name",)}  # noqa: E731
    assert strip(one.fields) == strip(two.fields)
    assert (one.kind, one.action, one.actor_type, one.actor_id) == (
        "created",
        "created",
        "import",
        job.pk,
    )


# --- All or nothing ------------------------------------------------------------------------------


def test_all_or_nothing_imports_nothing_when_a_row_is_bad(people):
    org = people
    upload = csv_file([["客户名称", "邮箱"], ["甲", "a@b.cn"], ["乙", "not-an-email"]])
    job = run_now(new_job(org.admin, upload, all_or_nothing=True))
    assert job.status == ImportStatus.FAILED
    assert Customer.objects.count() == 0
    assert job.error_count == job.row_errors.count() == 1
    assert job.error_report


# --- Undo -----------------------------------------------------------------------------------------


def test_undo_removes_what_was_created_and_restores_what_was_updated(people):
    org = people
    existing = CustomerFactory(
        name="老客户", phone="+8613800138000", address="旧址", owner=org.admin
    )
    upload = csv_file(
        [
            ["客户名称", "手机", "地址"],
            ["老客户", "13800138000", "新址"],
            ["新客户", "13900139000", "北京"],
        ]
    )
    job = run_now(new_job(org.admin, upload, duplicate_keys=["phone"], duplicate_strategy="update"))
    assert (job.created_count, job.updated_count) == (1, 1)
    plan = undo.plan_undo(job)
    assert (len(plan.created), len(plan.updated), len(plan.conflicts)) == (1, 1, 0)
    summary = undo.undo(job, by=org.admin)
    assert summary["deleted"] == 1 and summary["restored"] == 1
    existing.refresh_from_db()
    assert existing.address == "旧址"
    assert list(Customer.objects.values_list("name", flat=True)) == ["老客户"]
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE and job.undone_by == org.admin
    # The undo is recorded: the restore in history, the deletion as an event.
    assert Change.objects.filter(kind=EventKind.DELETED, actor_id=job.pk).count() == 1
    assert existing.changes.filter(note__contains=str(job.pk)).exists()


def test_undo_leaves_records_changed_since_unless_forced(people):
    from crm.services.customers import update_customer

    org = people
    upload = csv_file([["客户名称", "手机"], ["甲", "13800138000"], ["乙", "13900139000"]])
    job = run_now(new_job(org.admin, upload))
    changed = Customer.objects.get(name="甲")
    changed.address = "后来改的"
    update_customer(customer=changed, by=org.admin)
    plan = undo.plan_undo(job)
    assert [e.record_id for e in plan.conflicts] == [changed.pk]
    summary = undo.undo(job, by=org.admin)
    assert summary["deleted"] == 1 and summary["conflict_count"] == 1
    assert list(Customer.objects.values_list("name", flat=True)) == ["甲"]


def test_undo_forced_removes_changed_records_too(people):
    from crm.services.customers import update_customer

    org = people
    job = run_now(new_job(org.admin, csv_file([["客户名称"], ["甲"]])))
    changed = Customer.objects.get()
    changed.address = "后来改的"
    update_customer(customer=changed, by=org.admin)
    assert undo.undo(job, by=org.admin, force=True)["deleted"] == 1
    assert not Customer.objects.exists()


def test_only_the_importer_or_an_admin_may_undo(people):
    org = people
    job = run_now(new_job(org.owner, csv_file([["客户名称"], ["甲"]])))
    assert undo.may_undo(job, org.owner) and undo.may_undo(job, org.admin)
    assert not undo.may_undo(job, org.colleague)


# --- The command ----------------------------------------------------------------------------------


def test_the_command_imports_and_reports(people, tmp_path, capsys):
    org = people
    path = tmp_path / "customers.csv"
    path.write_text("客户名称,手机\n甲,13800138000\n乙,bad\n", encoding="utf-8-sig")
    call_command("import_records", str(path), "--type", "customer", "--dry-run")
    assert not Customer.objects.exists() and not ImportJob.objects.exists()
    call_command("import_records", str(path), "--type", "customer", "--owner", "sales1")
    out = capsys.readouterr().out
    assert "1 created" in out and "1 errors" in out
    assert Customer.objects.get().owner == org.sales1


# --- Pages ----------------------------------------------------------------------------------------


def test_the_pages_from_upload_to_result(client, people):
    org = people
    client.force_login(org.owner)
    response = client.post(
        reverse("imports:index"),
        {
            "record_type": "customer",
            "file": csv_file([["客户名称", "手机"], ["甲", "13800138000"]]),
        },
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("imports:job", args=[job.pk])
    page = client.get(response.url)
    assert page.status_code == 200 and "客户名称" in page.content.decode()
    response = client.post(
        reverse("imports:job", args=[job.pk]),
        {
            "col_0": "name",
            "col_1": "phone",
            "owner_mode": "importer",
            "duplicate_keys": ["phone"],
            "duplicate_strategy": "skip",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    preview = client.get(reverse("imports:preview", args=[job.pk]))
    assert (
        preview.status_code == 200 and 'data-testid="count-create">1<' in preview.content.decode()
    )
    assert not Customer.objects.exists()
    client.post(reverse("imports:start", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED


def test_not_a_spreadsheet_is_refused_with_a_message_and_nothing_kept(client, people):
    org = people
    client.force_login(org.owner)
    upload = SimpleUploadedFile("photo.xlsx", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    response = client.post(reverse("imports:index"), {"record_type": "customer", "file": upload})
    assert response.status_code == 200
    assert 'data-testid="form-errors"' in response.content.decode()
    assert not ImportJob.objects.exists()


def test_someone_elses_import_is_a_404(client, people):
    org = people
    job = new_job(org.owner, csv_file([["客户名称"], ["甲"]]))
    client.force_login(org.colleague)
    for name in ("job", "preview", "progress", "undo", "file", "errors"):
        assert client.get(reverse(f"imports:{name}", args=[job.pk])).status_code == 404, name


def test_without_the_import_permission_there_is_no_upload(client, org):
    give_crm_roles(org)
    client.force_login(org.owner)
    page = client.get(reverse("imports:index"))
    assert page.status_code == 200 and 'data-testid="upload-form"' not in page.content.decode()
    response = client.post(
        reverse("imports:index"),
        {"record_type": "customer", "file": csv_file([["客户名称"], ["甲"]])},
    )
    assert response.status_code == 403


def test_a_big_file_is_previewed_in_the_background(client, people, settings):
    from imports.services import previews

    org = people
    settings.CRM_IMPORT_PREVIEW_INLINE_ROWS = 1
    job = new_job(org.owner, csv_file([["客户名称", "手机"], ["甲", "13800138000"], ["乙", ""]]))
    client.force_login(org.owner)
    url = reverse("imports:preview", args=[job.pk])
    waiting = client.get(url)
    assert 'data-testid="preview-waiting"' in waiting.content.decode()
    job.refresh_from_db()
    assert job.preview["state"] == previews.RUNNING
    assert client.get(url, headers={"HX-Request": "true"}).get("HX-Refresh") is None
    previews.run(job.pk)  # what the worker does (imports.tasks.preview_import)
    assert client.get(url, headers={"HX-Request": "true"})["HX-Refresh"] == "true"
    page = client.get(url).content.decode()
    assert 'data-testid="count-create">2<' in page
    assert not Customer.objects.exists()
    # Another mapping makes the stored preview stale: it is made again.
    job.refresh_from_db()
    job.duplicate_keys = []
    job.save()
    assert 'data-testid="preview-waiting"' in client.get(url).content.decode()


def test_an_imports_files_are_deleted_after_the_retention_period(people):
    from datetime import timedelta

    from django.utils import timezone

    from imports.services.retention import delete_expired_files

    org = people
    job = run_now(new_job(org.admin, csv_file([["客户名称", "邮箱"], ["甲", "bad"]])))
    assert job.file and job.error_report
    storage, names = job.file.storage, [job.file.name, job.error_report.name]
    assert delete_expired_files() == 0
    job.file.storage.delete(job.file.name)  # the upload went first (by hand)
    ImportJob.objects.filter(pk=job.pk).update(file="")
    assert delete_expired_files(now=timezone.now() + timedelta(days=31)) == 1
    job.refresh_from_db()
    assert not job.error_report and not any(storage.exists(name) for name in names)
    assert job.error_count == 1  # the history stays


def test_a_follow_up_may_name_only_its_contacts_mobile(people):
    org = people
    acme = CustomerFactory(name="甲公司", owner=org.sales1)
    ContactFactory(customer=acme, name="张三", mobile="+8613911112222")
    upload = csv_file(
        [
            ["联系人", "跟进内容", "跟进时间"],
            ["13911112222", "回访", "2025-03-01 10:00"],
            ["13900000000", "无人", "2025-03-01"],
        ]
    )
    job = run_now(new_job(org.admin, upload, record_type="activity"))
    assert job.created_count == 1 and job.error_count == 1
    activity = acme.activities.get()
    assert activity.contact.name == "张三" and activity.customer == acme


def test_a_queued_import_whose_message_was_lost_is_sent_again(people, settings):
    org = people
    job = new_job(org.admin, csv_file([["客户名称"], ["甲"]]))
    assert runner.queue(job, enqueue=False)
    assert runner.stalled_jobs() == []  # just queued
    settings.CRM_IMPORT_STALLED_AFTER = 0
    assert runner.stalled_jobs() == [job.pk]
    runner.run(job.pk)
    assert runner.stalled_jobs() == []


def test_undo_removes_imported_leads_and_deals(people):
    org = people
    leads = run_now(
        new_job(
            org.admin,
            csv_file([["公司", "姓名", "手机"], ["甲公司", "张三", "13800138000"]]),
            record_type="lead",
        )
    )
    assert leads.created_count == 1
    CustomerFactory(name="乙公司", owner=org.admin)
    deals = run_now(
        new_job(org.admin, csv_file([["商机名称", "客户"], ["大单", "乙公司"]]), record_type="deal")
    )
    assert deals.created_count == 1, list(deals.row_errors.values_list("message", flat=True))
    assert undo.undo(deals, by=org.admin)["deleted"] == 1
    assert undo.undo(leads, by=org.admin)["deleted"] == 1
    assert not Deal.objects.exists() and not Lead.objects.exists()


def test_the_undo_page_hands_the_undo_to_a_worker(client, people):
    org = people
    job = run_now(new_job(org.owner, csv_file([["客户名称"], ["甲"]])))
    client.force_login(org.owner)
    response = client.post(reverse("imports:undo", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDOING and Customer.objects.count() == 1
    page = client.get(reverse("imports:job", args=[job.pk])).content.decode()
    assert 'data-testid="progress-poller"' in page
    # A second press does nothing more.
    assert client.post(reverse("imports:undo", args=[job.pk])).status_code == 302
    undo.run_undo(job.pk)  # what the worker does (imports.tasks.undo_import)
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE and job.undone_by == org.owner
    assert not Customer.objects.exists()


def test_an_undo_whose_worker_died_is_sent_again(people, settings):
    org = people
    job = run_now(new_job(org.admin, csv_file([["客户名称"], ["甲"]])))
    assert undo.request_undo(job, by=org.admin)
    assert runner.stalled_undos() == []
    settings.CRM_IMPORT_STALLED_AFTER = 0
    assert runner.stalled_undos() == [job.pk]


def test_planning_deals_costs_no_query_per_row(people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org = people
    CustomerFactory(name="乙公司", owner=org.admin)

    def queries(rows: int) -> int:
        upload = csv_file([["商机名称", "客户"]] + [[f"单{i}", "乙公司"] for i in range(rows)])
        job = new_job(org.admin, upload, record_type="deal", duplicate_keys=[])
        with CaptureQueriesContext(connection) as captured:
            assert engine.plan(job).counts["create"] == rows
        return len(captured)

    assert queries(5) == queries(40)
