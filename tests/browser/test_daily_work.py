"""A rep's day in the browser, on a phone and at a desk: create a customer, log a call
that plans a follow-up for today, see it on the dashboard and tick it off; a rep of the
other sales team finds none of it."""

import re
from datetime import time, timedelta
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Activity, Customer, Task, TaskStatus

from .conftest import answered, loads, screenshot, sign_in

pytestmark = pytest.mark.browser

# Neither the name's brand (云帆) nor the 170 prefix occur in the demo data, so the
# duplicate warning stays quiet and the search can only find this customer.
NAME = "杭州云帆数字科技有限公司"
PHONE_TYPED = "170 5712 0426"
PHONE_STORED = "+8617057120426"
PHONE_SEARCHED = "+86 17057120426"
CALL_NOTES = "电话沟通了年度服务合同的报价，客户希望今天下班前收到正式报价单。"


def later_today() -> str:
    """A time later today (in the local time zone) for a datetime-local input."""
    now = timezone.localtime()
    end_of_day = now.replace(hour=23, minute=59, second=0, microsecond=0)
    return min(now + timedelta(hours=1), end_of_day).strftime("%Y-%m-%dT%H:%M")


def test_a_rep_creates_a_customer_logs_a_call_and_completes_the_follow_up(page):
    if timezone.localtime().time() >= time(23, 55):
        pytest.skip("a follow-up later today needs some of today left")
    call_command("seed_demo", force=True, stdout=StringIO())
    assert not Customer.objects.filter(name=NAME).exists()
    assert not Customer.objects.filter(phone=PHONE_STORED).exists()

    # 王芳 (销售一部) adds a new customer.
    sign_in(page, "wangfang")
    page.goto("/customers/new/")
    form = page.get_by_test_id("customer-form")
    form.locator("#id_name").fill(NAME)
    form.locator("#id_phone").fill(PHONE_TYPED)
    form.locator("#id_type").select_option(label="企业")
    form.locator("#id_level").select_option(label="A 重点客户")
    screenshot(page, "daily-work-1-new-customer")
    with loads(page, re.compile(r"/customers/\d+/$")):
        form.get_by_test_id("save").click()

    customer = Customer.objects.get(name=NAME)
    assert customer.owner.username == "wangfang"
    assert customer.phone == PHONE_STORED
    expect(page.get_by_role("heading", name=NAME)).to_be_visible()

    # On its page she logs a call and plans the next follow-up for later today.
    log_form = page.get_by_test_id("log-form")
    log_form.locator("label.form-selectgroup-item", has_text="电话").click()
    log_form.locator("textarea[name=content]").fill(CALL_NOTES)
    follow_up_at = later_today()
    log_form.locator("input[name=next_follow_up_at]").fill(follow_up_at)
    with answered(page, log_form.get_attribute("hx-post")):
        log_form.get_by_test_id("log-submit").click()

    expect(page.get_by_test_id("timeline")).to_contain_text(CALL_NOTES)
    screenshot(page, "daily-work-2-call-logged")
    activity = Activity.objects.get(customer=customer)
    assert activity.kind.code == "call"
    assert activity.author.username == "wangfang"
    task = Task.objects.get(customer=customer, status=TaskStatus.OPEN)
    assert timezone.localtime(task.due_at).strftime("%Y-%m-%dT%H:%M") == follow_up_at
    assert task.assignee.username == "wangfang"

    # The dashboard lists the follow-up among today's tasks, once.
    page.goto("/")
    today = page.get_by_test_id("today")
    item = today.get_by_test_id("task-item").filter(has_text=NAME)
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("home").get_by_text(f"跟进：{NAME}")).to_have_count(1)
    count_before = int(page.get_by_test_id("count-today").inner_text())
    item.first.scroll_into_view_if_needed()
    screenshot(page, "daily-work-3-dashboard")

    # She ticks it off right there.
    done_url = item.locator("form[hx-post]").get_attribute("hx-post")
    with answered(page, done_url):
        item.get_by_test_id("complete").click()

    expect(item.get_by_test_id("reopen")).to_be_visible()
    expect(item).to_have_class(re.compile(r"\bapp-task-done\b"))
    expect(page.get_by_test_id("count-today")).to_have_text(str(count_before - 1))
    screenshot(page, "daily-work-4-done")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    assert task.completed_at is not None

    # Back on the dashboard later, it is no longer among today's work.
    page.reload()
    expect(page.get_by_test_id("today")).not_to_contain_text(NAME)

    # 刘洋 of 销售二部 cannot find the customer by its name or its phone...
    sign_in(page, "liuyang")
    for query in (NAME, "云帆数字", PHONE_SEARCHED, PHONE_TYPED):
        page.goto(f"/search/?q={quote(query)}")
        expect(page.get_by_test_id("search-nothing")).to_be_visible()
        expect(page.get_by_test_id("search-hit")).to_have_count(0)
    screenshot(page, "daily-work-5-outsider-search")

    # ...nor open it: its address is a 404, as if it did not exist.
    response = page.goto(f"/customers/{customer.pk}/")
    assert response.status == 404
    expect(page.get_by_text("404", exact=True)).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(NAME)
    screenshot(page, "daily-work-6-outsider-404")
