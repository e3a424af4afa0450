"""Lead and deal pages: lists (filters, built-in and saved views, bulk transfer, query
counts), detail pages (stage guide and path, moving with the required-fields and
lost-reason forms, pipeline change, follow-ups, tasks, history), create and edit forms
with custom fields, conversion and losing, the customer's deals card, search, and the
outsider's 404 on every URL (DESIGN rules 1-3)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Activity, Change, Customer, DictionaryItem, SavedView, Task
from pipelines import services
from pipelines.models import Deal, DealStatus, Lead, LeadStatus, Pipeline, StageHistory

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    crm_permissions,
    custom_field,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


def reason(code: str = "price") -> DictionaryItem:
    return DictionaryItem.objects.of("lost_reason").get(code=code)


def kind(code: str = "call") -> DictionaryItem:
    return DictionaryItem.objects.of("activity_kind").get(code=code)


@pytest.fixture
def team(org):
    perms = crm_permissions(actions=("view", "add", "change", "delete"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    org.sub_member = org.set_scope(org.sub_member, DataScope.ALL, perms)
    for user in (org.owner, org.colleague, org.outsider, org.sub_member):
        user.language = "en"
        user.save(update_fields=["language"])
    return org


@pytest.fixture
def customer(team) -> Customer:
    return CustomerFactory(owner=team.owner, name="上海恒信机械设备有限公司")


def make_lead(by, **fields) -> Lead:
    fields.setdefault("person_name", "张伟")
    fields.setdefault("company_name", "杭州远景科技")
    return LeadFactory.created_by(by, **fields)


def make_deal(by, customer, **fields) -> Deal:
    fields.setdefault("title", "数控机床采购")
    return DealFactory.created_by(by, customer=customer, **fields)


@pytest.fixture
def lead(team) -> Lead:
    return make_lead(team.owner, phone="+8613800138000", email="zw@example.com")


@pytest.fixture
def deal(team, customer) -> Deal:
    return make_deal(team.owner, customer, amount=Decimal("120000"))


@pytest.fixture
def owner_client(client, team):
    client.force_login(team.owner)
    return client


# --- Lists ----------


def test_lead_list_shows_open_leads_with_stage_owner_and_days(owner_client, team, lead):
    lost = make_lead(team.owner, person_name="李四", company_name="失败公司")
    services.lose_lead(lead=lost, by=team.owner, reason=reason())
    response = owner_client.get(reverse("leads:list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "杭州远景科技 · 张伟" in html
    assert "失败公司" not in html  # default: open leads only
    assert "Contact received" in html and 'data-testid="stage-badge"' in html
    assert "bg-azure-lt" in html  # the stage's colour
    html = owner_client.get(reverse("leads:list") + "?status=lost").content.decode()
    assert "失败公司" in html and "杭州远景科技" not in html
    html = owner_client.get(reverse("leads:list") + "?status=all").content.decode()
    assert "失败公司" in html and "杭州远景科技" in html


def test_lead_list_filters(owner_client, team, lead):
    other = make_lead(
        team.owner, person_name="王五", company_name="北京大成", phone="+8613911112222"
    )
    pool = make_lead(team.owner, person_name="赵六", company_name="公海公司", owner=None)
    source = DictionaryItem.objects.of("lead_source").get(code="exhibition")
    Lead.objects.filter(pk=other.pk).update(source=source)
    url = reverse("leads:list")

    def names(query):
        response = owner_client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        return {r.pk for r in response.context["object_list"]}

    assert names("q=远景") == {lead.pk}
    assert names("q=138 0013 8000") == {lead.pk}  # phone in any format
    assert names("q=+86-139-1111-2222") == {other.pk}
    assert names("q=zw@example") == {lead.pk}
    assert names("owner=me") == {lead.pk, other.pk}
    assert names("owner=pool") == {pool.pk}
    assert names(f"source={source.pk}") == {other.pk}
    collect = stage("线索", "收集线索信息")
    services.move_to_stage(record=other, stage=collect, by=team.owner)
    assert names(f"stage={collect.pk}") == {other.pk}
    today = timezone.localdate().isoformat()
    assert names(f"created_after={today}") == {lead.pk, other.pk, pool.pk}
    assert names("created_before=2000-01-01") == set()
    # Over the time limit: 已收到联系方式 allows 1 day.
    Lead.objects.filter(pk=lead.pk).update(stage_entered_at=timezone.now() - timedelta(days=3))
    assert names("overdue=true") == {lead.pk}
    assert names("overdue=false") == {other.pk, pool.pk}


def test_department_filter_for_a_manager(client, team, customer, lead, deal):
    theirs = make_lead(team.outsider, company_name="二部线索")
    client.force_login(team.sub_member)  # scope: all
    response = client.get(f"{reverse('leads:list')}?department={team.team1.pk}")
    assert {r.pk for r in response.context["object_list"]} == {lead.pk}
    response = client.get(f"{reverse('leads:list')}?department={team.team2.pk}")
    assert {r.pk for r in response.context["object_list"]} == {theirs.pk}
    response = client.get(f"{reverse('deals:list')}?department={team.team1.pk}")
    assert {r.pk for r in response.context["object_list"]} == {deal.pk}


def test_lead_builtin_views(owner_client, team, lead):
    pool = make_lead(team.owner, company_name="公海公司", owner=None)
    Lead.objects.filter(pk=lead.pk).update(stage_entered_at=timezone.now() - timedelta(days=5))
    response = owner_client.get(reverse("leads:list"))
    views = response.context["builtin_views"]
    assert [v.key for v, _active in views] == ["mine", "unassigned", "overdue"]
    expected = {"mine": {lead.pk}, "unassigned": {pool.pk}, "overdue": {lead.pk}}
    for view, _active in views:
        response = owner_client.get(f"{reverse('leads:list')}?{view.query}")
        assert {r.pk for r in response.context["object_list"]} == expected[view.key]
        assert dict(response.context["builtin_views"]) and any(
            active for v, active in response.context["builtin_views"] if v.key == view.key
        )
    html = owner_client.get(f"{reverse('leads:list')}?overdue=true").content.decode()
    assert 'data-testid="over-limit"' in html


def test_deal_list_filters_and_views(owner_client, team, customer, deal):
    other_customer = CustomerFactory(owner=team.owner, name="广州华南贸易")
    wholesale = make_deal(
        team.owner,
        other_customer,
        title="批发订单",
        amount=Decimal("5000"),
        pipeline=Pipeline.objects.get(name="批发"),
        expected_close_date=timezone.localdate(),
    )
    won = make_deal(team.owner, customer, title="已赢的单", amount=Decimal("800"))
    Deal.objects.filter(pk=won.pk).update(
        stage=stage("零售", "赢单"), status=DealStatus.WON, closed_at=timezone.now()
    )
    url = reverse("deals:list")

    def ids(query):
        response = owner_client.get(f"{url}?{query}")
        assert response.status_code == 200, query
        return {r.pk for r in response.context["object_list"]}

    assert ids("") == {deal.pk, wholesale.pk, won.pk}
    assert ids("q=数控") == {deal.pk}
    assert ids("q=华南") == {wholesale.pk}  # by customer name
    assert ids("owner=me") == {deal.pk, wholesale.pk, won.pk}
    assert ids(f"pipeline={wholesale.pipeline_id}") == {wholesale.pk}
    assert ids(f"stage={deal.stage_id}") == {deal.pk}
    assert ids("status=won") == {won.pk}
    assert ids("status=open") == {deal.pk, wholesale.pk}
    assert ids("amount_min=1000&amount_max=10000") == {wholesale.pk}
    assert ids("amount_min=100000") == {deal.pk}
    today = timezone.localdate().isoformat()
    assert ids(f"expected_close_after={today}&expected_close_before={today}") == {wholesale.pk}
    assert ids("closing=month") == {wholesale.pk}
    assert ids("closing=none") == {deal.pk, won.pk}
    Deal.objects.filter(pk=deal.pk).update(stage_entered_at=timezone.now() - timedelta(days=30))
    assert ids("overdue=true") == {deal.pk}
    views = {v.key: v for v, _a in owner_client.get(url).context["builtin_views"]}
    assert set(views) == {"mine", "closing", "overdue", "won"}
    assert ids(views["mine"].query) == {deal.pk, wholesale.pk}
    assert ids(views["closing"].query) == {wholesale.pk}
    assert ids(views["overdue"].query) == {deal.pk}
    assert ids(views["won"].query) == {won.pk}
    html = owner_client.get(url).content.decode()
    assert "¥120,000.00" in html and "¥12,000.00" in html  # amount and weighted (10%)


def test_lists_sort_and_page(owner_client, team, customer):
    for n in range(30):
        make_deal(team.owner, customer, title=f"单{n:02d}", amount=Decimal(n))
    url = reverse("deals:list")
    response = owner_client.get(f"{url}?sort=-amount")
    rows = list(response.context["object_list"])
    assert len(rows) == 25 and rows[0].amount == Decimal(29)
    response = owner_client.get(f"{url}?sort=-amount&page=2")
    assert [r.amount for r in response.context["object_list"]] == [
        Decimal(n) for n in range(4, -1, -1)
    ]
    for sort in ("title", "stage", "in_stage", "expected_close", "created", "-updated"):
        assert owner_client.get(f"{url}?sort={sort}").status_code == 200
    for sort in ("name", "stage", "-in_stage", "created"):
        assert owner_client.get(f"{reverse('leads:list')}?sort={sort}").status_code == 200


def test_saved_view_on_leads(owner_client, team, lead):
    url = reverse("leads:list")
    owner_client.post(url, {"save_view": "1", "name": "我的展会线索", "query": "owner=me"})
    view = SavedView.objects.get(owner=team.owner, name="我的展会线索")
    assert view.record_type == "lead"
    response = owner_client.get(f"{url}?owner=me")
    assert any(active for v, active in response.context["saved_views"] if v.pk == view.pk)


def test_bulk_transfer_leads_and_deals(owner_client, team, lead, deal):
    other = make_lead(team.owner, company_name="另一家")
    response = owner_client.post(
        reverse("leads:list"),
        {"action": "transfer", "selected": [lead.pk, other.pk], "to_owner": team.owner.pk},
    )
    assert response.status_code == 302  # owner = to: nothing to change
    # A manager (scope all) hands them to a colleague.
    owner_client.force_login(team.sub_member)
    owner_client.post(
        reverse("leads:list"),
        {"action": "transfer", "selected": [lead.pk, other.pk], "to_owner": team.colleague.pk},
    )
    assert set(Lead.objects.values_list("owner", flat=True)) == {team.colleague.pk}
    change = Change.objects.filter(
        record_type=ContentType.objects.get_for_model(Lead), record_id=lead.pk, action="transferred"
    ).get()
    assert change.changes[0]["old"] == str(team.owner)
    owner_client.post(
        reverse("deals:list"),
        {"action": "transfer", "selected": [deal.pk], "to_owner": team.colleague.pk},
    )
    deal.refresh_from_db()
    assert deal.owner == team.colleague


def test_transfer_records_only_changes_editable_ones(team, lead):
    theirs = make_lead(team.outsider, company_name="别人的")
    count = services.transfer_records(
        Lead.objects.filter(pk__in=[lead.pk, theirs.pk]), to=team.colleague, by=team.owner
    )
    assert count == 1
    theirs.refresh_from_db()
    assert theirs.owner == team.outsider


def test_list_query_counts_are_bounded(owner_client, team, customer):
    url_leads, url_deals = reverse("leads:list"), reverse("deals:list")
    for n in range(3):
        make_lead(team.owner, company_name=f"公司{n}")
        make_deal(team.owner, customer, title=f"商机{n}")
    owner_client.get(url_leads)
    owner_client.get(url_deals)
    with CaptureQueriesContext(connection) as few_leads:
        owner_client.get(url_leads)
    with CaptureQueriesContext(connection) as few_deals:
        owner_client.get(url_deals)
    for n in range(20):
        make_lead(team.owner, company_name=f"更多公司{n}", source=None)
        make_deal(team.owner, CustomerFactory(owner=team.owner), title=f"更多商机{n}")
    with CaptureQueriesContext(connection) as many_leads:
        owner_client.get(url_leads)
    with CaptureQueriesContext(connection) as many_deals:
        owner_client.get(url_deals)
    assert len(many_leads) == len(few_leads)
    assert len(many_deals) == len(few_deals)
    assert len(many_leads) <= 20 and len(many_deals) <= 20


# --- Detail, moving, pipeline change ----------


def test_lead_detail_shows_guide_path_and_history(owner_client, team, lead):
    collect = stage("线索", "收集线索信息")
    StageHistory.objects.filter(record_type="lead", record_id=lead.pk).update(
        moved_at=timezone.now() - timedelta(days=2)
    )
    Lead.objects.filter(pk=lead.pk).update(stage_entered_at=timezone.now() - timedelta(days=2))
    services.move_to_stage(record=lead, stage=collect, by=team.owner)
    response = owner_client.get(reverse("leads:detail", args=[lead.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="stage-guide"' in html
    assert "Complete company, person and phone" in html  # the current stage's guide
    steps = response.context["stage_steps"]
    names = [s.stage.name for s in steps]
    assert names[:6] == [
        "已收到联系方式",
        "已指派负责人",
        "收集线索信息",
        "联系决策人",
        "收集需求",
        "需求已确认",
    ]
    assert "无效线索" not in names  # the lost stage only shows when the lead is there
    current = [s for s in steps if s.current]
    assert [s.stage.name for s in current] == ["收集线索信息"]
    assert steps[0].passed and steps[0].seconds >= 2 * 86400 - 5
    assert "2 d 0 h" in html
    assert len(response.context["stage_history"]) == 2
    assert 'data-testid="change"' in html  # the Change rows (created, stage)


def test_hidden_fields_left_out_of_the_lead_page(client, team, lead):
    role = team.owner.role
    role.field_permissions = {"lead": {"phone": "hidden"}}
    role.save()
    client.force_login(team.owner)
    html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "138 0013 8000" not in html
    assert "zw@example.com" in html


def test_detail_shows_custom_fields(owner_client, team, customer):
    custom_field("budget", "text", record_type="deal", label="预算说明")
    deal = make_deal(team.owner, customer)
    Deal.objects.filter(pk=deal.pk).update(custom={"budget": "年底前"})
    html = owner_client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert "预算说明" in html and "年底前" in html


def test_move_from_the_detail_page(owner_client, team, lead):
    target = stage("线索", "已指派负责人")
    response = owner_client.post(
        reverse("leads:move", args=[lead.pk]),
        {"stage": target.pk, "expected_stage": lead.stage_id},
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.stage == target


def test_move_refused_for_a_stale_view(owner_client, team, lead):
    first = lead.stage_id
    services.move_to_stage(record=lead, stage=stage("线索", "已指派负责人"), by=team.owner)
    response = owner_client.post(
        reverse("leads:move", args=[lead.pk]),
        {"stage": stage("线索", "收集线索信息").pk, "expected_stage": first},
        follow=True,
    )
    assert "Someone moved it" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage.name == "已指派负责人"


def test_move_needing_required_fields_shows_their_form(owner_client, team, customer, deal):
    quote = stage("零售", "报价")  # needs contact and amount
    Deal.objects.filter(pk=deal.pk).update(amount=0)
    contact = ContactFactory(customer=customer, name="陈经理")
    url = reverse("deals:move", args=[deal.pk])
    response = owner_client.post(url, {"stage": quote.pk, "expected_stage": deal.stage_id})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="pending-move"' in html
    assert {f.name for f in response.context["pending"]["form"]} == {"contact", "amount"}
    # A bad amount: the form again with the service's message.
    response = owner_client.post(
        url,
        {
            "stage": quote.pk,
            "expected_stage": deal.stage_id,
            "move_form": "1",
            "contact": contact.pk,
            "amount": "abc",
        },
    )
    assert response.status_code == 200
    assert response.context["pending"]["form"].errors.get("amount")
    deal.refresh_from_db()
    assert deal.stage.name == "意向"
    response = owner_client.post(
        url,
        {
            "stage": quote.pk,
            "expected_stage": deal.stage_id,
            "move_form": "1",
            "contact": contact.pk,
            "amount": "88000",
        },
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.stage == quote and deal.amount == Decimal("88000") and deal.contact == contact


def test_move_to_lost_needs_a_reason(owner_client, team, deal):
    lost = stage("零售", "输单")
    url = reverse("deals:move", args=[deal.pk])
    response = owner_client.post(url, {"stage": lost.pk, "expected_stage": deal.stage_id})
    assert response.status_code == 200
    assert "lost_reason" in response.context["pending"]["form"].fields
    assert 'data-testid="reason-field"' in response.content.decode()
    response = owner_client.post(
        url,
        {
            "stage": lost.pk,
            "expected_stage": deal.stage_id,
            "lost_reason": reason("competitor").pk,
            "lost_note": "选了别家",
        },
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.status == DealStatus.LOST and deal.lost_reason.code == "competitor"
    assert deal.lost_note == "选了别家"
    html = owner_client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert 'data-testid="lost"' in html and "Chose a competitor" in html


def test_lead_move_targets_leave_out_the_converted_stage(owner_client, lead):
    response = owner_client.get(reverse("leads:detail", args=[lead.pk]))
    names = {s.name for s in response.context["move_targets"]}
    assert "已转化" not in names and "无效线索" in names


def test_change_pipeline(owner_client, team, deal):
    target = stage("批发", "产品介绍")  # needs a contact
    url = reverse("deals:change_pipeline", args=[deal.pk])
    html = owner_client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert 'data-testid="pipeline-form"' in html and "Wholesale" in html
    response = owner_client.post(url, {"stage": target.pk, "expected_stage": deal.stage_id})
    assert response.status_code == 200
    assert response.context["pending"]["action"] == url
    contact = ContactFactory(customer=deal.customer)
    response = owner_client.post(
        url,
        {
            "stage": target.pk,
            "expected_stage": deal.stage_id,
            "move_form": "1",
            "contact": contact.pk,
        },
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.pipeline.name == "批发" and deal.stage == target
    move = StageHistory.objects.filter(record_type="deal", record_id=deal.pk).last()
    assert "Retail" in move.note


def test_change_pipeline_refuses_a_lead_stage(owner_client, deal):
    response = owner_client.post(
        reverse("deals:change_pipeline", args=[deal.pk]),
        {"stage": stage("线索", "收集需求").pk, "expected_stage": deal.stage_id},
        follow=True,
    )
    assert "Choose the stage" in response.content.decode()
    deal.refresh_from_db()
    assert deal.pipeline.name == "零售"


def test_viewer_without_change_may_not_move(client, team, deal):
    viewer = team.sub_member
    viewer.role.permissions = crm_permissions(actions=("view",), types=("lead", "deal"))
    viewer.role.save()
    client.force_login(viewer)
    html = client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert 'data-testid="move-form"' not in html
    response = client.post(
        reverse("deals:move", args=[deal.pk]), {"stage": stage("零售", "产品介绍").pk}
    )
    assert response.status_code == 403


# --- Activities ----------


def test_log_activity_on_a_lead_then_visible_on_the_customer(owner_client, team, lead):
    later = timezone.now() + timedelta(days=2)
    response = owner_client.post(
        reverse("leads:log_activity", args=[lead.pk]),
        {
            "kind": kind().pk,
            "content": "首次电话，对方有兴趣",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "next_follow_up_at": timezone.localtime(later).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302
    activity = Activity.objects.get(content="首次电话，对方有兴趣")
    assert activity.customer is None and activity.subject == lead
    task = Task.objects.get(activity=activity)
    assert task.assignee == team.owner and task.subject == lead and task.customer is None
    html = owner_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "首次电话，对方有兴趣" in html and task.title in html
    # Converted: the activity joins the customer's timeline.
    conversion = services.convert_lead(
        lead=lead, by=team.owner, customer=Customer(name="杭州远景科技", owner=team.owner)
    )
    html = owner_client.get(
        reverse("customers:detail", args=[conversion.customer.pk])
    ).content.decode()
    assert "首次电话，对方有兴趣" in html


def test_log_activity_on_a_deal_goes_to_its_customer(owner_client, team, customer, deal):
    response = owner_client.post(
        reverse("deals:log_activity", args=[deal.pk]),
        {
            "kind": kind().pk,
            "content": "报价沟通",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302
    activity = Activity.objects.get(content="报价沟通")
    assert activity.customer == customer and activity.subject == deal
    customer.refresh_from_db()
    assert customer.last_activity_at == activity.occurred_at


def test_log_activity_with_bad_input(owner_client, lead):
    response = owner_client.post(
        reverse("leads:log_activity", args=[lead.pk]), {"kind": kind().pk, "content": ""}
    )
    assert response.status_code == 200
    assert response.context["activity_form"].errors["content"]
    assert not Activity.objects.exists()


def test_customer_activity_logging_keeps_working(team, customer):
    from crm.services.activities import log_activity

    activity = log_activity(customer=customer, by=team.owner, kind=kind(), content="拜访")
    assert activity.customer == customer and activity.subject is None


# --- Forms ----------


def test_lead_create_form(owner_client, team):
    custom_field("budget", "text", record_type="lead", label="预算")
    url = reverse("leads:create")
    response = owner_client.get(url)
    assert response.status_code == 200 and "预算" in response.content.decode()
    response = owner_client.post(url, {"person_name": "", "company_name": "", "phone": ""})
    assert response.status_code == 200 and not Lead.objects.exists()
    response = owner_client.post(url, {"phone": "not a phone"})
    assert response.status_code == 200 and response.context["form"].errors
    response = owner_client.post(
        url,
        {"phone": "138 0013 8000", "owner": team.owner.pk, "cf_budget": "10万"},
    )
    assert response.status_code == 302
    lead = Lead.objects.get()
    assert lead.phone == "+8613800138000" and lead.custom == {"budget": "10万"}
    assert lead.stage.name == "已收到联系方式" and lead.created_by == team.owner


def test_lead_edit_form(owner_client, team, lead):
    url = reverse("leads:edit", args=[lead.pk])
    response = owner_client.get(url)
    assert response.status_code == 200
    assert response.context["form"].initial["phone"] == "138 0013 8000"
    response = owner_client.post(
        url,
        {
            "person_name": "张伟",
            "company_name": "远景科技集团",
            "phone": "13800138000",
            "owner": team.owner.pk,
        },
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.company_name == "远景科技集团" and lead.stage.name == "已收到联系方式"
    response = owner_client.post(url, {"email": "bad", "owner": team.owner.pk})
    assert response.status_code == 200 and "email" in response.context["form"].errors


def test_deal_create_form(owner_client, team, customer):
    contact = ContactFactory(customer=customer, name="陈经理")
    elsewhere = ContactFactory(customer=CustomerFactory(owner=team.owner))
    custom_field("region", "text", record_type="deal", label="区域")
    url = reverse("deals:create") + f"?customer={customer.pk}"
    response = owner_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and "陈经理" in html and "区域" in html
    assert response.context["form"].initial["customer"] == customer.pk
    quote = stage("零售", "报价")
    data = {
        "title": "新商机",
        "customer": customer.pk,
        "contact": elsewhere.pk,
        "amount": "1000",
        "owner": team.owner.pk,
        "stage": quote.pk,
        "cf_region": "华东",
    }
    response = owner_client.post(url, data)
    assert response.status_code == 200
    assert "contact" in response.context["form"].errors  # not the customer's contact
    data["contact"] = contact.pk
    data["amount"] = "0"
    response = owner_client.post(url, data)  # 报价 needs an amount
    assert response.status_code == 200 and not Deal.objects.exists()
    data["amount"] = "1000"
    response = owner_client.post(url, data)
    assert response.status_code == 302
    deal = Deal.objects.get()
    assert deal.stage == quote and deal.pipeline == quote.pipeline and deal.probability == 50
    assert deal.custom == {"region": "华东"}
    # A stage of a lead pipeline, or a closed one, is not offered.
    data["stage"] = stage("零售", "赢单").pk
    response = owner_client.post(url, data)
    assert response.status_code == 200 and "stage" in response.context["form"].errors


def test_deal_form_refuses_a_customer_the_user_may_not_change(owner_client, team):
    theirs = CustomerFactory(owner=team.outsider)
    response = owner_client.post(
        reverse("deals:create"),
        {
            "title": "x",
            "customer": theirs.pk,
            "amount": "1",
            "owner": team.owner.pk,
            "stage": stage("零售", "意向").pk,
        },
    )
    assert response.status_code == 200 and "customer" in response.context["form"].errors


def test_deal_edit_form(owner_client, team, deal):
    url = reverse("deals:edit", args=[deal.pk])
    assert owner_client.get(url).status_code == 200
    response = owner_client.post(
        url,
        {"title": "改名了", "customer": deal.customer_id, "amount": "99", "owner": team.owner.pk},
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.title == "改名了" and deal.stage.name == "意向"


def test_contact_options(owner_client, customer):
    ContactFactory(customer=customer, name="陈经理")
    response = owner_client.get(reverse("deals:contact_options") + f"?customer={customer.pk}")
    assert "陈经理" in response.content.decode()


# --- Conversion and losing ----------


def test_convert_page_is_prefilled(owner_client, lead):
    response = owner_client.get(reverse("leads:convert", args=[lead.pk]))
    assert response.status_code == 200
    assert response.context["customer_form"].initial["name"] == "杭州远景科技"
    contact = response.context["contact_form"].initial
    assert contact["name"] == "张伟" and contact["mobile"] == "138 0013 8000"


def test_convert_into_a_new_customer_with_contact_and_deal(owner_client, team, lead):
    start = stage("零售", "产品介绍")  # needs a contact: the conversion gives one
    response = owner_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {
            "c-customer_mode": "new",
            "c-create_contact": "on",
            "c-create_deal": "on",
            "customer-name": "杭州远景科技",
            "customer-phone": "138 0013 8000",
            "customer-email": "",
            "contact-name": "张伟",
            "contact-mobile": "138 0013 8000",
            "deal-title": "远景首单",
            "deal-amount": "50000",
            "deal-stage": start.pk,
        },
    )
    assert response.status_code == 302, response.context["choice_form"].errors
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED
    assert lead.converted_customer.name == "杭州远景科技"
    assert lead.converted_customer.owner == team.owner
    assert lead.converted_contact.customer == lead.converted_customer
    assert lead.converted_deal.stage == start and lead.converted_deal.contact.name == "张伟"
    html = owner_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="converted"' in html
    assert reverse("customers:detail", args=[lead.converted_customer_id]) in html
    assert reverse("deals:detail", args=[lead.converted_deal_id]) in html
    assert 'data-testid="convert"' not in html
    # A converted lead cannot be converted again.
    response = owner_client.get(reverse("leads:convert", args=[lead.pk]))
    assert response.status_code == 302


def test_convert_warns_about_duplicates(owner_client, team, lead, customer):
    Customer.objects.filter(pk=customer.pk).update(name="杭州远景科技")
    url = reverse("leads:convert", args=[lead.pk])
    response = owner_client.get(url)
    assert response.context["duplicates"]
    assert [c.pk for c in response.context["usable"]] == [customer.pk]
    data = {"c-customer_mode": "new", "customer-name": "杭州远景科技"}
    response = owner_client.post(url, data)
    assert response.status_code == 200 and response.context["confirm_needed"]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN
    response = owner_client.post(url, {**data, "c-confirm_duplicate": "on"})
    assert response.status_code == 302
    assert Customer.objects.filter(name="杭州远景科技").count() == 2


def test_convert_into_an_existing_customer(owner_client, team, lead, customer):
    url = reverse("leads:convert", args=[lead.pk])
    response = owner_client.get(f"{url}?customer={customer.pk}")
    assert response.context["choice_form"].initial["customer_mode"] == "existing"
    response = owner_client.post(
        url, {"c-customer_mode": "existing", "c-existing_customer": customer.pk}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.converted_customer == customer and lead.converted_contact is None
    assert Customer.objects.count() == 1


def test_convert_refused_for_a_customer_the_user_may_not_change(owner_client, team, lead):
    theirs = CustomerFactory(owner=team.outsider)
    response = owner_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {"c-customer_mode": "existing", "c-existing_customer": theirs.pk},
    )
    assert response.status_code == 200
    assert response.context["choice_form"].errors["existing_customer"]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN


def test_convert_with_bad_input(owner_client, lead):
    response = owner_client.post(
        reverse("leads:convert", args=[lead.pk]),
        {"c-customer_mode": "new", "customer-name": "", "c-create_deal": "on", "deal-title": ""},
    )
    assert response.status_code == 200
    assert response.context["customer_form"].errors and response.context["deal_form"].errors
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN


def test_lose_a_lead(owner_client, team, lead):
    url = reverse("leads:lose", args=[lead.pk])
    response = owner_client.post(url, {"lost_reason": "", "lost_note": "没说"})
    assert response.status_code == 200
    assert response.context["lose_form"].errors["lost_reason"]
    assert 'data-testid="lose-errors"' in response.content.decode()
    lead.refresh_from_db()
    assert lead.status == LeadStatus.OPEN
    response = owner_client.post(
        url, {"lost_reason": reason("no_need").pk, "lost_note": "只是问问"}
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.status == LeadStatus.LOST and lead.lost_reason.code == "no_need"
    assert lead.stage.name == "无效线索"
    html = owner_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="lost"' in html and "只是问问" in html


def test_a_lead_is_lost_in_lead_words_and_a_deal_in_deal_words(owner_client, team, lead, deal):
    """In Chinese a lead is 丢失 (its reason 丢失原因) and a deal is 输单 (输单原因)."""
    team.owner.language = "zh-hans"
    team.owner.save(update_fields=["language"])
    url = reverse("leads:lose", args=[lead.pk])
    html = owner_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "丢失原因" in html and "输单原因" not in html
    html = owner_client.post(url, {"lost_reason": ""}).content.decode()
    assert "请选择丢失原因。" in html
    owner_client.post(url, {"lost_reason": reason("no_need").pk})
    html = owner_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "已丢失" in html and "输单" not in html
    response = owner_client.post(
        reverse("deals:move", args=[deal.pk]),
        {"stage": stage("零售", "输单").pk, "expected_stage": deal.stage_id},
    )
    assert "输单原因" in response.content.decode()


# --- The customer's deals, navigation, search ----------


def test_customer_page_lists_its_deals(owner_client, customer, deal):
    url = reverse("customers:detail", args=[customer.pk])
    owner_client.get(url)
    html = owner_client.get(url).content.decode()
    assert 'data-testid="deals-card"' in html and "数控机床采购" in html
    assert f"{reverse('deals:create')}?customer={customer.pk}" in html


def test_customer_page_deals_card_costs_one_query(owner_client, team, customer):
    url = reverse("customers:detail", args=[customer.pk])
    owner_client.get(url)
    with CaptureQueriesContext(connection) as none:
        owner_client.get(url)
    for n in range(5):
        make_deal(team.owner, customer, title=f"商机{n}")
    with CaptureQueriesContext(connection) as five:
        owner_client.get(url)
    assert len(five) == len(none)


def test_navigation_has_leads_and_deals(owner_client):
    html = owner_client.get(reverse("dashboard")).content.decode()
    assert reverse("leads:list") in html and reverse("deals:list") in html


def test_search_finds_leads_and_deals(owner_client, lead, deal):
    html = owner_client.get(reverse("search") + "?q=远景").content.decode()
    assert 'data-testid="search-group-leads"' in html
    html = owner_client.get(reverse("search") + "?q=张伟").content.decode()
    assert 'data-testid="search-group-leads"' in html
    html = owner_client.get(reverse("search") + "?q=13800138000").content.decode()
    assert 'data-testid="search-group-leads"' in html
    html = owner_client.get(reverse("search") + "?q=数控机床").content.decode()
    assert 'data-testid="search-group-deals"' in html and "上海恒信机械" in html


def test_outsider_search_finds_nothing(client, team, lead, deal):
    client.force_login(team.outsider)
    html = client.get(reverse("search") + "?q=远景").content.decode()
    assert 'data-testid="search-group-leads"' not in html


# --- Visibility ----------


def test_outsider_gets_404_on_every_url(client, team, lead, deal):
    client.force_login(team.outsider)
    lead_urls = ["detail", "edit", "move", "lose", "convert", "log_activity"]
    deal_urls = ["detail", "edit", "move", "change_pipeline", "log_activity"]
    for name in lead_urls:
        url = reverse(f"leads:{name}", args=[lead.pk])
        assert client.get(url).status_code in (404, 405), url
        posted = client.post(url, {"stage": stage("线索", "已指派负责人").pk})
        assert posted.status_code == (405 if name == "detail" else 404), url
    for name in deal_urls:
        url = reverse(f"deals:{name}", args=[deal.pk])
        assert client.get(url).status_code in (404, 405), url
        posted = client.post(url, {"stage": stage("零售", "产品介绍").pk})
        assert posted.status_code == (405 if name == "detail" else 404), url
    for name in ("detail", "edit"):
        assert client.get(reverse(f"leads:{name}", args=[lead.pk])).status_code == 404
        assert client.get(reverse(f"deals:{name}", args=[deal.pk])).status_code == 404
    assert client.get(reverse("leads:convert", args=[lead.pk])).status_code == 404
    lead.refresh_from_db()
    deal.refresh_from_db()
    assert lead.stage.name == "已收到联系方式" and deal.stage.name == "意向"
    # Lists: nothing of theirs.
    assert not list(client.get(reverse("leads:list")).context["object_list"])
    assert not list(client.get(reverse("deals:list")).context["object_list"])
    # Bulk transfer of rows they cannot see changes nothing.
    client.post(
        reverse("leads:list"),
        {"action": "transfer", "selected": [lead.pk], "to_owner": team.outsider.pk},
    )
    lead.refresh_from_db()
    assert lead.owner == team.owner


def test_unassigned_leads_are_seen_by_everyone(client, team):
    pool = make_lead(team.owner, company_name="公海线索", owner=None)
    client.force_login(team.outsider)
    assert client.get(reverse("leads:detail", args=[pool.pk])).status_code == 200


def test_without_lead_permission_the_pages_are_closed(client, team, lead):
    team.colleague.role.permissions = crm_permissions()
    team.colleague.role.save()
    client.force_login(team.colleague)
    assert client.get(reverse("leads:list")).status_code == 403
    assert client.get(reverse("deals:list")).status_code == 403
    assert client.get(reverse("leads:create")).status_code == 403
    html = client.get(reverse("dashboard")).content.decode()
    assert reverse("leads:list") not in html


def test_anonymous_is_sent_to_sign_in(client, lead):
    for url in (
        reverse("leads:list"),
        reverse("leads:detail", args=[lead.pk]),
        reverse("leads:convert", args=[lead.pk]),
        reverse("deals:list"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]
