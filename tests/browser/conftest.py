"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against the
live test server. Screenshots land in test-artifacts/ for a person to look at.

A step that opens another page or sends an htmx request waits for it here (`loads`,
`answered`) before the test goes on: on a busy machine the server answers late and the
page's deferred scripts run late, and a test that only waits for an address or an element
acts on a page whose menus and forms do not work yet."""

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The dashboard, where signing in lands: the site's root (/accounts/login/ ends in / too).
DASHBOARD = re.compile(r"^https?://[^/]+/$")
# While htmx sends a request, swaps in the answer or sets up what it swapped in (its
# hx- attributes, htmx:load), one of these classes is on the page.
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
VIEWPORTS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 800}}
# How long a step may wait for what it needs on a busy machine: actions and navigations
# (the context's default) and expect() assertions alike (Playwright's own is 5 s).
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CRM_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing and CRM_REQUIRE_BROWSER is set")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the
    # tests make between browser steps are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, live_server):
    context = browser.new_context(
        viewport=VIEWPORTS[request.param], locale="zh-CN", base_url=live_server.url
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.viewport_name = request.param
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-{page.viewport_name}.png", full_page=True)


@contextmanager
def loads(page, url=None):
    """Around a step that opens another page (a link, a form's submit button): on leaving,
    the browser is on the new page (at `url`, a regex, when given) and its load event has
    fired, so its deferred scripts (Bootstrap's menus, htmx, the page's own) have run.
    An address alone matches as soon as the navigation commits, before any of that."""
    with page.expect_navigation(url=url, wait_until="load"):
        yield


@contextmanager
def answered(page, path: str):
    """Around a step that sends an htmx request to an address containing `path`: on
    leaving, the answer has come and htmx has swapped it in and settled, so what came
    (a form, a column) is set up and the next step may use it."""
    with page.expect_response(
        lambda response: (
            path in response.url and response.request.headers.get("hx-request") == "true"
        )
    ) as info:
        yield
    response = info.value
    assert response.ok, f"{response.status} from {response.url}"
    expect(page.locator(HTMX_BUSY)).to_have_count(0)


def sign_in(page, username: str) -> None:
    """Sign in as a demo user and wait until the dashboard has loaded."""
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("demo1234")
    with loads(page, DASHBOARD):
        page.get_by_role("button", name="登录").click()
