"""Custom fields and field permissions on every surface a rep uses: the create and edit
forms, the services behind them, detail pages, list columns, filters, sorting, search
and the history. (Validation per type: test_custom_field_types; admin: *_admin.)"""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import DataScope, User
from crm.models import Change, Contact, Customer, DictionaryItem
from crm.services import customers as services

from .factories import (
    ContactFactory,
    CustomerFactory,
    crm_permissions,
    custom_field,
    dictionary,
    give_crm_roles,
)

CREATE_URL = reverse("customers:create")
LIST_URL = reverse("customers:list")
ACTIONS = ("view", "add", "change", "delete", "export")


@pytest.fixture
def intention(db):
    return dictionary(
        "intention",
        "合作意向",
        [("high", "强烈", "Strong"), ("medium", "一般", "Medium"), ("low", "较弱", "Weak")],
    )


@pytest.fixture
def fields(intention):
    return {
        "credit_code": custom_field(
            "credit_code",
            "text",
            label="统一社会信用代码",
            unique=True,
            pattern=r"[0-9A-HJ-NPQRTUWXY]{18}",
            pattern_message="请输入 18 位统一社会信用代码",
            pattern_message_en="Enter the 18-character credit code",
        ),
        "staff": custom_field(
            "staff", "integer", label="员工人数", min_value=1, show_in_list=True, filterable=True
        ),
        "revenue": custom_field(
            "revenue", "money", label="年营业额", show_in_list=True, filterable=True
        ),
        "intention": custom_field(
            "intention",
            "choice",
            label="合作意向",
            label_en="Intention",
            dictionary=intention,
            required=True,
            show_in_list=True,
            filterable=True,
            section="商务信息",
        ),
        "founded": custom_field("founded", "date", label="成立日期", filterable=True),
        "listed": custom_field("listed", "boolean", label="是否上市", filterable=True),
    }


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=ACTIONS)
    return org


def restrict(user, **levels) -> User:
    """Give the user's role field permissions on customers; returns the reloaded user."""
    role = user.role
    role.field_permissions = {"customer": levels}
    role.save()
    return User.objects.select_related("role", "department").get(pk=user.pk)


def form_data(**extra):
    data = {
        "name": "上海恒信机械设备有限公司",
        "owner": "",
        "intention": "",
        "confirm_duplicate": "on",
    }
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


# --- Forms and services ------------------------------------------------------------------


def test_create_form_offers_the_active_custom_fields_in_their_section(client, crm, fields):
    client.force_login(crm.owner)
    page = client.get(CREATE_URL).content.decode()
    for label in ("统一社会信用代码", "员工人数", "年营业额", "合作意向", "商务信息", "强烈"):
        assert label in page
    fields["founded"].is_active = False
    fields["founded"].save()
    assert "成立日期" not in client.get(CREATE_URL).content.decode()


def test_a_required_custom_field_left_empty_is_an_error_and_nothing_is_saved(client, crm, fields):
    client.force_login(crm.owner)
    response = client.post(CREATE_URL, form_data(owner=crm.owner.pk))
    assert response.status_code == 200
    assert "cf_intention" in response.context["form"].errors
    assert not Customer.objects.exists()


def test_custom_values_are_validated_and_stored_by_key(client, crm, fields):
    client.force_login(crm.owner)
    response = client.post(
        CREATE_URL,
        form_data(
            owner=crm.owner.pk,
            cf_credit_code="91310000MA1FL8XQ30",
            cf_staff="1,200",
            cf_revenue="¥3,500,000.5",
            cf_intention="high",
            cf_founded="2015年3月5日",
            cf_listed="false",
        ),
    )
    assert response.status_code == 302, response.context["form"].errors
    customer = Customer.objects.get()
    assert customer.custom == {
        "credit_code": "91310000MA1FL8XQ30",
        "staff": 1200,
        "revenue": "3500000.50",
        "intention": "high",
        "founded": "2015-03-05",
        "listed": False,
    }


