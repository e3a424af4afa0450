"""Each demo role's home (/) in the browser, on a phone and at a desk: its own panels,
nothing wider than the screen, compact amounts with the exact one in their title; and a
forgotten password, from the sign-in page's link to signing in with the new one."""

import re
from io import StringIO

from django.core import mail
from django.core.management import call_command
from playwright.sync_api import expect

from accounts import throttle

from .conftest import DASHBOARD, loads, screenshot, sign_in

HOMES = {
    "wangfang": ["today", "overdue", "closing-deals", "recent-leads"],
    "zhangwei": ["today", "overdue", "closing-deals", "team"],
    "zhaomin": ["search", "service-activity"],
    "admin": ["setup", "team"],
}


def panels(page) -> list[str]:
    return [
        key.removeprefix("panel-")
        for key in page.locator("[data-testid^=panel-]").evaluate_all(
            "els => els.map(e => e.dataset.testid)"
        )
    ]


def test_each_demo_role_lands_on_a_home_about_its_work(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    for username, expected in HOMES.items():
        sign_in(page, username)
        expect(page.get_by_test_id("home")).to_be_visible()
        assert panels(page) == expected, username
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], (username, width)
        screenshot(page, f"home-{username}")

    # A rep's deals: compact amounts, the exact amount in the title.
    sign_in(page, "wangfang")
    amount = page.get_by_test_id("closing-deal").first.locator(".app-money")
    expect(amount).to_have_text(re.compile(r"^¥[\d.,]+(万|亿)?$"))
    expect(amount).to_have_attribute("title", re.compile(r"^¥[\d,]+\.\d\d$"))

    # Customer service looks a customer up from the home page.
    sign_in(page, "zhaomin")
    page.get_by_test_id("home-search").fill("有限公司")
    with loads(page, re.compile(r"/search/\?q=")):
        page.get_by_test_id("home-search").press("Enter")


def test_a_forgotten_password_is_reset_by_email(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    # The limits count in the cache, which outlives a test: start with none used (the
    # other viewport's run, or test_password_reset, asked from this address before).
    for ip in ("127.0.0.1", "::1"):
        throttle.reset("password-reset-ip", ip)
    throttle.reset("password-reset-email", "wangfang@demo.example.com")
    page.goto("/accounts/login/")
    with loads(page, re.compile(r"/accounts/password/reset/$")):
        page.get_by_test_id("forgot-password").click()
    page.get_by_role("textbox").fill("wangfang@demo.example.com")
    with loads(page, re.compile(r"/accounts/password/reset/sent/$")):
        page.get_by_role("button").click()
    expect(page.get_by_test_id("reset-sent")).to_be_visible()
    screenshot(page, "password-reset-sent")

    link = re.search(r"https?://\S+/accounts/password/reset/\S+/", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    page.goto(link.group(0))
    for field in page.locator("input[type=password]").all():
        field.fill("a-much-better-passphrase-42")
    with loads(page, re.compile(r"/accounts/password/reset/done/$")):
        page.get_by_role("button").click()
    expect(page.get_by_test_id("reset-complete")).to_be_visible()

    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill("wangfang")
    page.get_by_label("密码", exact=True).fill("a-much-better-passphrase-42")
    with loads(page, DASHBOARD):
        page.get_by_role("button", name="登录").click()
