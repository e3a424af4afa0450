"""An address no page can take (a NUL byte in the search) answers a page that says what
was wrong and that nothing changed, in the user's language, in the app's look."""

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_a_bad_address_gets_a_page_that_says_what_was_wrong(page):
    seed_organisation(reset_passwords=True)
    sign_in(page, "wangfang")
    response = page.goto("/search/?q=%E4%B8%8A%E6%B5%B7%00")
    assert response.status == 400
    expect(page.get_by_test_id("bad-request")).to_have_text("请求中包含无法保存的字符。")
    expect(page.get_by_text("没有做任何更改")).to_be_visible()
    expect(page.get_by_role("link", name="返回工作台")).to_be_visible()
    screenshot(page, "bad-request")
