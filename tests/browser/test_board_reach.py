"""The board's reach, at a desk and on a phone: a rep moves a deal into a column out of
sight (at a desk the board scrolls while the card is held at its edge; on a phone the
card's menu moves it), takes the move back from its message, and fits the whole
pipeline on a 1,280 px screen in the compact view. A stage that needs a contact the
customer does not have yet lets the rep add one in the move's dialog."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from crm.models import Contact
from pipelines.models import Deal, Pipeline, StageHistory

from ..factories import ContactFactory, CustomerFactory, DealFactory
from .conftest import answered, screenshot, sign_in
from .test_board import card, head

pytestmark = pytest.mark.browser

IN_VIEW = """id => {
  const rect = document.getElementById(id).getBoundingClientRect();
  return rect.left >= 0 && rect.right <= document.documentElement.clientWidth;
}"""


def retail_stages():
    retail = Pipeline.objects.get(kind="deal", name="零售")
    return retail, {stage.name: stage for stage in retail.stages.all()}


def drag_to_far_column(page, record, target) -> None:
    """Hold the card at the board's right edge until the target column has scrolled
    into view, then drop it there."""
    item = card(page, record)
    board = page.get_by_test_id("board")
    target_list = page.locator(f"#cards-{target.pk}")
    with answered(page, "/board/move/"):
        item.hover(position={"x": 20, "y": 12})
        start = item.bounding_box()
        page.mouse.down()
        page.mouse.move(start["x"] + 40, start["y"] + 30, steps=5)
        edge = board.bounding_box()
        right = min(edge["x"] + edge["width"], page.viewport_size["width"]) - 8
        page.mouse.move(right, start["y"] + 40, steps=15)
        # The board scrolls by itself while the card is held there.
        page.wait_for_function(IN_VIEW, arg=f"cards-{target.pk}")
        end = target_list.bounding_box()
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=10)
        page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 28, steps=5)
        page.mouse.up()


def test_a_deal_moves_to_a_column_out_of_sight_and_the_move_is_undone(page):
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")
    retail, stages = retail_stages()
    interest, contract = stages["意向"], stages["合同"]
    customer = CustomerFactory(name="宁波海曙精工机械有限公司", owner=wangfang)
    deal = DealFactory(
        title="数控机床年度维保",
        customer=customer,
        contact=ContactFactory(customer=customer, name="设备部 周工"),
        amount=Decimal("64000"),
        expected_close_date=timezone.localdate() + timedelta(days=20),
        owner=wangfang,
        stage=interest,
    )

    sign_in(page, "wangfang")
    page.goto(f"/pipelines/{retail.pk}/board/")
    board = page.get_by_test_id("board")
    expect(head(page, interest)).to_have_attribute("data-count", "1")
    contract_column = page.locator(f"#column-{contract.pk}")

    if page.viewport_name == "desktop":
        # 合同 is beyond the window's right edge.
        box = contract_column.bounding_box()
        assert box["x"] >= page.viewport_size["width"]
        drag_to_far_column(page, deal, contract)
        assert board.evaluate("board => board.scrollLeft") > 0
    else:
        item = card(page, deal)
        with answered(page, "/board/move/"):
            item.get_by_test_id("card-menu").click()
            menu = item.locator(".dropdown-menu")
            expect(menu).to_be_visible()
            menu.locator(f"[data-move-to='{contract.pk}']").click()

    message = page.get_by_test_id("board-message").last
    expect(message).to_contain_text("已移到“合同”")
    expect(page.locator(f"#cards-{contract.pk} #card-deal-{deal.pk}")).to_have_count(1)
    expect(head(page, contract)).to_have_attribute("data-count", "1")
    deal.refresh_from_db()
    assert deal.stage == contract
    screenshot(page, "board-reach-1-moved")

    # The message offers to undo the move: the deal goes back to 意向.
    with answered(page, "/board/undo/"):
        message.get_by_test_id("undo").click()
    expect(page.locator(f"#cards-{interest.pk} #card-deal-{deal.pk}")).to_have_count(1)
    expect(head(page, interest)).to_have_attribute("data-count", "1")
    expect(head(page, contract)).to_have_attribute("data-count", "0")
    expect(page.get_by_test_id("board-message").last).to_contain_text("意向")
    deal.refresh_from_db()
    assert deal.stage == interest
    assert StageHistory.objects.filter(record_id=deal.pk).count() == 2
    screenshot(page, "board-reach-2-undone")

    if page.viewport_name == "desktop":
        # The compact view fits the whole pipeline (six stages, won and lost) on screen.
        page.get_by_test_id("compact-toggle").click()
        expect(board).to_have_class("app-board app-board-compact")
        assert board.evaluate("board => board.scrollWidth <= board.clientWidth")
        page.wait_for_function(IN_VIEW, arg=f"column-{contract.pk}")
        screenshot(page, "board-reach-3-compact")
        # It stays compact after a reload.
        page.reload()
        expect(page.get_by_test_id("board")).to_have_class("app-board app-board-compact")


def test_a_contact_is_added_in_the_move_dialog(page):
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")
    retail, stages = retail_stages()
    keen, quote = stages["产生兴趣"], stages["报价"]  # 报价 needs the contact and amount
    customer = CustomerFactory(name="常州天宁新材料有限公司", owner=wangfang)
    deal = DealFactory(
        title="包装材料试用",
        customer=customer,
        contact=None,
        amount=Decimal("26000"),
        owner=wangfang,
        stage=keen,
    )
    assert not customer.contacts.exists()

    sign_in(page, "wangfang")
    page.goto(f"/pipelines/{retail.pk}/board/")
    item = card(page, deal)
    with answered(page, "/board/move/"):
        if page.viewport_name == "phone":
            item.get_by_test_id("card-menu").click()
            menu = item.locator(".dropdown-menu")
            expect(menu).to_be_visible()
            menu.locator(f"[data-move-to='{quote.pk}']").click()
        else:
            target = page.locator(f"#cards-{quote.pk}")
            item.hover(position={"x": 20, "y": 12})
            start = item.bounding_box()
            page.mouse.down()
            end = target.bounding_box()
            page.mouse.move(start["x"] + 40, start["y"] + 30, steps=5)
            page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=15)
            page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 28, steps=5)
            page.mouse.up()

    # The customer has no contact: the dialog asks for a new one instead of a list.
    modal = page.get_by_test_id("board-modal")
    expect(modal.get_by_test_id("new-contact")).to_be_visible()
    expect(modal).to_contain_text("常州天宁新材料有限公司")
    expect(modal.locator("select[name=contact]")).to_have_count(0)
    modal.locator("[name='new_contact-name']").fill("采购部 钱经理")
    modal.locator("[name='new_contact-mobile']").fill("139 1234 567O")  # a letter O for a zero
    screenshot(page, "board-contact-1-dialog")
    with answered(page, "/board/move/"):
        modal.get_by_test_id("move-submit").click()
    # Not a phone number: the contact form's message, and nothing is saved.
    expect(modal.get_by_test_id("error-mobile")).to_be_visible()
    assert not customer.contacts.exists()
    deal.refresh_from_db()
    assert deal.stage == keen
    screenshot(page, "board-contact-2-error")

    modal.locator("[name='new_contact-mobile']").fill("139 1234 5678")
    with answered(page, "/board/move/"):
        modal.get_by_test_id("move-submit").click()
    expect(modal).to_be_hidden()
    expect(page.locator(".modal-backdrop")).to_have_count(0)
    expect(page.locator(f"#cards-{quote.pk} #card-deal-{deal.pk}")).to_have_count(1)
    expect(page.get_by_test_id("board-message").last).to_contain_text("报价")
    contact = Contact.objects.get(customer=customer)
    assert (contact.name, contact.mobile) == ("采购部 钱经理", "+8613912345678")
    deal = Deal.objects.get(pk=deal.pk)
    assert deal.stage == quote and deal.contact == contact
    screenshot(page, "board-contact-3-moved")
