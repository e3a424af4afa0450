"""An admin shapes the CRM without code: in Django admin they add a required
single-choice field to customers; a rep then meets it on the customer form, gets a
clear error when it is left empty, saves, and filters the customer list by it."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from crm.models import Customer, CustomField, Dictionary

from .conftest import answered, loads, screenshot, sign_in

pytestmark = pytest.mark.browser

NAME = "苏州澄湖新材料科技有限公司"


def test_an_admin_adds_a_required_choice_field_and_a_rep_uses_it(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    intent = Dictionary.objects.get(code="cooperation_intent")

    # The admin adds 采购阶段 to customers: single choice from 合作意向, required, filterable.
    sign_in(page, "admin")
    page.goto("/admin/crm/customfield/add/")
    page.locator("#id_record_type").select_option("customer")
    page.locator("#id_key").fill("purchase_intent")
    page.locator("#id_label").fill("采购意向")
    page.locator("#id_label_en").fill("Purchase intent")
    page.locator("#id_field_type").select_option("choice")
    page.locator("#id_dictionary").select_option(str(intent.pk))
    page.locator("#id_required").check()
    page.locator("#id_filterable").check()
    page.locator("#id_show_in_list").check()
    screenshot(page, "custom-field-1-admin-add")
    with loads(page, re.compile(r"/admin/crm/customfield/$")):
        page.locator("input[name=_save]").click()
    field = CustomField.objects.get(key="purchase_intent")
    assert field.required and field.filterable and field.dictionary == intent

    # 王芳 sees it on the new-customer form; left empty, the form says so and saves nothing.
    sign_in(page, "wangfang")
    page.goto("/customers/new/")
    form = page.get_by_test_id("customer-form")
    expect(form.get_by_text("采购意向")).to_be_visible()
    form.locator("#id_name").fill(NAME)
    with loads(page):  # the form comes back, at the same address
        form.get_by_test_id("save").click()
    error = page.get_by_test_id("error-cf_purchase_intent")
    expect(error).to_be_visible()
    expect(error).to_contain_text("必填")
    screenshot(page, "custom-field-2-required-error")
    assert not Customer.objects.filter(name=NAME).exists()

    # She picks a value and saves; the customer's page shows it.
    form = page.get_by_test_id("customer-form")
    form.locator("#id_cf_purchase_intent").select_option(label="强烈")
    if form.locator("#id_confirm_duplicate").count():
        form.locator("#id_confirm_duplicate").check()
    with loads(page, re.compile(r"/customers/\d+/$")):
        form.get_by_test_id("save").click()
    expect(page.get_by_test_id("info-card")).to_contain_text("采购意向")
    expect(page.get_by_test_id("info-card")).to_contain_text("强烈")
    assert Customer.objects.get(name=NAME).custom["purchase_intent"] == "strong"

    # The list filters by it: only customers with 强烈 remain, hers among them.
    page.goto("/customers/")
    # The panel's form loads (htmx) when the panel first opens.
    with answered(page, "filters_form=1"):
        page.get_by_test_id("open-filters").click()
    panel = page.get_by_test_id("filter-form")
    panel.locator("#id_cf_purchase_intent").select_option(label="强烈")
    with loads(page, re.compile(r"cf_purchase_intent=strong")):
        panel.get_by_role("button", name="应用").click()
    table = page.get_by_test_id("customer-table")
    expect(table).to_contain_text(NAME)
    screenshot(page, "custom-field-3-filtered-list")
    shown = table.locator("tbody tr").count()
    assert shown == Customer.objects.filter(custom__purchase_intent="strong").count() == 1
