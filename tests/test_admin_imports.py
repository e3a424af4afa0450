"""Configuration from spreadsheets in Django admin (django-import-export): users with
their department and role, and dictionary items. Through the admin's own two steps —
upload and preview (a dry run), then confirm — with the test client, in CSV (UTF-8 and
GBK) and XLSX, Chinese and English headers; rows that break the user form's rules are
errors on their row and nothing is imported; exports carry no password; staff without
the permissions get 403."""

from __future__ import annotations

import csv
import io
import os
import tempfile

import openpyxl
import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role, SecurityNotice, User
from crm.models import ConfigChange, DictionaryItem
from crm.people_copy import forget_people

from .factories import CustomerFactory, DepartmentFactory, UserFactory, item

USER_HEADERS_ZH = ["用户名", "姓名", "邮箱", "手机", "部门", "角色", "启用"]


# --- Helpers -----------------------------------------------------------------------------


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_url(model: str) -> str:
    return reverse(f"admin:{model}_import")


def upload(client, model: str, content: bytes, name: str):
    """Step 1: the import page's form, as a browser posts it; answers the preview."""
    page = client.get(import_url(model))
    assert page.status_code == 200
    choices = {label: value for value, label in page.context["form"].fields["format"].choices}
    extension = name.rsplit(".", 1)[1]
    response = client.post(
        import_url(model),
        {
            "resource": "0",
            "format": choices[extension],
            "import_file": SimpleUploadedFile(name, content),
        },
    )
    assert response.status_code == 200
    return response


def export(client, url: str, extension: str):
    """The export page's form with every column ticked, as rendered."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    choices = {label: value for value, label in form.fields["format"].choices}
    data = {"format": choices[extension], "resource": "0"}
    ticked = [
        name for name, field in form.fields.items() if getattr(field, "is_selectable_field", 0)
    ]
    data.update(dict.fromkeys(ticked, "on"))
    response = client.post(url, data)
    assert response.status_code == 200
    return response.content


def confirm(client, model: str, preview):
    """Step 2: the preview's confirm form, posted as rendered."""
    form = preview.context.get("confirm_form")
    assert form is not None, errors_of(preview)
    return client.post(reverse(f"admin:{model}_process_import"), form.initial)


def errors_of(response) -> list[str]:
    """Every error the preview shows: file-level ones and each invalid row's."""
    result = response.context.get("result")
    if result is None:
        return [str(e) for errors in response.context["form"].errors.values() for e in errors]
    found = [str(e.error) for e in result.base_errors]
    for row in result.invalid_rows:
        for field, messages in row.error_dict.items():
            found += [f"{row.number} {field}: {m}" for m in messages]
    return found


def user_rows(*rows: list) -> list[list]:
    return [USER_HEADERS_ZH, *rows]


@pytest.fixture
def hr_sheet(org):
    """Two new reps and a change to an existing one (the phone as people type it)."""
    return user_rows(
        ["zhouxin", "周欣", "zhouxin@example.com", "139 0013 9000", "销售一部", "销售代表", "是"],
        [
            "wuqiang",
            "吴强",
            "wuqiang@example.com",
            "",
            "销售部/销售二部",
            "销售代表",
            "",
        ],
        ["owner", "王芳芳", "owner@example.com", "+86 138-0013-8000", "销售一部", "销售代表", "是"],
    )


# --- Users ---------------------------------------------------------------------------------


