import re
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import User

from .conftest import DASHBOARD, loads, screenshot

pytestmark = pytest.mark.browser


def open_user_menu(page):
    page.get_by_test_id("user-menu").click()
    # Bootstrap opens the dropdown; its buttons are used once it shows.
    expect(page.locator(".dropdown-menu", has=page.get_by_test_id("sign-out"))).to_be_visible()


def test_demo_rep_signs_in_to_chinese_ui_switches_to_english_and_signs_out(page):
    call_command("seed_demo", force=True, stdout=StringIO())

    page.goto("/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", name="登录你的账号")).to_be_visible()
    screenshot(page, "sign-in")

    page.get_by_label("用户名").fill("wangfang")
    page.get_by_label("密码").fill("demo1234")
    with loads(page, DASHBOARD):
        page.get_by_role("button", name="登录").click()

    expect(page.get_by_role("heading", name="你好，王芳")).to_be_visible()
    # A rep's home: her work (crm.dashboard_cards), not her account's details.
    expect(page.get_by_test_id("today").get_by_role("heading")).to_have_text("今天")
    screenshot(page, "dashboard-zh")

    open_user_menu(page)
    with loads(page, DASHBOARD):  # the language is set, and the same page comes back
        page.get_by_role("button", name="English").click()

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Hello, 王芳")).to_be_visible()
    expect(page.get_by_test_id("today").get_by_role("heading")).to_have_text("Today")
    screenshot(page, "dashboard-en")
    assert User.objects.get(username="wangfang").language == "en"

    open_user_menu(page)
    with loads(page, re.compile(r"/accounts/login/$")):
        page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name="Sign in to your account")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))


def test_wrong_password_shows_a_clear_chinese_error(page):
    call_command("seed_demo", force=True, stdout=StringIO())

    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill("wangfang")
    page.get_by_label("密码").fill("wrong-password")
    with loads(page):  # the form comes back, at the same address
        page.get_by_role("button", name="登录").click()

    expect(page.get_by_role("alert")).to_contain_text("用户名或密码不正确")
    screenshot(page, "sign-in-error")
