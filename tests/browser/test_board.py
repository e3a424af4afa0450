"""The pipeline board in the browser, at a desk and on a phone: a sales manager moves a
deal to the next stage and sees both columns' totals change; a move into a stage with an
unfilled required field opens a small form, and once it is filled the move completes.
At a desk the cards are dragged; on a phone the card's menu moves them."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from pipelines.models import Deal, Pipeline, StageHistory

from ..factories import ContactFactory, CustomerFactory, DealFactory
from .conftest import answered, loads, screenshot, sign_in

pytestmark = pytest.mark.browser


def deal(owner, stage, title, amount, customer_name):
    customer = CustomerFactory(name=customer_name, owner=owner)
    return DealFactory(
        title=title,
        customer=customer,
        contact=ContactFactory(customer=customer, name="采购部 王经理"),
        amount=Decimal(amount),
        owner=owner,
        stage=stage,
    )


def head(page, stage):
    return page.locator(f"#column-head-{stage.pk}")


def card(page, record):
    return page.locator(f"#card-deal-{record.pk}")


def move(page, record, target) -> None:
    """Drag the card onto the target column at a desk; use its menu on a phone. Returns
    once the board's answer has been swapped in."""
    item = card(page, record)
    with answered(page, "/board/move/"):
        if page.viewport_name == "phone":
            item.get_by_test_id("card-menu").click()
            # Bootstrap opens the menu; its items are clicked once it shows.
            menu = item.locator(".dropdown-menu")
            expect(menu).to_be_visible()
            menu.locator(f"[data-move-to='{target.pk}']").click()
            return
        column = page.locator(f"#cards-{target.pk}")
        column.scroll_into_view_if_needed()
        # The drag starts on the card once it stands still and nothing covers it.
        item.hover(position={"x": 20, "y": 12})
        start = item.bounding_box()
        page.mouse.down()
        end = column.bounding_box()
        page.mouse.move(start["x"] + 40, start["y"] + 30, steps=5)
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=15)
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 28, steps=5)
        page.mouse.up()


def test_a_manager_moves_deals_on_the_board(page):
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")
    lina = User.objects.get(username="lina")
    retail = Pipeline.objects.get(kind="deal", name="零售")
    interest, intro, keen, quote = (
        retail.stages.get(name=name) for name in ("意向", "产品介绍", "产生兴趣", "报价")
    )
    first = deal(wangfang, interest, "办公家具集采", "38000", "上海启明办公用品有限公司")
    other = deal(lina, interest, "年度耗材框架协议", "12500", "苏州恒信商贸有限公司")
    deal(lina, intro, "展厅样品采购", "6800", "杭州远景展览服务有限公司")
    unpriced = deal(wangfang, keen, "会议室升级改造", "0", "南京云图信息技术有限公司")

    # 张伟 (销售经理) opens the board from the navigation.
    sign_in(page, "zhangwei")
    if page.viewport_name == "phone":
        page.get_by_role("button", name=re.compile("菜单|menu", re.I)).click()
        # Bootstrap's collapse slides the menu open; its links are used once it is open.
        expect(page.locator("#navbar-menu")).to_have_class(re.compile(r"\bshow\b"))
    with loads(page, re.compile(rf"/pipelines/{retail.pk}/board/$")):
        page.locator("a.nav-link[href='/pipelines/']").click()
    expect(head(page, interest)).to_have_attribute("data-count", "2")
    expect(head(page, interest)).to_have_attribute("data-amount", "50500.00")
    expect(head(page, intro)).to_have_attribute("data-count", "1")
    screenshot(page, "board-1-start")

    # He moves 王芳's deal on to the next stage: both columns' totals follow.
    move(page, first, intro)
    # The message first: it fades after a few seconds, the columns stay.
    expect(page.get_by_test_id("board-message").last).to_contain_text("产品介绍")
    expect(head(page, intro)).to_have_attribute("data-count", "2")
    expect(head(page, intro)).to_have_attribute("data-amount", "44800.00")
    expect(head(page, interest)).to_have_attribute("data-count", "1")
    expect(head(page, interest).get_by_test_id("column-amount")).to_have_text("¥1.25万")
    expect(page.locator(f"#cards-{intro.pk} #card-deal-{first.pk}")).to_have_count(1)
    first.refresh_from_db()
    assert first.stage == intro
    assert StageHistory.objects.filter(record_id=first.pk, to_stage=intro).exists()
    screenshot(page, "board-2-moved")

    # 报价 needs an amount: the board asks for it, and the move completes once filled.
    move(page, unpriced, quote)
    modal = page.get_by_test_id("board-modal")
    expect(modal.get_by_test_id("move-form")).to_be_visible()
    expect(modal).to_contain_text("报价")
    # Meanwhile the card is back where it is in the database.
    expect(page.locator(f"#cards-{keen.pk} #card-deal-{unpriced.pk}")).to_have_count(1)
    screenshot(page, "board-3-required-form")
    modal.locator("input[name=amount]").fill("88000")
    with answered(page, "/board/move/"):
        modal.get_by_test_id("move-submit").click()
    expect(modal).to_be_hidden()
    expect(page.locator(".modal-backdrop")).to_have_count(0)
    expect(page.locator(f"#cards-{quote.pk} #card-deal-{unpriced.pk}")).to_have_count(1)
    expect(head(page, quote)).to_have_attribute("data-count", "1")
    expect(head(page, quote)).to_have_attribute("data-amount", "88000.00")
    expect(head(page, keen)).to_have_attribute("data-count", "0")
    unpriced.refresh_from_db()
    assert unpriced.stage == quote and unpriced.amount == Decimal("88000")
    screenshot(page, "board-4-done")

    # Someone else moves 李娜's deal meanwhile: his move from the old view is refused with
    # a message, and the card shows up where it really is.
    Deal.objects.filter(pk=other.pk).update(stage=keen, probability=keen.probability)
    move(page, other, intro)
    expect(page.get_by_test_id("board-message").last).to_contain_text("产生兴趣")
    expect(page.locator(f"#cards-{keen.pk} #card-deal-{other.pk}")).to_have_count(1)
    expect(head(page, keen)).to_have_attribute("data-count", "1")
    expect(head(page, intro)).to_have_attribute("data-count", "2")
    expect(head(page, interest)).to_have_attribute("data-count", "0")
    other.refresh_from_db()
    assert other.stage == keen
    # From the refreshed column it moves on as usual.
    move(page, other, quote)
    expect(head(page, quote)).to_have_attribute("data-count", "2")
    expect(head(page, keen)).to_have_attribute("data-count", "0")

    # After a reload the board shows the same.
    page.reload()
    expect(head(page, quote)).to_have_attribute("data-count", "2")
    expect(head(page, intro)).to_have_attribute("data-count", "2")