def test_a_csv_with_chinese_headers_previews_without_writing_then_imports(
    admin_client, org, hr_sheet, django_capture_on_commit_callbacks
):
    users_before = User.objects.count()
    preview = upload(admin_client, "accounts_user", csv_bytes(hr_sheet), "reps.csv")

    result = preview.context["result"]
    assert not result.has_errors() and not result.has_validation_errors(), errors_of(preview)
    assert [row.import_type for row in result.valid_rows()] == ["new", "new", "update"]
    # The preview is a dry run: nothing of it is left.
    assert User.objects.count() == users_before
    org.owner.refresh_from_db()
    assert org.owner.name == "王芳"

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = confirm(admin_client, "accounts_user", preview)
    assert response.status_code == 302
    assert response.url == reverse("admin:accounts_user_changelist")

    assert User.objects.count() == users_before + 2
    zhou = User.objects.get(username="zhouxin")
    assert (zhou.name, zhou.department, zhou.role) == ("周欣", org.team1, org.rep_role)
    assert zhou.phone == "+8613900139000"
    assert zhou.is_active and not zhou.is_staff and not zhou.is_superuser
    assert not zhou.has_usable_password()
    wu = User.objects.get(username="wuqiang")
    assert wu.department == org.team2 and wu.is_active  # a blank 启用: a new user is active
    org.owner.refresh_from_db()
    assert (org.owner.name, org.owner.phone) == ("王芳芳", "+8613800138000")
    assert org.owner.check_password("pass-word-123")  # an update leaves the password alone

    # Nothing is sent or queued for the new users.
    # (Only the reload of every process's copy of the people, crm.people_copy.)
    assert mail.outbox == [] and set(callbacks) <= {forget_people}
    assert not SecurityNotice.objects.exists()
    # The admin's history, as an edit there writes it.
    added = LogEntry.objects.filter(action_flag=ADDITION, user=org.admin)
    assert {e.object_repr for e in added} == {"周欣", "吴强"}
    (changed,) = LogEntry.objects.filter(action_flag=CHANGE, object_id=str(org.owner.pk))
    assert changed.get_change_message() == "Changed full name and phone."


def test_an_xlsx_with_english_headers_and_numbers_as_excel_keeps_them(admin_client, org):
    sheet = [
        ["Username", "Name", "E-mail", "Phone", "Department", "Role", "Active"],
        [
            "zhaolei",
            "赵磊",
            "zhaolei@example.com",
            13700137000,
            "销售部 / 销售一部 / 销售一部-华东",
            "销售代表",
            "否",
        ],
        ["sunli", "孙丽", "", 13600136000.0, "销售二部", "", 1],
    ]
    preview = upload(admin_client, "accounts_user", xlsx_bytes(sheet), "reps.xlsx")
    assert confirm(admin_client, "accounts_user", preview).status_code == 302

    zhao = User.objects.get(username="zhaolei")
    assert (zhao.phone, zhao.department, zhao.is_active) == (
        "+8613700137000",
        org.team1_east,
        False,
    )
    sun = User.objects.get(username="sunli")
    assert (sun.phone, sun.role, sun.is_active) == ("+8613600136000", None, True)


def test_a_gbk_csv_as_excel_saves_it_on_chinese_windows(admin_client, org):
    sheet = user_rows(["gaoyuan", "高远", "", "", "销售二部", "销售代表", "是"])
    preview = upload(admin_client, "accounts_user", csv_bytes(sheet, "gbk"), "gbk.csv")
    assert confirm(admin_client, "accounts_user", preview).status_code == 302
    assert User.objects.get(username="gaoyuan").name == "高远"


def test_bad_rows_are_errors_on_their_row_and_nothing_is_imported(admin_client, org):
    users_before = User.objects.count()
    sheet = user_rows(
        ["ok_one", "好人", "", "", "销售一部", "销售代表", "是"],
        ["bad_dept", "甲", "", "", "不存在的部门", "销售代表", "是"],
        ["bad_role", "乙", "", "", "销售一部", "神仙", "是"],
        ["bad_phone", "丙", "", "138 0013 8000 转 5", "销售一部", "销售代表", "是"],
        ["bad_active", "丁", "not-an-email", "", "销售一部", "销售代表", "也许"],
    )
    preview = upload(admin_client, "accounts_user", csv_bytes(sheet), "bad.csv")

    assert preview.context.get("confirm_form") is None
    errors = errors_of(preview)
    assert any(e.startswith("2 department:") and "不存在的部门" in e for e in errors), errors
    assert any(e.startswith("3 role:") and "神仙" in e for e in errors), errors
    assert any(e.startswith("4 phone:") and "转 5" in e for e in errors), errors
    assert any(e.startswith("5 active:") and "也许" in e for e in errors), errors
    assert any(e.startswith("5 email:") for e in errors), errors
    assert [row.number for row in preview.context["result"].invalid_rows] == [2, 3, 4, 5]
    content = preview.content.decode()
    assert "不存在的部门" in content and "Traceback" not in content
    assert User.objects.count() == users_before
    # The upload, which cannot be confirmed, is not left in the temporary folder.
    stored = preview.context["form"].cleaned_data["import_file"].tmp_storage_name
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), stored))


