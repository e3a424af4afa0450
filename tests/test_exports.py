"""Customer and contact exports (CSV and Excel) at /customers/export/ and
/contacts/export/: the rows are the list's as filtered over what the role may export,
the columns leave out what the role hides, custom fields come with their labels, phones
stay text in Excel and the number of queries does not grow with the rows."""

from datetime import date, datetime
from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import DataScope, User
from crm import exports

from .downloads import as_dicts, restrict, xlsx_book
from .downloads import csv_table as read_csv
from .factories import (
    ContactFactory,
    CustomerFactory,
    TagFactory,
    UserFactory,
    crm_permissions,
    custom_field,
    dictionary,
    give_crm_roles,
    item,
)

CUSTOMERS = reverse("customers:export")
CONTACTS = reverse("contacts:export")
ACTIONS = ("view", "add", "change", "export")


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=ACTIONS)
    for name in ("owner", "colleague", "sub_member", "outsider"):
        person = getattr(org, name)
        person.language = "en"
        person.save(update_fields=["language"])
        setattr(org, name, User.objects.select_related("role", "department").get(pk=person.pk))
    manager = UserFactory(username="manager", name="张经理", department=org.team1, language="en")
    org.manager = org.set_scope(manager, DataScope.ALL, crm_permissions(ACTIONS))
    return org


@pytest.fixture
def fields(db):
    intention = dictionary(
        "intention", "合作意向", [("high", "强烈", "Strong"), ("low", "较弱", "Weak")]
    )
    return {
        "credit_code": custom_field(
            "credit_code", "text", label="统一社会信用代码", label_en="Credit code"
        ),
        "revenue": custom_field("revenue", "money", label="年营业额", label_en="Revenue"),
        "intention": custom_field(
            "intention", "choice", label="合作意向", label_en="Intention", dictionary=intention
        ),
        "founded": custom_field("founded", "date", label="成立日期", label_en="Founded"),
        "listed": custom_field("listed", "boolean", label="是否上市", label_en="Listed"),
        "manager": custom_field("manager", "user", label="客户经理", label_en="Account manager"),
        "hobby": custom_field(
            "hobby", "text", label="爱好", label_en="Hobby", record_type="contact"
        ),
    }


def read_xlsx(response):
    return xlsx_book(response).active


def filename(response) -> str:
    header = response["Content-Disposition"]
    assert header.startswith("attachment;")
    if "filename*=utf-8''" in header:  # RFC 5987: a name beyond ASCII
        return unquote(header.split("filename*=utf-8''", 1)[1])
    return header.split('filename="', 1)[1].rstrip('"')


# --- Which rows ---------------------------------------------------------------------------


@pytest.fixture
def book(crm):
    level_a, level_c = item("customer_level", "a"), item("customer_level", "c")
    return {
        "mine_a": CustomerFactory(name="甲级客户", owner=crm.owner, level=level_a),
        "mine_c": CustomerFactory(name="丙级客户", owner=crm.owner, level=level_c),
        "colleague_a": CustomerFactory(name="同事甲级", owner=crm.colleague, level=level_a),
        "outsider_a": CustomerFactory(name="外部甲级", owner=crm.outsider, level=level_a),
        "pool_a": CustomerFactory(name="公海甲级", owner=None, level=level_a),
    }


def names(response) -> list[str]:
    return [row["Name"] for row in as_dicts(read_csv(response))]


def test_the_export_holds_exactly_the_filtered_rows_the_user_may_export(client, crm, book):
    client.force_login(crm.owner)
    level_a = book["mine_a"].level_id
    assert names(client.get(CUSTOMERS, {"format": "csv", "level": level_a})) == ["甲级客户"]
    # Without filters: the rep's own customers, nobody else's (scope "own").
    assert sorted(names(client.get(CUSTOMERS, {"format": "csv"}))) == ["丙级客户", "甲级客户"]


def test_the_export_follows_the_list_sort(client, crm, book):
    client.force_login(crm.owner)
    assert names(client.get(CUSTOMERS, {"sort": "name"})) == sorted(["丙级客户", "甲级客户"])
    assert names(client.get(CUSTOMERS, {"sort": "-name"})) == sorted(
        ["丙级客户", "甲级客户"], reverse=True
    )


def test_outsiders_records_are_never_exported_whatever_the_filter(client, crm, book):
    client.force_login(crm.owner)
    for params in (
        {},
        {"q": "外部"},
        {"department": crm.team2.pk},
        {"level": book["mine_a"].level_id},
    ):
        exported = names(client.get(CUSTOMERS, {"format": "csv", **params}))
        assert "外部甲级" not in exported
        assert "同事甲级" not in exported
    # Someone outside the scope is no choice of the owner filter: back to the list.
    response = client.get(CUSTOMERS, {"format": "csv", "owner": crm.outsider.pk})
    assert response.status_code == 302


