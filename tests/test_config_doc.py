"""The configuration document: one readable, printable admin page with every
dictionary, custom field and role, and the latest configuration changes."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import DataScope, Role
from crm.config.log import acting_as
from crm.models import CustomField, Dictionary, DictionaryItem, FieldType

from .factories import UserFactory

URL = reverse("admin:crm_configchange_document")


@pytest.fixture
def staff(db):
    return UserFactory(username="boss", is_staff=True, is_superuser=True, language="en", role=None)


@pytest.fixture
def configuration(staff):
    with acting_as(staff, "admin"):
        intent = Dictionary.objects.create(code="intent", name="合作意向")
        DictionaryItem.objects.create(
            dictionary=intent, code="high", label="高", label_en="High", color="red",
            is_default=True, order=10,
        )  # fmt: skip
        DictionaryItem.objects.create(
            dictionary=intent, code="dropped", label="已停用", order=20, is_active=False
        )
        CustomField.objects.create(
            record_type="customer", key="intent", label="合作意向", label_en="Intent",
            field_type=FieldType.CHOICE, dictionary=intent, default="high", required=True,
            show_in_list=True, filterable=True, section="销售信息",
            help_text="客户的采购意愿", help_text_en="How keen the customer is to buy",
        )  # fmt: skip
        CustomField.objects.create(
            record_type="customer", key="uscc", label="统一社会信用代码",
            field_type=FieldType.TEXT, unique=True, max_length=18,
            pattern="[0-9A-HJ-NPQRTUWXY]{18}", pattern_message="请输入 18 位代码",
            pattern_message_en="Enter the 18-character code",
        )  # fmt: skip
        CustomField.objects.create(
            record_type="customer", key="revenue", label="年营业额",
            field_type=FieldType.MONEY, min_value="0", max_value="1000000",
        )  # fmt: skip
        CustomField.objects.create(
            record_type="contact", key="hobby", label="爱好", field_type=FieldType.TEXT,
            is_active=False,
        )  # fmt: skip
        Role.objects.create(
            name="客服",
            description="查看所有客户",
            data_scope=DataScope.ALL,
            permissions=["customer.view", "contact.view", "legacy.view"],
            field_permissions={
                "customer": {"cf_revenue": "hidden", "phone": "readonly", "cf_gone": "hidden"}
            },
        )


def test_staff_read_every_dictionary_field_and_role(client, staff, configuration):
    client.force_login(staff)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.text
    with translation.override("en"):
        # Dictionaries with their items, seeded ones too.
        assert 'id="dictionary-intent"' in html and 'id="dictionary-customer_source"' in html
        assert "<code>high</code>" in html and "High" in html
        assert "No (kept on old records)" in html  # the inactive item
        assert 'style="background: red"' in html
        # Custom fields with their meaning and rules.
        assert 'id="field-customer-intent"' in html and 'id="field-contact-hobby"' in html
        assert "How keen the customer is to buy" in html and "客户的采购意愿" in html
        assert "Required." in html
        assert "Unique: no two records may hold the same value." in html
        assert "At most 18 characters." in html
        assert "At least 0." in html and "At most 1000000." in html
        assert "[0-9A-HJ-NPQRTUWXY]{18}" in html
        assert "请输入 18 位代码" in html and "Enter the 18-character code" in html
        assert "销售信息" in html
        assert 'href="#dictionary-intent"' in html
        # Roles: scope, permissions, field permissions by label.
        assert "客服" in html and str(DataScope.ALL.label) in html
        assert "legacy.view" in html  # a grant for a record type not installed here
        assert "年营业额" in html  # cf_revenue resolved to its label
        assert 'class="level-hidden">Hidden' in html
        assert 'class="level-readonly">Read-only' in html
        assert "cf_gone" in html and "unknown field" in html
        # Latest changes name the field as people read it, without its key (issue 16).
        changes = html[html.index('id="changes"') :]
        assert "统一社会信用代码" in changes and "(customer.uscc)" not in changes


def test_field_permission_names_are_resolved_to_labels(client, staff, configuration):
    client.force_login(staff)
    context = client.get(URL).context
    [role] = [row for row in context["roles"] if row["role"].name == "客服"]
    [group] = role["field_groups"]
    labels = {f["name"]: (f["label"], f["known"]) for f in group["fields"]}
    assert labels["cf_revenue"] == ("年营业额", True)
    assert labels["phone"][1] is True and labels["phone"][0] != "phone"
    assert labels["cf_gone"] == ("cf_gone", False)


def test_only_staff_see_the_document(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    client.force_login(UserFactory(username="rep", is_staff=False))
    response = client.get(URL)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_the_admin_index_and_the_log_link_to_the_document(client, staff):
    client.force_login(staff)
    assert URL in client.get(reverse("admin:index")).text
    assert URL in client.get(reverse("admin:crm_configchange_changelist")).text


def test_the_document_prints_cleanly(client, staff, configuration):
    client.force_login(staff)
    html = client.get(URL).text
    assert "@media print" in html and "window.print()" in html