def test_a_confirmed_file_that_no_longer_passes_imports_nothing(admin_client, org):
    """The role is deleted between the preview and the confirmation."""
    gone = Role.objects.create(name="临时角色")
    sheet = user_rows(
        ["first", "一", "", "", "销售一部", "销售代表", "是"],
        ["second", "二", "", "", "销售一部", "临时角色", "是"],
    )
    preview = upload(admin_client, "accounts_user", csv_bytes(sheet), "reps.csv")
    gone.delete()

    response = confirm(admin_client, "accounts_user", preview)
    assert response.status_code == 302
    assert response.url == import_url("accounts_user")
    assert not User.objects.filter(username__in=["first", "second"]).exists()
    assert not LogEntry.objects.exists()
    page = admin_client.get(response.url)
    assert "Nothing was imported" in page.content.decode()


def test_a_department_name_two_departments_share_needs_its_path(admin_client, org):
    east_a = DepartmentFactory(name="华东区", parent=org.team1)
    DepartmentFactory(name="华东区", parent=org.team2)
    sheet = user_rows(["amb", "甲", "", "", "华东区", "", ""])
    errors = errors_of(upload(admin_client, "accounts_user", csv_bytes(sheet), "a.csv"))
    assert any("More than one department" in e and "华东区" in e for e in errors), errors

    sheet = user_rows(["amb", "甲", "", "", "销售一部/华东区", "", ""])
    preview = upload(admin_client, "accounts_user", csv_bytes(sheet), "a.csv")
    confirm(admin_client, "accounts_user", preview)
    assert User.objects.get(username="amb").department == east_a


@pytest.mark.parametrize("header", ["密码", "password", "is_superuser", "职员状态", "Is Staff"])
def test_a_file_with_a_password_staff_or_superuser_column_is_refused(admin_client, org, header):
    sheet = [[*USER_HEADERS_ZH, header], ["sneaky", "甲", "", "", "", "", "是", "1"]]
    preview = upload(admin_client, "accounts_user", csv_bytes(sheet), "a.csv")
    assert preview.context.get("confirm_form") is None
    (error,) = errors_of(preview)
    assert header in error and "never sets" in error
    assert "Traceback" not in preview.content.decode()
    assert not User.objects.filter(username="sneaky").exists()


def test_a_username_twice_in_the_file_or_differing_only_in_case_is_refused(admin_client, org):
    sheet = user_rows(
        ["twice", "一", "", "", "", "", ""],
        ["Twice", "二", "", "", "", "", ""],
        ["OWNER", "王", "", "", "", "", ""],
    )
    errors = errors_of(upload(admin_client, "accounts_user", csv_bytes(sheet), "a.csv"))
    assert any(e.startswith("2 username:") and "Row 1" in e for e in errors), errors
    assert any(e.startswith("3 username:") and "already exists" in e for e in errors), errors


def test_a_file_without_a_username_column_says_so(admin_client, org):
    sheet = [["姓名", "部门"], ["甲", "销售一部"]]
    errors = errors_of(upload(admin_client, "accounts_user", csv_bytes(sheet), "a.csv"))
    assert errors == ["The file has no “username” column; the first row holds the headers."]


def test_the_export_has_the_columns_and_no_password_and_imports_back_unchanged(admin_client, org):
    org.owner.phone = "+8613800138000"
    org.owner.save()
    content = export(admin_client, reverse("admin:accounts_user_export"), "csv")
    assert content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
    text = content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["username", "name", "email", "phone", "department", "role", "active"]
    assert [
        "owner",
        "王芳",
        "owner@example.com",
        "+8613800138000",
        "销售部 / 销售一部",
        "销售代表",
        "Yes",
    ] in rows
    assert "pbkdf2" not in text and "password" not in text.lower()
    assert org.owner.password not in text

    preview = upload(admin_client, "accounts_user", content, "export.csv")
    result = preview.context["result"]
    assert not result.has_validation_errors(), errors_of(preview)
    assert {row.import_type for row in result.valid_rows()} == {"skip"}