def test_scope_all_exports_everyone_and_the_pool_as_the_list_shows(client, crm, book):
    client.force_login(crm.manager)
    exported = names(client.get(CUSTOMERS, {"level": book["mine_a"].level_id}))
    assert sorted(exported) == sorted(["甲级客户", "同事甲级", "外部甲级", "公海甲级"])
    assert names(client.get(CUSTOMERS, {"owner": "pool"})) == ["公海甲级"]
    listed = client.get(reverse("customers:list"), {"owner": "pool"}).context["object_list"]
    assert [c.name for c in listed] == ["公海甲级"]


def test_below_scope_all_the_public_pool_is_not_exported(client, crm, book):
    """The list shows pool customers to every rep, but exporting them takes the access
    module's "export" rule (exportable_by): the pool is not in a rep's data scope."""
    client.force_login(crm.owner)
    assert "公海甲级" not in names(client.get(CUSTOMERS))
    assert names(client.get(CUSTOMERS, {"owner": "pool"})) == []


def test_contacts_export_follows_the_customers_scope_and_filters(client, crm):
    mine = CustomerFactory(name="我的客户", owner=crm.owner)
    theirs = CustomerFactory(name="别人的客户", owner=crm.outsider)
    ContactFactory(customer=mine, name="张三", is_primary=True, mobile="+8613912345678")
    ContactFactory(customer=mine, name="李四")
    ContactFactory(customer=theirs, name="王五")
    client.force_login(crm.owner)
    rows = as_dicts(read_csv(client.get(CONTACTS, {"format": "csv"})))
    assert sorted(row["Name"] for row in rows) == ["张三", "李四"]
    zhang = next(row for row in rows if row["Name"] == "张三")
    assert zhang["Customer"] == "我的客户"
    assert zhang["Mobile"] == "139 1234 5678"
    assert zhang["Primary contact"] == "Yes"
    assert zhang["Do not contact"] == "No"
    assert zhang["Owner"] == crm.owner.get_full_name()
    primary = as_dicts(read_csv(client.get(CONTACTS, {"primary": "true"})))
    assert [row["Name"] for row in primary] == ["张三"]