def test_bad_custom_values_get_their_messages_and_change_nothing(client, crm, fields):
    client.force_login(crm.owner)
    response = client.post(
        CREATE_URL,
        form_data(
            owner=crm.owner.pk,
            cf_credit_code="123",
            cf_staff="0",
            cf_revenue="lots",
            cf_intention="nonsense",
        ),
    )
    errors = response.context["form"].errors
    assert errors["cf_credit_code"] == ["请输入 18 位统一社会信用代码"]
    assert set(errors) >= {"cf_staff", "cf_revenue", "cf_intention"}
    assert not Customer.objects.exists()


def test_a_unique_value_already_used_is_refused(client, crm, fields):
    CustomerFactory(owner=crm.outsider, custom={"credit_code": "91310000MA1FL8XQ30"})
    client.force_login(crm.owner)
    response = client.post(
        CREATE_URL,
        form_data(owner=crm.owner.pk, cf_credit_code="91310000MA1FL8XQ30", cf_intention="low"),
    )
    assert response.status_code == 200
    assert "统一社会信用代码" in response.context["form"].errors["cf_credit_code"][0]
    assert Customer.objects.count() == 1


def test_the_database_refuses_a_duplicate_that_slips_past_the_form(crm, fields):
    CustomerFactory(owner=crm.owner, custom={"credit_code": "91310000MA1FL8XQ30"})
    twin = Customer(name="另一家", owner=crm.owner, custom={"credit_code": "91310000MA1FL8XQ30"})
    with pytest.raises(services.ValidationError) as error:
        services.create_customer(customer=twin, by=crm.owner)
    assert "cf_credit_code" in error.value.message_dict
    assert Customer.objects.count() == 1


