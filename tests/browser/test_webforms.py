"""A web form from end to end, on a phone and at a desk: the admin designs it in Django
admin and copies its snippet; the snippet sits on a plain page of the company's site
(another server, another port); a visitor fills it in and sends it; the lead is on the
list of the rep the form gives its leads to."""

from __future__ import annotations

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from accounts import throttle
from accounts.demo import seed_organisation
from accounts.models import User
from integrations.webforms.models import WebForm
from pipelines.models import Lead

from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log in the test output
        pass


@pytest.fixture
def company_site(tmp_path):
    """The company's own site: a directory served on a port of its own. Yields
    (directory, base URL)."""
    handler = partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_visitor_sends_the_embedded_form_and_the_lead_reaches_its_rep(
    page, company_site, settings
):
    # The protections are tested without a browser; here the visitor is quicker than
    # a person, so the "too fast" check is off.
    settings.WEBFORMS_MIN_SECONDS = 0
    throttle.reset("webforms-ip", "127.0.0.1")  # the cache may outlive an earlier run
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")

    # The admin designs the form: three fields, the phone required, leads to 王芳.
    sign_in(page, "admin")
    page.goto("/admin/webforms/webform/add/")
    page.locator("#id_name").fill("官网预约演示")
    page.locator("#id_title").fill("预约产品演示")
    page.locator("#id_intro").fill("留下联系方式，顾问会在一个工作日内联系您。")
    page.locator("#id_assignment").select_option("user")
    page.locator("#id_owner").select_option(str(wangfang.pk))
    for row, name in enumerate(("person_name", "company_name", "phone")):
        page.locator(f"#id_fields-{row}-name").select_option(name)
        page.locator(f"#id_fields-{row}-order").fill(str(row))
    page.locator("#id_fields-2-required").check()
    with loads(page, re.compile(r"/admin/webforms/webform/\d+/change/")):
        page.locator("input[name=_continue]").click()
    snippet = page.get_by_test_id("webform-snippet")
    expect(snippet).to_contain_text("data-webform")
    expect(page.get_by_test_id("webform-endpoints")).to_contain_text("/api/forms/")
    screenshot(page, "webforms-admin-change")
    form = WebForm.objects.get()
    assert form.owner == wangfang
    assert [f.name for f in form.fields.all()] == ["person_name", "company_name", "phone"]

    # The company's page carries the snippet the admin copied.
    site_dir, site_url = company_site
    (site_dir / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>远景科技</title></head>"
        "<body><h1>远景科技</h1><p>欢迎预约演示。</p>" + snippet.input_value() + "</body></html>",
        encoding="utf-8",
    )

    # A visitor comes from an ad and sends it.
    page.context.clear_cookies()
    page.goto(f"{site_url}/index.html?utm_source=baidu&utm_campaign=winter")
    form_on_site = page.locator(f'form[data-webform="{form.key}"]')
    # The script has filled in the check token: the form may be sent.
    expect(form_on_site.locator("input[name=_wf_token]")).not_to_have_value("")
    form_on_site.locator("input[name=person_name]").fill("周先生")
    form_on_site.locator("input[name=company_name]").fill("苏州明澜光电")
    form_on_site.locator("input[name=phone]").fill("139 1234 5678")
    with loads(page, re.compile(r"/forms/.+/submit/$")):
        form_on_site.locator("button[type=submit]").click()
    expect(page.get_by_test_id("webform-thanks")).to_be_visible()

    lead = Lead.objects.get()
    assert (lead.person_name, lead.phone, lead.owner) == ("周先生", "+8613912345678", wangfang)
    submission = form.submissions.get()
    assert submission.utm == {"utm_source": "baidu", "utm_campaign": "winter"}

    # The form's own page, as a link or an iframe would show it.
    page.goto(f"/forms/{form.key}/")
    expect(page.get_by_test_id("webform")).to_be_visible()
    screenshot(page, "webforms-page")

    # 王芳 finds the lead on her list.
    sign_in(page, "wangfang")
    page.goto("/leads/")
    expect(page.get_by_test_id("lead-row").filter(has_text="周先生")).to_have_count(1)