def test_filters_with_errors_send_back_to_the_list(client, crm, book):
    client.force_login(crm.owner)
    response = client.get(CUSTOMERS, {"format": "csv", "stale": "abc"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("customers:list"))


# --- Permission and the button ------------------------------------------------------------


def test_without_the_export_permission_403_and_no_button(client, crm, book):
    reader = crm.set_scope(crm.owner, DataScope.ALL, crm_permissions(("view", "add")))
    client.force_login(reader)
    assert client.get(CUSTOMERS).status_code == 403
    assert client.get(CONTACTS, {"format": "xlsx"}).status_code == 403
    for url in (reverse("customers:list"), reverse("contacts:list")):
        page = client.get(url).content.decode()
        assert 'data-testid="export"' not in page
        assert "/export/" not in page


def test_the_button_carries_the_current_filters(client, crm, book):
    client.force_login(crm.owner)
    level = book["mine_a"].level_id
    page = client.get(reverse("customers:list"), {"level": level, "page": 1}).content.decode()
    assert 'data-testid="export"' in page
    assert f"{CUSTOMERS}?format=csv&amp;level={level}" in page
    assert f"{CUSTOMERS}?format=xlsx&amp;level={level}" in page
    contacts_page = client.get(reverse("contacts:list")).content.decode()
    assert f'href="{CONTACTS}?format=xlsx"' in contacts_page


def test_anonymous_users_are_sent_to_sign_in(client, db):
    response = client.get(CUSTOMERS)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- Columns: field permissions and custom fields ------------------------------------------


@pytest.fixture
def described(crm, fields):
    vip = TagFactory(name="VIP")
    customer = CustomerFactory(
        name="上海恒信机械设备有限公司",
        owner=crm.owner,
        level=item("customer_level", "a"),
        phone="+8613800138000",
        email="info@hengxin.example",
        custom={
            "credit_code": "913100001234567890",
            "revenue": "3500000.50",
            "intention": "high",
            "founded": "2015-03-05",
            "listed": False,
            "manager": crm.colleague.pk,
        },
    )
    customer.tags.add(vip)
    ContactFactory(customer=customer, name="张三", custom={"hobby": "钓鱼"})
    return customer


def test_standard_and_custom_columns_with_display_text(client, crm, described):
    client.force_login(crm.owner)
    (row,) = as_dicts(read_csv(client.get(CUSTOMERS)))
    assert row["Name"] == "上海恒信机械设备有限公司"
    assert row["Owner"] == crm.owner.get_full_name()
    assert row["Department"] == "销售部 / 销售一部"
    assert row["Phone"] == "138 0013 8000"
    assert row["Email"] == "info@hengxin.example"
    assert row["Tags"] == "VIP"
    assert row["Level"] == str(item("customer_level", "a").label_en or item("customer_level", "a"))
    # Custom fields: labels in the user's language, choice labels, plain numbers, ISO dates.
    assert row["Credit code"] == "913100001234567890"
    assert row["Revenue"] == "3500000.50"
    assert row["Intention"] == "Strong"
    assert row["Founded"] == "2015-03-05"
    assert row["Listed"] == "No"
    assert row["Account manager"] == crm.colleague.get_full_name()
    (contact,) = as_dicts(read_csv(client.get(CONTACTS)))
    assert contact["Hobby"] == "钓鱼"
    assert "Credit code" not in contact


def test_hidden_standard_and_custom_fields_are_left_out(client, crm, described):
    owner = restrict(crm.owner, phone="hidden", tags="hidden", cf_revenue="hidden")
    client.force_login(owner)
    for fmt in ("csv", "xlsx"):
        response = client.get(CUSTOMERS, {"format": fmt})
        if fmt == "csv":
            header, row = read_csv(response)
        else:
            header, row = ([c.value for c in r] for r in read_xlsx(response).iter_rows())
        for label in ("Phone", "Tags", "Revenue"):
            assert label not in header
        for value in ("138 0013 8000", "+8613800138000", "VIP", "3500000.50", Decimal("3500000.5")):
            assert value not in row
        assert "Intention" in header and "Email" in header
    # Read-only is not hidden: the column is there.
    client.force_login(restrict(crm.owner, phone="readonly"))
    assert "Phone" in read_csv(client.get(CUSTOMERS))[0]


def test_hidden_contact_fields_are_left_out(client, crm, described):
    client.force_login(restrict(crm.owner, "contact", mobile="hidden", cf_hobby="hidden"))
    header, _row = read_csv(client.get(CONTACTS))
    assert "Mobile" not in header and "Hobby" not in header
    assert "Phone" in header


def test_an_inactive_custom_field_is_not_exported(client, crm, described, fields):
    fields["founded"].is_active = False
    fields["founded"].save()
    client.force_login(crm.owner)
    assert "Founded" not in read_csv(client.get(CUSTOMERS))[0]


def test_the_column_builder_is_the_same_for_every_format(crm, described):
    owner = restrict(crm.owner, email="hidden")
    built = [c.name for c in exports.columns(owner, "customer")]
    assert built[:6] == ["name", "type", "level", "source", "industry", "owner"]
    assert "email" not in built
    assert built[-6:] == [
        "cf_credit_code",
        "cf_revenue",
        "cf_intention",
        "cf_founded",
        "cf_listed",
        "cf_manager",
    ]


# --- Excel ------------------------------------------------------------------------------------


def test_xlsx_opens_with_phones_and_codes_as_text_and_numbers_as_numbers(client, crm, described):
    client.force_login(crm.owner)
    sheet = read_xlsx(client.get(CUSTOMERS, {"format": "xlsx"}))
    header, row = (list(r) for r in sheet.iter_rows())
    labels = [cell.value for cell in header]
    cells = dict(zip(labels, row, strict=True))
    assert cells["Phone"].value == "138 0013 8000"
    assert cells["Phone"].data_type == "s"
    assert cells["Phone"].number_format == "@"
    assert cells["Credit code"].value == "913100001234567890"
    assert cells["Credit code"].data_type == "s"
    assert cells["Revenue"].data_type == "n"
    assert Decimal(str(cells["Revenue"].value)) == Decimal("3500000.5")
    assert cells["Founded"].value == datetime(2015, 3, 5)
    assert cells["Intention"].value == "Strong"
    assert isinstance(cells["Created"].value, datetime)
    assert sheet.title == "Customers"


def test_contacts_xlsx_birthday_is_a_date_and_mobile_text(client, crm):
    customer = CustomerFactory(owner=crm.owner)
    ContactFactory(customer=customer, mobile="+8613912345678", birthday=date(1990, 1, 2))
    client.force_login(crm.owner)
    sheet = read_xlsx(client.get(CONTACTS, {"format": "xlsx"}))
    header, row = (list(r) for r in sheet.iter_rows())
    cells = dict(zip([cell.value for cell in header], row, strict=True))
    assert cells["Mobile"].value == "139 1234 5678"
    assert cells["Mobile"].data_type == "s"
    assert cells["Birthday"].value == datetime(1990, 1, 2)


def test_formulas_are_kept_inert(client, crm):
    CustomerFactory(name='=HYPERLINK("http://evil.example","x")', owner=crm.owner)
    CustomerFactory(name="-12.5", owner=crm.owner, phone="+12015550123")
    client.force_login(crm.owner)
    rows = as_dicts(read_csv(client.get(CUSTOMERS, {"sort": "name"})))
    by_phone = {row["Phone"]: row["Name"] for row in rows}
    assert by_phone["+1 201-555-0123"] == "-12.5"
    assert by_phone[""] == '\'=HYPERLINK("http://evil.example","x")'
    sheet = read_xlsx(client.get(CUSTOMERS, {"format": "xlsx"}))
    name_cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in name_cells)
    assert '=HYPERLINK("http://evil.example","x")' in [cell.value for cell in name_cells]


