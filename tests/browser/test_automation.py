"""A stage robot made in the browser acts when a rep moves a deal: the admin adds a robot
to the 报价 stage from its stage settings (a task for the owner, due in 2 days), 王芳
drags her deal into 报价 on the board, and a real Celery worker gives her the task — on
her start page and under the bell."""

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from automation.models import Rule
from crm.models import Task
from pipelines.models import Pipeline

from ..test_background import celery_worker, wait_for
from .conftest import loads, screenshot, sign_in
from .test_board import deal, move

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_a_robot_added_to_a_stage_gives_the_rep_a_task(page, tmp_path):
    seed_organisation(reset_passwords=True)
    wangfang = User.objects.get(username="wangfang")
    retail = Pipeline.objects.get(kind="deal", name="零售")
    keen, quote = (retail.stages.get(name=name) for name in ("产生兴趣", "报价"))
    offer = deal(wangfang, keen, "会议室升级改造", "52000", "南京云图信息技术有限公司")

    # The admin opens the 零售 pipeline's stage settings: 报价 has no robot yet.
    sign_in(page, "admin")
    with loads(page):
        page.goto(f"/admin/pipelines/pipeline/{retail.pk}/change/")
    robots = page.locator(f".stage-robots[data-stage='{quote.pk}']")
    expect(robots).to_contain_text("暂无机器人")
    screenshot(page, "robot-1-stage-settings")

    # He adds one from the "task for the owner" template and makes it due in 2 days.
    with loads(page, re.compile(r"/admin/automation/rule/add/")):
        robots.locator("a[data-template='owner_task']").click()
    expect(page.locator("#id_stage")).to_have_value(str(quote.pk))
    params = page.locator("#id_actions-0-params")
    # The settings' JSON is folded under the rule builder's inputs.
    page.locator("#actions-0 .rb-json summary").click()
    task = json.loads(params.input_value())
    task.update(title="报价跟进：{{ record }}", due={"amount": 2, "unit": "days"})
    task["working_hours"] = False
    params.fill(json.dumps(task, ensure_ascii=False))
    page.locator("#id_is_active").check()
    screenshot(page, "robot-2-rule-form")
    with loads(page):
        page.locator("input[name='_save']").click()
    expect(page.locator(".messagelist")).to_be_visible()
    rule = Rule.objects.get(stage=quote)
    assert rule.is_active and rule.record_type == "deal"

    with celery_worker(tmp_path):
        # 王芳 moves her deal into 报价 on the board.
        page.context.clear_cookies()
        sign_in(page, "wangfang")
        with loads(page):
            page.goto(f"/pipelines/{retail.pk}/board/")
        move(page, offer, quote)
        expect(page.get_by_test_id("board-message").last).to_contain_text("报价")

        made = wait_for(
            lambda: Task.objects.filter(
                assignee=wangfang, title__contains="会议室升级改造"
            ).first(),
            what="the worker to give 王芳 the robot's task",
        )
    assert made.title == "报价跟进：会议室升级改造"
    assert made.subject_id == offer.pk

    # Her start page lists it among the tasks coming up, and the bell counts it.
    with loads(page):
        page.goto("/")
    expect(page.get_by_test_id("coming-up")).to_be_visible()
    expect(page.get_by_text("报价跟进：会议室升级改造").first).to_be_visible()
    expect(page.get_by_test_id("bell-count")).to_have_text("1")
    screenshot(page, "robot-3-dashboard")
    with loads(page, re.compile(r"/notifications/")):
        page.get_by_test_id("bell").click()
    expect(page.get_by_text("报价跟进：会议室升级改造").first).to_be_visible()
    screenshot(page, "robot-4-notifications")
