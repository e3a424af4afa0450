"""Unassigned leads in the browser, on a phone and at a desk: a rep claims one from its
page and two more from the list's bulk action; converting a lead, the form warns of a
customer whose name is only like the lead's and shows only the customer choice she
picked."""

import re

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from pipelines.models import Lead

from ..factories import CustomerFactory, LeadFactory
from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser


def unassigned(company: str, person: str) -> Lead:
    return LeadFactory(owner=None, company_name=company, person_name=person)


def test_a_rep_claims_unassigned_leads_from_the_page_and_the_list(page):
    seed_organisation(reset_passwords=True)
    first = unassigned("苏州明澜光电", "周先生")
    second = unassigned("宁波海拓船舶配件", "吴女士")
    third = unassigned("无锡清禾环保", "郑经理")
    wangfang = User.objects.get(username="wangfang")

    # 王芳 opens an unassigned lead: she may claim it, not yet convert it.
    sign_in(page, "wangfang")
    page.goto(f"/leads/{first.pk}/")
    expect(page.get_by_test_id("owner")).to_contain_text("未分配")
    expect(page.get_by_test_id("convert")).to_have_count(0)
    screenshot(page, "leads-claim-1-unassigned")
    with loads(page, re.compile(rf"/leads/{first.pk}/$")):
        page.get_by_test_id("claim").click()
    expect(page.get_by_test_id("owner")).to_have_text("王芳")
    expect(page.get_by_test_id("claim")).to_have_count(0)
    expect(page.get_by_test_id("convert")).to_be_visible()
    screenshot(page, "leads-claim-2-claimed")
    first.refresh_from_db()
    assert first.owner == wangfang

    # From the list of unassigned leads she ticks the other two and claims them.
    page.goto("/leads/?owner=pool")
    rows = page.get_by_test_id("lead-row")
    expect(rows).to_have_count(2)
    for lead in (second, third):
        page.locator(f"input[name=selected][value='{lead.pk}']").check()
    page.locator("[data-bulk-action]").select_option("claim")
    with loads(page, re.compile(r"/leads/\?owner=pool$")):
        page.locator("[data-bulk-submit]").click()
    expect(page.get_by_test_id("lead-row")).to_have_count(0)
    screenshot(page, "leads-claim-3-bulk")
    assert set(Lead.objects.values_list("owner", flat=True)) == {wangfang.pk}
    page.goto("/leads/?owner=me")
    expect(page.get_by_test_id("lead-row")).to_have_count(3)


def test_the_conversion_form_shows_only_the_chosen_customer(page):
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")
    lead = LeadFactory(owner=wangfang, company_name="上海远景科技", person_name="张伟")
    # Typed differently from the company's full name: the form still warns of it.
    CustomerFactory(owner=wangfang, name="远景科技（上海）有限公司")

    sign_in(page, "wangfang")
    page.goto(f"/leads/{lead.pk}/convert/")
    form = page.get_by_test_id("convert-form")
    new, existing = form.get_by_test_id("new-customer"), form.get_by_test_id("existing-customer")
    expect(new).to_be_visible()
    expect(existing).to_be_hidden()
    expect(new.get_by_test_id("duplicate-warning")).to_contain_text("远景科技（上海）有限公司")
    expect(new.get_by_test_id("similar")).to_be_visible()
    expect(new.get_by_test_id("use-existing")).to_be_visible()
    # The contact's name is a person's name (姓名); its fields show while it is ticked.
    contact = form.get_by_test_id("contact-fields")
    expect(contact.locator("label[for='id_contact-name']")).to_contain_text("姓名")
    expect(form.get_by_test_id("deal-fields")).to_be_hidden()
    screenshot(page, "leads-convert-1-new")

    form.get_by_label("使用已有客户").check()
    expect(existing).to_be_visible()
    expect(new).to_be_hidden()
    form.get_by_label("新建联系人").uncheck()
    expect(contact).to_be_hidden()
    form.get_by_label("新建商机").check()
    expect(form.get_by_test_id("deal-fields")).to_be_visible()
    screenshot(page, "leads-convert-2-existing")