# --- Language and file name -----------------------------------------------------------------


def test_csv_has_a_bom_and_chinese_headers_under_zh_hans(client, crm, described):
    owner = crm.owner
    owner.language = "zh-hans"
    owner.save(update_fields=["language"])
    client.force_login(owner)
    response = client.get(CUSTOMERS, {"format": "csv"})
    header, row = read_csv(response)
    assert header[0] == "名称"
    assert "负责人" in header and "部门" in header and "电话" in header
    assert "统一社会信用代码" in header and "合作意向" in header
    cells = dict(zip(header, row, strict=True))
    assert cells["合作意向"] == "强烈"
    assert cells["是否上市"] == "否"
    name = filename(response)
    assert name.startswith("客户-") and name.endswith(".csv")
    assert "filename*=utf-8''" in response["Content-Disposition"]


def test_file_names_name_the_records_and_the_day(client, crm, book):
    client.force_login(crm.owner)
    assert filename(client.get(CUSTOMERS, {"format": "xlsx"})).startswith("Customers-")
    name = filename(client.get(CONTACTS, {"format": "xlsx"}))
    assert name.startswith("Contacts-") and name.endswith(".xlsx")


def test_an_export_past_the_cap_stops_there_and_says_so(client, crm, monkeypatch):
    monkeypatch.setattr(exports, "MAX_ROWS", 3)
    for n in range(5):
        CustomerFactory(name=f"客户{n}", owner=crm.owner)
    client.force_login(crm.owner)
    for fmt in ("csv", "xlsx"):
        response = client.get(CUSTOMERS, {"format": fmt, "sort": "name"})
        name = filename(response)
        assert "first 3 rows" in name
        if fmt == "csv":
            assert names(response) == ["客户0", "客户1", "客户2"]
        else:
            assert read_xlsx(response).max_row == 4
    messages = [str(m) for m in client.get(reverse("customers:list")).context["messages"]]
    assert any("first 3 rows" in m for m in messages)


# --- Queries do not grow with rows ----------------------------------------------------------


def make_customers(crm, count: int, tags) -> None:
    level = item("customer_level", "a")
    for n in range(count):
        customer = CustomerFactory(
            name=f"批量{n}",
            owner=crm.owner if n % 2 else crm.colleague,
            level=level,
            phone=f"+86138{n:08d}",
            custom={"intention": "high", "manager": crm.owner.pk, "revenue": "10.00"},
            tags=tags,
        )
        ContactFactory(customer=customer, name=f"联系人{n}", custom={"hobby": "x"})


@pytest.mark.parametrize("url", [CUSTOMERS, CONTACTS], ids=["customers", "contacts"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_query_count_does_not_grow_with_rows(
    client, crm, fields, url, fmt, django_assert_max_num_queries
):
    tags = [TagFactory(name="VIP"), TagFactory(name="老客户")]
    manager = crm.set_scope(crm.manager, DataScope.DEPARTMENT, crm_permissions(ACTIONS))
    client.force_login(manager)
    make_customers(crm, 30, tags)
    with CaptureQueriesContext(connection) as small:
        response = client.get(url, {"format": fmt})
    assert response.status_code == 200
    make_customers(crm, 270, tags)
    with django_assert_max_num_queries(len(small)):
        response = client.get(url, {"format": fmt})
    if fmt == "csv":
        assert len(read_csv(response)) == 301
    else:
        assert read_xlsx(response).max_row == 301
