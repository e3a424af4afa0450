"""The main pages pass an accessibility scan: axe-core (static/vendor/axe-core, the engine
browser vendors and auditors use) finds no serious or critical violation on any of them,
for the sales manager of the demo company, in Chinese and in English, on a phone and at
a desk. Every page has one main landmark, so a screen reader can jump to it.

A failure lists each violation readably: the page, the rule, what it asks, and the
elements that break it with axe's own words on why."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.demo import SALES_MANAGER
from accounts.models import User
from automation.models import NotificationKind
from automation.notifications import notify
from crm.models import Customer
from pipelines.models import Deal

from .conftest import HTMX_BUSY, loads, screenshot, sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
# What the scan fails on. Moderate and minor findings (best practices such as heading
# order) are printed with a failure but do not fail the test on their own.
BLOCKING = {"serious", "critical"}
NODES_SHOWN = 5


def main_pages(manager) -> dict[str, str]:
    """The pages people spend their day on, by name, with a record that has content."""
    deal = Deal.objects.visible_to(manager).filter(status="open").order_by("pk").first()
    customer = (
        Customer.objects.visible_to(manager).filter(deals__isnull=False).order_by("pk").first()
    )
    assert deal and customer, "the demo company has no deal the manager may see"
    return {
        "dashboard": "/",
        "customers": "/customers/",
        "customer": f"/customers/{customer.pk}/",
        "customer form": "/customers/new/",
        "contacts": "/contacts/",
        "leads": "/leads/",
        "deals": "/deals/",
        "deal": f"/deals/{deal.pk}/",
        "board": "/pipelines/",
        "tasks": "/tasks/",
        "search": f"/search/?q={customer.name[:2]}",
        "reports": "/reports/",
        "report": "/reports/funnel/",
        "notifications": "/notifications/",
    }


def scan(page) -> list[dict]:
    """axe-core's violations on the page as it is now (all its rules, WCAG 2.x A/AA and
    its best practices), each with the elements that break it."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")["violations"]


def readable(findings: list[tuple[str, str, dict]]) -> str:
    """The violations as a person reads them: page, rule, what it asks, where, why."""
    lines = []
    for language, name, violation in findings:
        nodes = violation["nodes"]
        lines.append(
            f"\n[{violation['impact']}] {name} ({language}): {violation['id']}: "
            f"{violation['help']} — {len(nodes)} element(s)\n    {violation['helpUrl']}"
        )
        for node in nodes[:NODES_SHOWN]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:200]}")
            for reason in (node.get("failureSummary") or "").splitlines()[1:]:
                lines.append(f"       - {reason.strip()}")
        if len(nodes) > NODES_SHOWN:
            lines.append(f"    … and {len(nodes) - NODES_SHOWN} more")
    return "\n".join(lines)


def open_and_scan(page, name: str, path: str) -> list[dict]:
    page.goto(path)  # returns once the page's load event has fired
    # What htmx loads after the page (panels, a board's columns) is there, and the page
    # has its title: the scan sees the page a person sees.
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.locator("h1").first).to_be_visible()
    expect(page.get_by_role("main"), f"{name}: one main landmark").to_have_count(1)
    if name == "report":
        expect(page.locator("canvas[data-chart][data-drawn]")).to_have_count(1)
    return scan(page)


def switch_to_english(page) -> None:
    page.get_by_test_id("user-menu").click()
    english = page.get_by_role("button", name="English")
    expect(english).to_be_visible()
    with loads(page):
        english.click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_main_pages_have_no_serious_accessibility_violation_in_chinese_or_english(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    manager = User.objects.get(username=SALES_MANAGER)
    deal = Deal.objects.visible_to(manager).order_by("pk").first()
    # The bell and the notifications page have something to show: read and unread.
    notify(user=manager, title="商机待跟进", record=deal)
    notify(user=manager, title="新线索已分配给你", kind=NotificationKind.ASSIGNMENT)
    pages = main_pages(manager)
    sign_in(page, SALES_MANAGER)

    blocking, other = [], []
    for language in ("zh-Hans", "en"):
        if language == "en":
            switch_to_english(page)
        for name, path in pages.items():
            for violation in open_and_scan(page, name, path):
                found = (language, name, violation)
                (blocking if violation["impact"] in BLOCKING else other).append(found)
            if name in {"customers", "customer form"}:
                screenshot(page, f"a11y-{name.replace(' ', '-')}-{language}")

    assert not blocking, (
        f"{len(blocking)} serious or critical accessibility violation(s):"
        + readable(blocking)
        + ("\n\nAlso found (not failing on their own):" + readable(other) if other else "")
    )


def test_the_scan_reports_what_it_finds(page):
    """The check above can fail: on a page with a low-contrast text, an unlabelled field
    and an image without text, the same scan reports them, readably."""
    sign_in_page = "/accounts/login/"
    page.goto(sign_in_page)
    page.evaluate(
        """() => {
          const main = document.querySelector('main');
          main.insertAdjacentHTML('beforeend',
            '<p style="color:#bbb;background:#fff">浅灰色的说明文字</p>' +
            '<input type="text" name="nameless">' +
            '<img src="/static/crm/img/favicon.svg">');
        }"""
    )
    violations = scan(page)
    found = {v["id"]: v["impact"] for v in violations}
    assert found.get("color-contrast") == "serious"
    assert found.get("label") == "critical"
    assert found.get("image-alt") == "critical"
    report = readable([("zh-Hans", "sign-in", v) for v in violations])
    assert "[serious] sign-in (zh-Hans): color-contrast" in report
    assert "浅灰色的说明文字" in report
    assert "https://dequeuniversity.com/rules/axe/" in report