def test_editing_keeps_custom_values_the_form_does_not_show(client, crm, fields):
    customer = CustomerFactory(
        owner=crm.owner, custom={"intention": "low", "old_key": "kept", "staff": 5}
    )
    fields["staff"].is_active = False
    fields["staff"].save()
    client.force_login(crm.owner)
    form = client.get(reverse("customers:edit", args=[customer.pk])).context["form"]
    assert form["cf_intention"].value() == "low"
    response = client.post(
        reverse("customers:edit", args=[customer.pk]),
        form_data(name=customer.name, cf_intention="medium", owner=None),
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.custom == {"intention": "medium", "old_key": "kept", "staff": 5}
    change = Change.objects.filter(record_id=customer.pk).latest("created_at")
    assert {"field": "custom.intention", "old": "较弱", "new": "一般"} in change.changes


def test_an_inactive_choice_stays_on_the_record_but_is_not_offered(client, crm, fields):
    customer = CustomerFactory(owner=crm.owner, custom={"intention": "low"})
    DictionaryItem.objects.filter(code="low", dictionary__code="intention").update(is_active=False)
    client.force_login(crm.owner)
    edit = client.get(reverse("customers:edit", args=[customer.pk])).context["form"]
    assert ("low", "较弱") in edit.fields["cf_intention"].choices
    create = client.get(CREATE_URL).context["form"]
    assert "low" not in dict(create.fields["cf_intention"].choices)
    assert "较弱" in client.get(reverse("customers:detail", args=[customer.pk])).content.decode()


def test_contacts_have_their_own_custom_fields(client, crm):
    custom_field("hobby", "text", record_type="contact", label="兴趣爱好")
    customer = CustomerFactory(owner=crm.owner)
    client.force_login(crm.owner)
    response = client.post(
        reverse("contacts:create"),
        {"customer": customer.pk, "name": "陈静", "cf_hobby": "高尔夫"},
    )
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert contact.custom == {"hobby": "高尔夫"}
    page = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "兴趣爱好" in page and "高尔夫" in page


# --- Field permissions ---------------------------------------------------------------------


@pytest.fixture
def restricted(crm, fields):
    """The owner's role may only read level and 年营业额, and not see phone or 员工人数."""
    crm.owner = restrict(
        crm.owner, level="readonly", cf_revenue="readonly", phone="hidden", cf_staff="hidden"
    )
    return crm


@pytest.fixture
def guarded(restricted):
    level_a = DictionaryItem.objects.get(dictionary__code="customer_level", code="a")
    return CustomerFactory(
        name="华东精密机械有限公司",
        owner=restricted.owner,
        phone="+8613800138000",
        level=level_a,
        custom={"intention": "high", "revenue": "1000.00", "staff": 88},
    )


def test_the_form_leaves_out_hidden_fields_and_locks_read_only_ones(client, restricted, guarded):
    client.force_login(restricted.owner)
    form = client.get(reverse("customers:edit", args=[guarded.pk])).context["form"]
    assert "phone" not in form.fields and "cf_staff" not in form.fields
    assert form.fields["level"].disabled and form.fields["cf_revenue"].disabled


def test_posting_hidden_or_read_only_fields_changes_nothing(client, restricted, guarded):
    client.force_login(restricted.owner)
    level_d = DictionaryItem.objects.get(dictionary__code="customer_level", code="d")
    response = client.post(
        reverse("customers:edit", args=[guarded.pk]),
        form_data(
            name=guarded.name,
            owner=None,
            phone="13900139000",
            level=level_d.pk,
            cf_revenue="9",
            cf_staff="9",
            cf_intention="low",
        ),
    )
    assert response.status_code == 302
    guarded.refresh_from_db()
    assert guarded.phone == "+8613800138000"
    assert guarded.level.code == "a"
    assert guarded.custom == {"intention": "low", "revenue": "1000.00", "staff": 88}


def test_services_keep_what_the_role_may_not_change_whatever_the_caller(restricted, guarded):
    """Imports, the API and automation call the service, not the form."""
    guarded.phone = "+8613900139000"
    guarded.custom = {**guarded.custom, "revenue": "1.00", "staff": 1}
    services.update_customer(customer=guarded, by=restricted.owner)
    guarded.refresh_from_db()
    assert guarded.phone == "+8613800138000"
    assert guarded.custom["revenue"] == "1000.00" and guarded.custom["staff"] == 88


def test_detail_page_shows_no_hidden_field(client, restricted, guarded):
    client.force_login(restricted.owner)
    page = client.get(reverse("customers:detail", args=[guarded.pk])).content.decode()
    assert "138 0013 8000" not in page and "员工人数" not in page
    assert "年营业额" in page and "¥1,000.00" in page and "强烈" in page
    client.force_login(restricted.admin)
    page = client.get(reverse("customers:detail", args=[guarded.pk])).content.decode()
    assert "138 0013 8000" in page and "员工人数" in page


def test_list_columns_filters_and_search_leave_out_hidden_fields(client, restricted, guarded):
    client.force_login(restricted.owner)
    response = client.get(LIST_URL, {"filters_form": "1"})
    filters = response.context["filterset"].filters
    assert "cf_staff" not in filters and "cf_revenue" in filters and "cf_intention" in filters
    page = client.get(LIST_URL).content.decode()
    assert "员工人数" not in page and "年营业额" in page
    assert [s.name for s in client.get(LIST_URL).context["custom_columns"]] == [
        "cf_revenue",
        "cf_intention",
    ]
    # A hidden phone cannot be probed through the search box either.
    assert list(client.get(LIST_URL, {"q": "13800138000"}).context["object_list"]) == []
    assert list(client.get(LIST_URL, {"q": "华东精密"}).context["object_list"]) == [guarded]
    # Hidden filters and sorts named in the URL are ignored, not applied.
    rows = client.get(LIST_URL, {"cf_staff_min": "1000", "sort": "cf_staff"}).context
    assert list(rows["object_list"]) == [guarded] and rows["sort"] == "-created"


def test_history_leaves_out_hidden_fields(client, restricted, guarded):
    services.update_customer(
        customer=Customer.objects.get(pk=guarded.pk), by=restricted.admin
    )  # nothing changed: no entry
    guarded.phone = "+8613900139000"
    guarded.custom = {**guarded.custom, "staff": 99, "intention": "low"}
    services.update_customer(customer=guarded, by=restricted.admin)
    client.force_login(restricted.owner)
    page = client.get(reverse("customers:history", args=[guarded.pk])).content.decode()
    assert "合作意向" in page and "员工人数" not in page and "139 0013 9000" not in page


# --- Lists: columns, filters, sorting ---------------------------------------------------------


@pytest.fixture
def listed(crm, fields):
    rows = {
        "a": {
            "staff": 10,
            "revenue": "100.00",
            "intention": "high",
            "founded": "2010-01-01",
            "listed": True,
        },
        "b": {
            "staff": 500,
            "revenue": "2500.50",
            "intention": "low",
            "founded": "2020-06-30",
            "listed": False,
        },
        "c": {"staff": 80, "intention": "high"},
        "d": {},
    }
    return {
        name: CustomerFactory(name=f"客户{name}", owner=crm.owner, custom=custom)
        for name, custom in rows.items()
    }


def names(response) -> list[str]:
    return [c.name for c in response.context["object_list"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"cf_intention": "high"}, {"客户a", "客户c"}),
        ({"cf_staff_min": "50"}, {"客户b", "客户c"}),
        ({"cf_staff_min": "50", "cf_staff_max": "100"}, {"客户c"}),
        ({"cf_revenue_max": "1000"}, {"客户a"}),
        ({"cf_founded_after": "2015-01-01"}, {"客户b"}),
        ({"cf_founded_before": "2015-01-01"}, {"客户a"}),
        ({"cf_listed": "true"}, {"客户a"}),
        ({"cf_listed": "false"}, {"客户b"}),
    ],
)
def test_lists_filter_by_custom_fields(client, crm, listed, params, expected):
    client.force_login(crm.owner)
    assert set(names(client.get(LIST_URL, params))) == expected