def test_in_chinese_the_pages_buttons_and_export_headers_are_chinese(client, org):
    org.admin.language = "zh-hans"
    org.admin.save()
    client.force_login(org.admin)

    changelist = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert 'class="import_link">导入<' in changelist and 'class="export_link">导出<' in changelist
    page = client.get(import_url("accounts_user")).content.decode()
    assert "<code>用户名</code>" in page and "销售部/华东区" in page
    export_page = client.get(reverse("admin:accounts_user_export")).content.decode()
    assert "部门" in export_page

    content = export(client, reverse("admin:accounts_user_export"), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert [c.value for c in next(sheet.rows)] == USER_HEADERS_ZH
    owner = [c.value for c in sheet[[r[0].value for r in sheet.rows].index("owner") + 1]]
    assert owner[4:] == ["销售部 / 销售一部", "销售代表", "是"]


def test_the_import_page_in_english_lists_the_columns(admin_client, org):
    changelist = admin_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert 'class="import_link">Import<' in changelist
    assert 'class="export_link">Export<' in changelist
    page = admin_client.get(import_url("accounts_user")).content.decode()
    assert "<code>username</code>" in page and "<code>用户名</code>" in page
    assert "an administrator sets" in page


def staff(*codenames: str) -> User:
    user = UserFactory(is_staff=True, language="en")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.mark.parametrize(
    "model,codenames,can_import,can_export",
    [
        ("accounts_user", [], False, False),
        ("accounts_user", ["view_user"], False, True),
        ("accounts_user", ["view_user", "change_user"], False, True),
        ("accounts_user", ["add_user", "change_user", "view_user"], True, True),
        ("crm_dictionaryitem", ["view_dictionaryitem"], False, True),
        (
            "crm_dictionaryitem",
            ["add_dictionaryitem", "change_dictionaryitem", "view_dictionaryitem"],
            True,
            True,
        ),
    ],
)
def test_staff_import_and_export_only_with_the_permissions(
    client, org, model, codenames, can_import, can_export
):
    client.force_login(staff(*codenames))
    sheet = csv_bytes(user_rows(["mallory", "甲", "", "", "", "", ""]))

    assert client.get(import_url(model)).status_code == (200 if can_import else 403)
    posted = client.post(
        import_url(model),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("a.csv", sheet)},
    )
    assert posted.status_code == (200 if can_import else 403)
    confirmed = client.post(
        reverse(f"admin:{model}_process_import"),
        {"import_file_name": "tmpabcdefgh", "original_file_name": "a.csv", "format": "0"},
    )
    assert confirmed.status_code == (200 if can_import else 403)
    assert client.get(reverse(f"admin:{model}_export")).status_code == (200 if can_export else 403)
    assert not User.objects.filter(username="mallory").exists()
    if codenames:
        changelist = client.get(reverse(f"admin:{model}_changelist")).content.decode()
        assert ("import_link" in changelist) == can_import
        assert "export_link" in changelist


@pytest.mark.parametrize(
    "fields",
    [
        {"import_file_name": "../../etc/passwd", "format": "0"},
        {"import_file_name": "tmpnosuchfile", "format": "0"},
        {"import_file_name": "tmpnosuchfile", "format": "²"},
        {"import_file_name": "tmpnosuchfile", "format": "99", "resource": "7"},
        {"import_file_name": "a\x00b", "format": "-1"},
    ],
)
def test_a_forged_confirmation_is_a_form_error_not_a_500(admin_client, org, fields):
    response = admin_client.post(
        reverse("admin:accounts_user_process_import"), {"original_file_name": "a.csv", **fields}
    )
    assert response.status_code in (200, 400)
    assert User.objects.count() == 5


def test_an_export_with_a_filter_that_does_not_parse_goes_back_to_the_list(admin_client, org):
    response = admin_client.get(reverse("admin:accounts_user_export") + "?is_active__exact=²")
    assert response.status_code == 302
    assert response.url == reverse("admin:accounts_user_changelist") + "?e=1"


# --- Dictionary items ---------------------------------------------------------------------

ITEM_HEADERS = ["字典", "编码", "名称", "英文名称", "排序", "颜色", "启用"]


