"""An admin edits a pipeline's stages in Django admin: one card per stage that fits the
screen (at 1,280 px nothing runs off to the right, 删除 included), required fields as
checkboxes, and stages dragged by their handle into a new order that is saved."""

import re

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from pipelines.models import Pipeline

from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser


def stage_names(pipe: Pipeline) -> list[str]:
    return list(pipe.stages.order_by("order", "id").values_list("name", flat=True))


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def drag(page, handle, target) -> None:
    """Drag `handle` onto the lower part of `target`, as a person does with a mouse; the
    handle is brought to the top of the screen first so the target's middle is on it."""
    handle.evaluate("element => element.scrollIntoView({block: 'start'})")
    handle.hover()
    start = handle.bounding_box()
    page.mouse.down()
    page.mouse.move(start["x"] + 5, start["y"] + 10, steps=5)
    end = target.bounding_box()
    y = min(end["y"] + end["height"] * 0.6, page.viewport_size["height"] - 10)
    page.mouse.move(end["x"] + 40, y, steps=15)
    page.mouse.move(end["x"] + 40, y + 5, steps=5)
    page.mouse.up()


def test_an_admin_reorders_stages_by_dragging_on_a_page_that_fits(page):
    seed_organisation(reset_passwords=True)
    retail = Pipeline.objects.get(kind="deal", name="零售")
    before = stage_names(retail)
    assert before[:2] == ["意向", "产品介绍"]

    sign_in(page, "admin")
    page.goto(f"/admin/pipelines/pipeline/{retail.pk}/change/")
    editor = page.get_by_test_id("stage-editor")
    expect(editor).to_be_visible()
    screenshot(page, "admin-stages-1-editor")

    # Nothing runs off the right edge; each saved stage's 删除 is on screen.
    assert no_horizontal_overflow(page)
    first = editor.locator("[data-stage-row].has_original").first
    delete = first.get_by_test_id("stage-delete")
    expect(delete).to_contain_text("删除")
    delete.scroll_into_view_if_needed()
    box = delete.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]

    # Required fields are checkboxes, not a multi-select.
    assert editor.locator("select[multiple]").count() == 0
    required = first.locator(".field-required_fields input[type=checkbox]")
    assert required.count() >= 2
    expect(first.locator(".field-required_fields")).to_contain_text("金额")

    # 意向 is dragged below 产品介绍; saving keeps the new order.
    rows = editor.locator("[data-stage-row].has_original")
    drag(page, rows.nth(0).locator("[data-stage-handle]"), rows.nth(1))
    expect(rows.nth(0).locator(".crm-stage-title")).to_have_text("产品介绍")
    with loads(page, re.compile(r"/admin/pipelines/pipeline/$")):
        page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    after = stage_names(retail)
    assert after[:2] == ["产品介绍", "意向"]
    assert after[2:] == before[2:]