def test_lists_sort_by_a_custom_column_with_empty_values_last(client, crm, listed):
    client.force_login(crm.owner)
    assert names(client.get(LIST_URL, {"sort": "cf_staff"})) == ["客户a", "客户c", "客户b", "客户d"]
    assert names(client.get(LIST_URL, {"sort": "-cf_staff"})) == [
        "客户b",
        "客户c",
        "客户a",
        "客户d",
    ]


def test_list_columns_show_labels_and_formatted_values(client, crm, listed):
    client.force_login(crm.owner)
    page = client.get(LIST_URL, {"sort": "cf_staff"}).content.decode()
    assert "¥2,500.50" in page and "强烈" in page and "较弱" in page


def test_the_outsider_sees_none_of_it_through_a_custom_filter(client, crm, listed):
    client.force_login(crm.outsider)
    assert names(client.get(LIST_URL, {"cf_intention": "high", "owner": ""})) == []


def test_a_saved_view_keeps_a_custom_filter(client, crm, listed):
    client.force_login(crm.owner)
    client.post(LIST_URL, {"save_view": "1", "name": "高意向", "query": "cf_intention=high"})
    response = client.get(LIST_URL, {"cf_intention": "high"})
    assert [v.name for v, active in response.context["saved_views"] if active] == ["高意向"]


def test_a_manager_filters_the_teams_customers_by_a_custom_field(client, crm, listed):
    crm.colleague = crm.set_scope(crm.colleague, DataScope.DEPARTMENT, crm_permissions(ACTIONS))
    client.force_login(crm.colleague)
    assert set(names(client.get(LIST_URL, {"cf_intention": "high"}))) == {"客户a", "客户c"}


def test_contact_custom_fields_filter_the_contact_list(client, crm):
    custom_field("hobby", "text", record_type="contact", label="兴趣爱好", filterable=True)
    customer = CustomerFactory(owner=crm.owner)
    ContactFactory(customer=customer, name="甲", custom={"hobby": "高尔夫"})
    ContactFactory(customer=customer, name="乙", custom={"hobby": "钓鱼"})
    client.force_login(crm.owner)
    response = client.get(reverse("contacts:list"), {"cf_hobby": "高尔夫"})
    assert [c.name for c in response.context["object_list"]] == ["甲"]


def test_money_values_compare_as_numbers_not_text(crm, fields):
    from crm.fields import query

    CustomerFactory(owner=crm.owner, custom={"revenue": "900.00"})
    CustomerFactory(owner=crm.owner, custom={"revenue": "10000.00"})
    found = query.filter_range(Customer.objects.all(), fields["revenue"], Decimal("1000"), None)
    assert [c.custom["revenue"] for c in found] == ["10000.00"]