def test_dictionary_items_import_add_and_update_and_never_delete(admin_client, org):
    items_before = DictionaryItem.objects.count()
    website_order = item("customer_source", "website").order
    log_before = ConfigChange.objects.count()
    sheet = [
        ITEM_HEADERS,
        ["customer_source", "wechat", "微信", "WeChat", 8, "green", "是"],
        ["customer_source", "website", "官网", "Website", "", "", ""],
        ["客户级别", "e", "E 沉睡客户", "E – dormant", "9", "", "否"],
    ]
    preview = upload(admin_client, "crm_dictionaryitem", xlsx_bytes(sheet), "items.xlsx")
    result = preview.context["result"]
    assert [row.import_type for row in result.valid_rows()] == ["new", "update", "new"]
    assert DictionaryItem.objects.count() == items_before
    assert ConfigChange.objects.count() == log_before  # the dry run's log rolled back

    assert confirm(admin_client, "crm_dictionaryitem", preview).status_code == 302

    assert DictionaryItem.objects.count() == items_before + 2  # nothing deleted
    wechat = item("customer_source", "wechat")
    assert (wechat.label, wechat.label_en, wechat.order, wechat.color) == (
        "微信",
        "WeChat",
        8,
        "green",
    )
    website = item("customer_source", "website")
    # Blank order and 启用 keep the item's; a blank colour is a cleared colour.
    assert (website.label, website.order, website.is_active, website.color) == (
        "官网",
        website_order,
        True,
        "",
    )
    assert item("customer_level", "e").is_active is False
    assert item("customer_source", "referral").label == "客户转介绍"  # not in the file: kept

    logged = ConfigChange.objects.filter(model="crm.dictionaryitem").order_by("id")
    assert [(c.action, c.object_repr, c.source, c.user) for c in logged] == [
        ("create", "WeChat (customer_source.wechat)", "admin import", org.admin),
        ("update", "Website (customer_source.website)", "admin import", org.admin),
        ("create", "E – dormant (customer_level.e)", "admin import", org.admin),
    ]


def test_bad_dictionary_item_rows_are_errors_naming_the_value(admin_client, org):
    sheet = [
        ITEM_HEADERS,
        ["no_such_dictionary", "x", "某", "", "", "", ""],
        ["customer_source", "bad code!", "某", "", "", "", ""],
        ["customer_source", "fine", "某", "", "高", "", ""],
        ["customer_source", "fine2", "", "", "-1", "", ""],
        ["customer_source", "fine", "重复", "", "", "", ""],
    ]
    preview = upload(admin_client, "crm_dictionaryitem", csv_bytes(sheet), "items.csv")
    errors = errors_of(preview)
    assert any(e.startswith("1 dictionary:") and "no_such_dictionary" in e for e in errors), errors
    assert any(e.startswith("2 code:") for e in errors), errors
    assert any(e.startswith("3 order:") and "高" in e for e in errors), errors
    assert any(e.startswith("4 order:") and "-1" in e for e in errors), errors
    assert any(e.startswith("4 label:") for e in errors), errors
    assert any(e.startswith("5 dictionary:") and "Row 3" in e for e in errors), errors
    assert "Traceback" not in preview.content.decode()
    assert not DictionaryItem.objects.filter(code__startswith="fine").exists()


def test_an_item_in_use_is_not_deactivated_by_an_import(admin_client, org):
    CustomerFactory(owner=org.owner, source=item("customer_source", "referral"))
    sheet = [
        ["dictionary", "code", "active"],
        ["customer_source", "referral", "否"],
        ["customer_source", "partner", "否"],
    ]
    preview = upload(admin_client, "crm_dictionaryitem", csv_bytes(sheet), "items.csv")
    (error,) = errors_of(preview)
    assert error.startswith("1 active:") and "still used" in error and "Deactivate" in error

    sheet = [sheet[0], sheet[2]]  # an unused item is deactivated like in the admin
    preview = upload(admin_client, "crm_dictionaryitem", csv_bytes(sheet), "items.csv")
    confirm(admin_client, "crm_dictionaryitem", preview)
    assert item("customer_source", "partner").is_active is False
    assert item("customer_source", "referral").is_active is True


def test_dictionary_items_export_by_code_in_the_admins_language(client, org):
    org.admin.language = "zh-hans"
    org.admin.save()
    client.force_login(org.admin)
    key_account = item("customer_level", "a")
    level = key_account.dictionary
    url = reverse("admin:crm_dictionaryitem_export") + f"?dictionary__id__exact={level.pk}"
    content = export(client, url, "csv")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ITEM_HEADERS
    assert rows[1] == [
        "customer_level",
        "a",
        "A 重点客户",
        "A – key account",
        str(key_account.order),
        "red",
        "是",
    ]
    assert len(rows) == 1 + 4  # the filter of the list applies