def test_the_search_neither_matches_nor_shows_a_hidden_phone(client, restricted, guarded):
    client.force_login(restricted.owner)
    page = client.get(reverse("search"), {"q": "138 0013 8000"}).content.decode()
    assert "华东精密" not in page
    page = client.get(reverse("search"), {"q": "华东精密"}).content.decode()
    assert "华东精密" in page and "138 0013 8000" not in page
    client.force_login(restricted.admin)
    page = client.get(reverse("search"), {"q": "138 0013 8000"}).content.decode()
    assert "华东精密" in page and "138 0013 8000" in page


# --- Merge ------------------------------------------------------------------------------------


def test_merging_picks_custom_values_and_takes_over_a_unique_one(crm, fields):
    survivor = CustomerFactory(owner=crm.owner, custom={"intention": "low"})
    other = CustomerFactory(
        owner=crm.owner,
        custom={"intention": "high", "credit_code": "91310000MA1FL8XQ30", "staff": 7},
    )
    crm.owner = crm.set_scope(crm.owner, DataScope.OWN, crm_permissions(ACTIONS))
    services.merge_customers(
        survivor=survivor,
        others=[other],
        by=crm.owner,
        take={"cf_intention": survivor.pk, "cf_credit_code": other.pk},
    )
    survivor.refresh_from_db()
    assert survivor.custom == {
        "intention": "low",
        "credit_code": "91310000MA1FL8XQ30",
        "staff": 7,
    }
    assert not Customer.objects.filter(pk=other.pk).exists()


def test_merging_offers_and_takes_only_fields_the_role_may_edit(client, restricted, guarded):
    other = CustomerFactory(owner=restricted.owner, custom={"revenue": "5.00", "staff": 1})
    offered = {name for name, _label in services.mergeable_fields(restricted.owner)}
    assert {"phone", "level", "cf_revenue", "cf_staff"}.isdisjoint(offered)
    assert {"name", "email", "cf_intention"} <= offered
    with pytest.raises(services.ValidationError):
        services.merge_customers(
            survivor=guarded, others=[other], by=restricted.owner, take={"cf_revenue": other.pk}
        )
    client.force_login(restricted.owner)
    page = client.get(
        reverse("customers:merge", args=[guarded.pk]), {"other": other.pk}
    ).content.decode()
    assert "合作意向" in page and "员工人数" not in page and "take_phone" not in page


def test_services_refuse_a_deactivated_item_on_new_input_but_keep_it_where_it_is(crm, fields):
    """The import, the API and automation reach the service without the form's choices."""
    DictionaryItem.objects.filter(code="low", dictionary__code="intention").update(is_active=False)
    fresh = Customer(name="新客户", owner=crm.owner, custom={"intention": "low"})
    with pytest.raises(services.ValidationError) as error:
        services.create_customer(customer=fresh, by=crm.owner)
    assert "cf_intention" in error.value.message_dict
    kept = CustomerFactory(owner=crm.owner, custom={"intention": "low"})
    kept.custom = {"intention": "low", "staff": 3}
    services.update_customer(customer=kept, by=crm.owner)
    kept.refresh_from_db()
    assert kept.custom == {"intention": "low", "staff": 3}


def test_on_postgresql_filters_and_sorts_read_the_fields_indexes(crm, fields):
    """With sequential scans priced out, the planner can still answer the list's filter
    and both sort directions from the custom fields' expression indexes."""
    from django.db import connection

    from crm.fields import query

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    base = Customer.objects.order_by()
    cases = [
        (query.filter_exact(base, fields["intention"], "high"), "cf_customer_intention_"),
        (
            query.filter_range(base, fields["staff"], Decimal(10), Decimal(100)),
            "cf_customer_staff_",
        ),
        (base.order_by(query.order_by_field(fields["revenue"], False)), "cf_customer_revenue_idx"),
        (base.order_by(query.order_by_field(fields["revenue"], True)), "cf_customer_revenue_desc"),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        for queryset, index in cases:
            sql, params = queryset.values("pk")[:25].query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan
