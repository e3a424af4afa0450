"""The pipeline board: columns per stage with totals from the database, only visible
records, a query count that does not grow with the number of deals, pages of a column,
and moves through the service (success, required fields, lost reasons, stale views,
outsiders, read-only roles, CSRF)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import DictionaryItem
from pipelines.models import (
    Deal,
    DealStatus,
    LeadStatus,
    Pipeline,
    StageHistory,
)
from pipelines.views_board import CARDS_PER_COLUMN

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    UserFactory,
    crm_permissions,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
HTMX = {"HTTP_HX_REQUEST": "true"}
HEAD = re.compile(
    r'<header class="app-board-head" id="column-head-(\d+)"[^>]*?data-count="(\d+)"'
    r'(?: data-amount="([\d.]+)" data-weighted="([\d.]+)")?'
)


def perms(actions=("view", "add", "change")):
    return crm_permissions(actions, types=TYPES)


@pytest.fixture
def org2(org):
    """The org with roles over leads and deals too, and a manager of 销售一部 (and below)."""
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms()))
    manager = UserFactory(username="manager", name="张伟", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, perms())
    return org


@pytest.fixture
def retail():
    return Pipeline.objects.get(kind="deal", name="零售")


def stage(pipeline, name):
    return pipeline.stages.get(name=name)


def make_deal(owner, st, *, amount="1000", title=None, contact=True, days=0, closed=None):
    customer = CustomerFactory(owner=owner)
    return DealFactory(
        title=title or f"商机 {customer.name}",
        customer=customer,
        contact=ContactFactory(customer=customer) if contact else None,
        amount=Decimal(amount),
        owner=owner,
        stage=st,
        stage_entered_at=timezone.now() - timedelta(days=days),
        closed_at=closed,
    )


def bulk_deals(owner, st, n):
    customer = CustomerFactory(owner=owner)
    Deal.objects.bulk_create(
        DealFactory.build(
            title=f"批量商机{i}", customer=customer, amount=Decimal(100 + i), owner=owner, stage=st
        )
        for i in range(n)
    )


def board_url(pipeline, **params):
    url = reverse("board:board", args=[pipeline.pk])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def heads(html: str) -> dict[int, tuple[int, Decimal | None, Decimal | None]]:
    found = {}
    for stage_id, count, amount, weighted in HEAD.findall(html):
        found[int(stage_id)] = (
            int(count),
            Decimal(amount) if amount else None,
            Decimal(weighted) if weighted else None,
        )
    return found


def card_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'id="card-(?:deal|lead)-(\d+)"', html)]


def column_cards(html: str, stage_id: int) -> list[int]:
    start = f'<div class="app-board-cards" id="cards-{stage_id}"'
    match = re.search(rf'{start}.*?</div>\s*<div class="app-board-more"', html, re.S)
    return card_ids(match.group(0)) if match else []


def db_totals(queryset):
    """Count, amount and weighted amount per stage, added up here in Python."""
    totals = {}
    for deal in queryset:
        count, amount, weighted = totals.get(deal.stage_id, (0, Decimal("0"), Decimal("0")))
        totals[deal.stage_id] = (
            count + 1,
            amount + deal.amount,
            weighted + deal.amount * deal.probability / 100,
        )
    cent = Decimal("0.01")
    return {k: (n, a.quantize(cent), w.quantize(cent)) for k, (n, a, w) in totals.items()}


def move(client, pipeline, deal, to, *, expected=None, htmx=True, follow=False, **data):
    return client.post(
        reverse("board:move", args=[pipeline.pk]),
        {
            "record": deal.pk,
            "stage": to.pk,
            "expected_stage": expected.pk if expected else deal.stage_id,
            **data,
        },
        follow=follow,
        **(HTMX if htmx else {}),
    )


# --- The board --------------------------------------------------------------------------


def test_columns_per_stage_with_totals_that_match_the_database(client, org2, retail):
    interest, quote = stage(retail, "意向"), stage(retail, "报价")
    won, lost = stage(retail, "赢单"), stage(retail, "输单")
    now = timezone.now()
    make_deal(org2.owner, interest, amount="100.50", title="小单")
    make_deal(org2.owner, interest, amount="2500")
    make_deal(org2.owner, quote, amount="12000", days=30, title="超时的报价")
    make_deal(org2.owner, won, amount="8000", closed=now - timedelta(days=3), title="刚赢的单")
    make_deal(org2.owner, won, amount="9999", closed=now - timedelta(days=90), title="很久以前")
    make_deal(org2.owner, lost, amount="500", closed=now - timedelta(days=1))
    client.force_login(org2.owner)

    response = client.get(board_url(retail))

    assert response.status_code == 200
    html = response.content.decode()
    found = heads(html)
    stages = list(retail.stages.all())
    # Open stages in their order, then won, then lost.
    expected_order = [s.pk for s in stages if s.kind == "open"] + [won.pk, lost.pk]
    assert list(found) == expected_order
    recent = Deal.objects.filter(pipeline=retail).exclude(closed_at__lt=now - timedelta(days=30))
    expected = db_totals(recent)
    for s in stages:
        count, amount, weighted = expected.get(s.pk, (0, Decimal("0.00"), Decimal("0.00")))
        assert found[s.pk] == (count, amount, weighted), s.name
    assert found[interest.pk] == (2, Decimal("2600.50"), Decimal("260.05"))
    assert found[won.pk][0] == 1  # the deal won 90 days ago is not on the board
    assert "很久以前" not in html and "刚赢的单" in html
    # Cards: title, customer, owner, amount, days in stage, the time-limit mark.
    assert "超时的报价" in html and "王芳" in html and "¥12,000" in html
    overdue = re.search(r'<article[^>]*app-card-overdue[^>]*id="card-deal-(\d+)"', html)
    assert overdue and Deal.objects.get(pk=overdue.group(1)).title == "超时的报价"
    assert html.count('data-testid="overdue"') == 1


def test_card_text_is_escaped(client, org2, retail):
    """Cards are built in Python (pipelines/board_cards.py): every text from a record is
    escaped as a template would."""
    deal = make_deal(org2.owner, stage(retail, "意向"), title='<script>alert("t")</script>')
    deal.customer.name = "<b>客户</b> & 公司"
    deal.customer.save()
    client.force_login(org2.owner)
    html = client.get(board_url(retail)).content.decode()
    assert "<script>alert" not in html and "<b>客户" not in html
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;客户&lt;/b&gt; &amp; 公司" in html


def test_an_outsider_sees_none_of_the_owners_deals(client, org2, retail):
    interest = stage(retail, "意向")
    make_deal(org2.owner, interest, amount="5000", title="王芳的商机")
    make_deal(org2.outsider, interest, amount="70", title="刘洋的商机")
    client.force_login(org2.outsider)

    html = client.get(board_url(retail)).content.decode()

    assert "王芳的商机" not in html
    assert "刘洋的商机" in html
    assert heads(html)[interest.pk] == (1, Decimal("70.00"), Decimal("7.00"))


def test_a_manager_sees_the_team_and_totals_only_over_visible_deals(client, org2, retail):
    interest = stage(retail, "意向")
    make_deal(org2.owner, interest, amount="100", title="王芳的")
    make_deal(org2.colleague, interest, amount="200", title="李娜的")
    make_deal(org2.sub_member, interest, amount="400", title="赵强的")
    make_deal(org2.outsider, interest, amount="800", title="刘洋的")
    client.force_login(org2.manager)

    html = client.get(board_url(retail)).content.decode()

    for title in ("王芳的", "李娜的", "赵强的"):
        assert title in html
    assert "刘洋的" not in html
    assert heads(html)[interest.pk] == (3, Decimal("700.00"), Decimal("70.00"))

    # The owner filter: "me" and a person in scope; the department filter.
    html = client.get(board_url(retail, owner=org2.colleague.pk)).content.decode()
    assert "李娜的" in html and "王芳的" not in html
    assert heads(html)[interest.pk][0] == 1
    html = client.get(board_url(retail, department=org2.team1_east.pk)).content.decode()
    assert "赵强的" in html and "李娜的" not in html
    assert heads(html)[interest.pk][1] == Decimal("400.00")


def test_a_colleague_with_own_scope_sees_only_their_own(client, org2, retail):
    make_deal(org2.owner, stage(retail, "意向"), title="王芳的")
    client.force_login(org2.colleague)
    html = client.get(board_url(retail)).content.decode()
    assert "王芳的" not in html
    assert all(count == 0 for count, *_ in heads(html).values())


def test_query_count_does_not_grow_with_the_number_of_deals(client, org2, retail):
    stages = [s for s in retail.stages.all() if s.kind == "open"]
    client.force_login(org2.owner)

    def count_queries():
        client.get(board_url(retail))  # warm the per-process caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(board_url(retail))
        assert response.status_code == 200
        return len(queries), response.content.decode()

    for st in stages:
        bulk_deals(org2.owner, st, 2)
    few, _html = count_queries()
    for st in stages:
        bulk_deals(org2.owner, st, 18)
    bulk_deals(org2.owner, stages[0], 60)
    many, html = count_queries()

    assert Deal.objects.count() == 20 * len(stages) + 60
    assert many == few
    assert len(column_cards(html, stages[0].pk)) == CARDS_PER_COLUMN
    assert heads(html)[stages[0].pk][0] == 80


def test_a_column_loads_more_cards_page_by_page(client, org2, retail):
    interest = stage(retail, "意向")
    bulk_deals(org2.owner, interest, 2 * CARDS_PER_COLUMN + 5)
    client.force_login(org2.owner)

    html = client.get(board_url(retail)).content.decode()
    first = column_cards(html, interest.pk)
    assert len(first) == CARDS_PER_COLUMN
    assert 'data-testid="load-more"' in html
    # The biggest deals first.
    amounts = list(
        Deal.objects.filter(pk__in=first).order_by("-amount").values_list("pk", flat=True)
    )
    assert first == amounts

    url = reverse("board:column", args=[retail.pk, interest.pk])
    second = client.get(url, {"offset": len(first)}, **HTMX).content.decode()
    assert f'hx-swap-oob="beforeend:#cards-{interest.pk}"' in second
    second_ids = card_ids(second)
    assert len(second_ids) == CARDS_PER_COLUMN and 'data-testid="load-more"' in second
    third = client.get(url, {"offset": 2 * CARDS_PER_COLUMN}, **HTMX).content.decode()
    third_ids = card_ids(third)
    assert len(third_ids) == 5 and 'data-testid="load-more"' not in third
    all_ids = first + second_ids + third_ids
    assert len(set(all_ids)) == 2 * CARDS_PER_COLUMN + 5
    assert set(all_ids) == set(Deal.objects.values_list("pk", flat=True))


def test_the_index_goes_to_the_default_deal_pipeline_and_the_nav_links_it(client, org2, retail):
    client.force_login(org2.owner)
    response = client.get(reverse("board:index"))
    assert response.status_code == 302
    assert response["Location"] == board_url(retail)
    html = client.get(board_url(retail)).content.decode()
    assert f'href="{reverse("board:index")}"' in html
    # The switcher offers the other deal pipeline and the lead pipeline.
    for pipeline in Pipeline.objects.active():
        assert board_url(pipeline) in html


def test_the_index_offers_a_picker_to_a_role_with_leads_only(client, org2):
    user = org2.set_scope(org2.colleague, DataScope.OWN, crm_permissions(types=("lead",)))
    client.force_login(user)
    response = client.get(reverse("board:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="pipeline-picker"' in html
    lead_pipeline = Pipeline.objects.get(kind="lead")
    assert board_url(lead_pipeline) in html
    assert client.get(board_url(Pipeline.objects.get(name="零售"))).status_code == 403


# --- Moves ------------------------------------------------------------------------------


def test_a_move_updates_the_card_and_both_columns_totals(client, org2, retail):
    interest, intro = stage(retail, "意向"), stage(retail, "产品介绍")
    deal = make_deal(org2.owner, interest, amount="3000")
    make_deal(org2.owner, interest, amount="1000")
    client.force_login(org2.owner)

    response = move(client, retail, deal, intro)

    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == intro and deal.probability == intro.probability
    history = StageHistory.objects.get(record_type="deal", record_id=deal.pk)
    assert (history.from_stage, history.to_stage, history.user) == (interest, intro, org2.owner)
    html = response.content.decode()
    assert f'id="card-deal-{deal.pk}" hx-swap-oob="delete"' in html
    assert f'hx-swap-oob="afterbegin:#cards-{intro.pk}"' in html
    found = heads(html)
    assert found[interest.pk] == (1, Decimal("1000.00"), Decimal("100.00"))
    assert found[intro.pk] == (1, Decimal("3000.00"), Decimal("600.00"))
    assert html.count('hx-swap-oob="true"') == 2
    assert "产品介绍" in html  # the message names the stage


def test_a_required_field_asks_for_it_then_the_move_completes(client, org2, retail):
    interest, quote = stage(retail, "意向"), stage(retail, "报价")  # 报价: contact + amount
    deal = make_deal(org2.owner, interest, amount="0", contact=False)
    ContactFactory(customer=deal.customer, name="采购经理")
    contact = ContactFactory(customer=deal.customer, name="王总")
    ContactFactory(name="别人的联系人")
    client.force_login(org2.owner)

    response = move(client, retail, deal, quote)

    html = response.content.decode()
    assert 'data-testid="move-form"' in html
    assert 'name="contact"' in html and 'name="amount"' in html
    assert "王总" in html and "别人的联系人" not in html  # only the customer's contacts
    # The card goes back where it is in the database while the form is open.
    assert deal.pk in column_cards(html, interest.pk)
    deal.refresh_from_db()
    assert deal.stage == interest

    # A bad amount: the form again with the error; nothing changes.
    response = move(client, retail, deal, quote, move_form="1", contact=contact.pk, amount="abc")
    html = response.content.decode()
    assert 'data-testid="move-form"' in html and 'data-testid="error-amount"' in html
    deal.refresh_from_db()
    assert deal.stage == interest and deal.contact is None

    response = move(client, retail, deal, quote, move_form="1", contact=contact.pk, amount="45000")
    assert 'data-testid="move-form"' not in response.content.decode()
    deal.refresh_from_db()
    assert deal.stage == quote
    assert deal.contact == contact and deal.amount == Decimal("45000")
    assert heads(response.content.decode())[quote.pk][1] == Decimal("45000.00")


def test_a_required_custom_field_gets_its_own_form_field(client, org2, retail):
    from .factories import custom_field

    custom_field("budget_source", "text", label="预算来源", record_type="deal")
    intro = stage(retail, "产品介绍")
    intro.required_fields = ["contact", "cf_budget_source"]
    intro.save()
    deal = make_deal(org2.owner, stage(retail, "意向"))
    client.force_login(org2.owner)

    html = move(client, retail, deal, intro).content.decode()
    assert 'name="cf_budget_source"' in html and "预算来源" in html
    assert 'name="contact"' not in html  # filled already

    move(client, retail, deal, intro, move_form="1", cf_budget_source="年度IT预算")
    deal.refresh_from_db()
    assert deal.stage == intro and deal.custom["budget_source"] == "年度IT预算"


def test_a_lost_stage_asks_for_the_reason(client, org2, retail):
    interest, lost = stage(retail, "意向"), stage(retail, "输单")
    deal = make_deal(org2.owner, interest)
    reason = DictionaryItem.objects.get(dictionary__code="lost_reason", code="price")
    DictionaryItem.objects.filter(dictionary__code="lost_reason", code="timing").update(
        is_active=False
    )
    client.force_login(org2.owner)

    html = move(client, retail, deal, lost).content.decode()
    assert 'data-testid="move-form"' in html and 'name="lost_reason"' in html
    assert "价格过高" in html and "采购计划推迟" not in html  # active reasons only
    deal.refresh_from_db()
    assert deal.status == DealStatus.OPEN

    html = move(client, retail, deal, lost, move_form="1").content.decode()
    assert 'data-testid="error-lost_reason"' in html

    move(client, retail, deal, lost, move_form="1", lost_reason=reason.pk, lost_note="太贵")
    deal.refresh_from_db()
    assert deal.stage == lost and deal.status == DealStatus.LOST
    assert deal.lost_reason == reason and deal.lost_note == "太贵"


def test_a_stale_move_says_so_and_changes_nothing(client, org2, retail):
    interest, intro, evaluation = (
        stage(retail, "意向"),
        stage(retail, "产品介绍"),
        stage(retail, "产生兴趣"),
    )
    deal = make_deal(org2.owner, intro)  # someone moved it meanwhile; the page shows 意向
    client.force_login(org2.owner)

    response = move(client, retail, deal, evaluation, expected=interest)

    html = response.content.decode()
    assert "Someone moved it" in html or "有人" in html or "meanwhile" in html
    assert 'data-testid="board-message"' in html
    deal.refresh_from_db()
    assert deal.stage == intro
    assert not StageHistory.objects.filter(record_id=deal.pk).exists()
    # The columns involved come back as they are: the card in its real column.
    assert deal.pk in column_cards(html, intro.pk)
    assert deal.pk not in column_cards(html, evaluation.pk)
    assert {interest.pk, intro.pk, evaluation.pk} <= set(heads(html))


def test_an_outsider_gets_404_and_a_read_only_role_is_refused(client, org2, retail):
    interest, intro = stage(retail, "意向"), stage(retail, "产品介绍")
    deal = make_deal(org2.owner, interest)
    client.force_login(org2.outsider)
    assert move(client, retail, deal, intro).status_code == 404

    reader = org2.set_scope(org2.manager, DataScope.DEPARTMENT_TREE, perms(("view",)))
    client.force_login(reader)
    html = client.get(board_url(retail)).content.decode()
    assert f'id="card-deal-{deal.pk}"' in html
    assert "app-card-movable" not in html and 'data-testid="card-menu"' not in html

    response = move(client, retail, deal, intro)
    assert response.status_code == 200
    assert 'data-testid="board-message"' in response.content.decode()
    deal.refresh_from_db()
    assert deal.stage == interest


def test_a_stage_of_another_pipeline_is_not_found(client, org2, retail):
    deal = make_deal(org2.owner, stage(retail, "意向"))
    wholesale = Pipeline.objects.get(name="批发")
    client.force_login(org2.owner)
    assert move(client, retail, deal, stage(wholesale, "产品介绍")).status_code == 404
    assert move(client, wholesale, deal, stage(wholesale, "产品介绍")).status_code == 404


def test_csrf_is_enforced(org2, retail):
    deal = make_deal(org2.owner, stage(retail, "意向"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(org2.owner)
    response = move(client, retail, deal, stage(retail, "产品介绍"))
    assert response.status_code == 403
    deal.refresh_from_db()
    assert deal.stage.name == "意向"

    # With the token the page carries, the same move goes through.
    client.get(board_url(retail))
    token = client.cookies["csrftoken"].value
    response = client.post(
        reverse("board:move", args=[retail.pk]),
        {"record": deal.pk, "stage": stage(retail, "产品介绍").pk, "expected_stage": deal.stage_id},
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage.name == "产品介绍"


def test_without_htmx_a_move_redirects_back_with_a_message(client, org2, retail):
    deal = make_deal(org2.owner, stage(retail, "意向"))
    client.force_login(org2.owner)
    response = move(client, retail, deal, stage(retail, "产品介绍"), htmx=False)
    assert response.status_code == 302 and response["Location"] == board_url(retail)
    response = move(client, retail, deal, stage(retail, "输单"), htmx=False, follow=True)
    deal.refresh_from_db()
    assert deal.stage.name == "产品介绍"
    assert "lost reason" in response.content.decode() or "输单原因" in response.content.decode()


# --- Leads ------------------------------------------------------------------------------


def make_lead(owner, st, **kwargs):
    kwargs.setdefault("person_name", "陈先生")
    return LeadFactory(owner=owner, stage=st, **kwargs)


def test_a_lead_board_shows_lead_cards_and_refuses_won_without_conversion(client, org2):
    pipeline = Pipeline.objects.get(kind="lead")
    first, second = pipeline.stages.filter(kind="open").order_by("order")[:2]
    won = pipeline.stages.get(kind="won")
    lead = make_lead(org2.owner, first, company_name="苏州蓝海贸易", phone="+8613912345678")
    make_lead(None, first, person_name="公海线索")
    client.force_login(org2.owner)

    html = client.get(board_url(pipeline)).content.decode()
    assert "苏州蓝海贸易" in html and "139 1234 5678" in html
    assert "公海线索" in html  # the pool is visible ...
    pool_card = re.search(
        r'<article class="([^"]*)" id="card-lead-\d+"[^>]*>(?:(?!</article>).)*公海线索', html, re.S
    )
    assert pool_card and "app-card-movable" not in pool_card.group(1)  # ... not movable
    assert "data-amount" not in html  # leads show counts only
    assert heads(html)[first.pk][0] == 2

    html = move(client, pipeline, lead, won).content.decode()
    assert 'data-testid="board-message"' in html
    lead.refresh_from_db()
    assert lead.stage == first and lead.status == LeadStatus.OPEN

    move(client, pipeline, lead, second)
    lead.refresh_from_db()
    assert lead.stage == second


# --- Undo -------------------------------------------------------------------------------


def undo(client, pipeline, history, *, htmx=True):
    return client.post(
        reverse("board:undo", args=[pipeline.pk]),
        {"move": history.pk if history else ""},
        **(HTMX if htmx else {}),
    )


def test_a_move_offers_its_undo_which_puts_the_deal_back(client, org2, retail):
    interest, evaluation = stage(retail, "意向"), stage(retail, "评估")
    deal = make_deal(org2.owner, interest, amount="3000")
    deal.expected_close_date = timezone.localdate() + timedelta(days=30)  # 评估 needs it
    deal.save(update_fields=["expected_close_date"])
    client.force_login(org2.owner)

    html = move(client, retail, deal, evaluation).content.decode()

    history = StageHistory.objects.get(record_id=deal.pk, to_stage=evaluation)
    assert 'data-testid="undo"' in html
    assert f'name="move" value="{history.pk}"' in html
    assert reverse("board:undo", args=[retail.pk]) in html

    response = undo(client, retail, history)

    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == interest and deal.probability == interest.probability
    back = StageHistory.objects.filter(record_id=deal.pk).latest("moved_at", "id")
    assert (back.from_stage, back.to_stage, back.user) == (evaluation, interest, org2.owner)
    html = response.content.decode()
    assert f'hx-swap-oob="afterbegin:#cards-{interest.pk}"' in html
    assert heads(html)[interest.pk][0] == 1 and heads(html)[evaluation.pk][0] == 0
    assert "意向" in html and 'data-testid="undo"' not in html  # an undo is not undone
    # Twice is once: the second undo finds the deal moved since.
    html = undo(client, retail, history).content.decode()
    assert 'data-testid="board-message"' in html
    deal.refresh_from_db()
    assert deal.stage == interest
    assert StageHistory.objects.filter(record_id=deal.pk).count() == 2


def test_only_who_made_the_move_may_undo_it(client, org2, retail):
    interest, intro = stage(retail, "意向"), stage(retail, "产品介绍")
    deal = make_deal(org2.owner, interest)
    client.force_login(org2.owner)
    move(client, retail, deal, intro)
    history = StageHistory.objects.get(record_id=deal.pk)

    client.force_login(org2.manager)  # sees and may move the deal, did not make the move
    html = undo(client, retail, history).content.decode()

    assert "Only who made" in html or "只有" in html
    deal.refresh_from_db()
    assert deal.stage == intro
    # An outsider does not learn the deal exists.
    client.force_login(org2.outsider)
    assert undo(client, retail, history).status_code == 404


def test_a_deal_moved_since_or_a_late_undo_is_left_where_it_is(client, org2, retail):
    interest, intro, keen = (
        stage(retail, "意向"),
        stage(retail, "产品介绍"),
        stage(retail, "产生兴趣"),
    )
    deal = make_deal(org2.owner, interest)
    client.force_login(org2.owner)
    move(client, retail, deal, intro)
    first = StageHistory.objects.get(record_id=deal.pk)
    move(client, retail, Deal.objects.get(pk=deal.pk), keen)

    html = undo(client, retail, first).content.decode()

    assert "产生兴趣" in html and 'data-testid="board-message"' in html
    deal.refresh_from_db()
    assert deal.stage == keen
    # The latest move, minutes later, is too late to undo.
    latest = StageHistory.objects.filter(record_id=deal.pk).latest("moved_at", "id")
    StageHistory.objects.filter(pk=latest.pk).update(
        moved_at=timezone.now() - timedelta(minutes=10)
    )
    html = undo(client, retail, latest).content.decode()
    assert "too late" in html or "太晚" in html or "已过" in html
    deal.refresh_from_db()
    assert deal.stage == keen


def test_undo_needs_csrf_and_a_move_of_this_board(org2, retail):
    interest, intro = stage(retail, "意向"), stage(retail, "产品介绍")
    deal = make_deal(org2.owner, interest)
    client = Client(enforce_csrf_checks=True)
    client.force_login(org2.owner)
    client.get(board_url(retail))
    token = client.cookies["csrftoken"].value
    client.post(
        reverse("board:move", args=[retail.pk]),
        {"record": deal.pk, "stage": intro.pk, "expected_stage": interest.pk},
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )
    history = StageHistory.objects.get(record_id=deal.pk)

    assert undo(client, retail, history).status_code == 403
    deal.refresh_from_db()
    assert deal.stage == intro
    wholesale = Pipeline.objects.get(name="批发")
    url = reverse("board:undo", args=[wholesale.pk])
    assert client.post(url, {"move": history.pk}, HTTP_X_CSRFTOKEN=token).status_code == 404
    url = reverse("board:undo", args=[retail.pk])
    assert client.post(url, {"move": "x"}, HTTP_X_CSRFTOKEN=token).status_code == 400
    response = client.post(url, {"move": history.pk}, HTTP_X_CSRFTOKEN=token, **HTMX)
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == interest


def test_without_htmx_an_undo_redirects_back_with_a_message(client, org2, retail):
    interest, intro = stage(retail, "意向"), stage(retail, "产品介绍")
    deal = make_deal(org2.owner, interest)
    client.force_login(org2.owner)
    move(client, retail, deal, intro)
    history = StageHistory.objects.get(record_id=deal.pk)
    response = undo(client, retail, history, htmx=False)
    assert response.status_code == 302 and response["Location"] == board_url(retail)
    deal.refresh_from_db()
    assert deal.stage == interest


# --- A required contact the customer does not have yet ----------------------------------


def test_a_required_contact_can_be_added_in_the_move_form(client, org2, retail):
    from crm.models import Contact

    interest, quote = stage(retail, "意向"), stage(retail, "报价")  # 报价: contact + amount
    deal = make_deal(org2.owner, interest, amount="5000", contact=False)
    client.force_login(org2.owner)

    html = move(client, retail, deal, quote).content.decode()

    # No list to choose from: the form asks for the new contact instead.
    assert 'data-testid="new-contact"' in html
    assert 'name="new_contact-name"' in html and 'name="new_contact-mobile"' in html
    assert 'name="contact"' not in html
    assert 'data-testid="move-form-blocked"' not in html

    # A bad mobile: the contact form's error, nothing added, nothing moved.
    html = move(
        client,
        retail,
        deal,
        quote,
        move_form="1",
        **{"new_contact-name": "陈经理", "new_contact-mobile": "12345abc"},
    ).content.decode()
    assert 'data-testid="move-form"' in html and 'data-testid="error-mobile"' in html
    assert not Contact.objects.filter(customer=deal.customer).exists()
    # No name: the contact's own message.
    html = move(
        client, retail, deal, quote, move_form="1", **{"new_contact-mobile": "13912345678"}
    ).content.decode()
    assert 'data-testid="error-name"' in html
    assert not Contact.objects.filter(customer=deal.customer).exists()

    response = move(
        client,
        retail,
        deal,
        quote,
        move_form="1",
        **{"new_contact-name": "陈经理", "new_contact-mobile": "139 1234 5678"},
    )

    html = response.content.decode()
    assert 'data-testid="move-form"' not in html
    contact = Contact.objects.get(customer=deal.customer)
    assert (contact.name, contact.mobile, contact.created_by) == (
        "陈经理",
        "+8613912345678",
        org2.owner,
    )
    deal.refresh_from_db()
    assert deal.stage == quote and deal.contact == contact
    assert f'hx-swap-oob="afterbegin:#cards-{quote.pk}"' in html


def test_a_contact_added_for_a_move_that_fails_is_not_kept(client, org2, retail):
    from crm.models import Contact

    interest, quote = stage(retail, "意向"), stage(retail, "报价")
    deal = make_deal(org2.owner, interest, amount="5000", contact=False)
    client.force_login(org2.owner)
    # Someone moved the deal meanwhile: the move is refused, the contact rolled back.
    Deal.objects.filter(pk=deal.pk).update(stage=stage(retail, "产品介绍"))

    html = move(
        client,
        retail,
        deal,
        quote,
        expected=interest,
        move_form="1",
        **{"new_contact-name": "陈经理", "new_contact-mobile": "13912345678"},
    ).content.decode()

    assert 'data-testid="board-message"' in html
    assert not Contact.objects.filter(customer=deal.customer).exists()


def test_with_contacts_to_choose_the_form_offers_the_list_only(client, org2, retail):
    from crm.models import Contact

    interest, quote = stage(retail, "意向"), stage(retail, "报价")
    deal = make_deal(org2.owner, interest, amount="5000", contact=False)
    wang = ContactFactory(customer=deal.customer, name="王总")
    client.force_login(org2.owner)

    html = move(client, retail, deal, quote).content.decode()
    assert 'name="contact"' in html and "王总" in html
    assert 'name="new_contact-name"' not in html

    # Posted anyway, a new contact's fields are not a way around the list.
    html = move(
        client, retail, deal, quote, move_form="1", **{"new_contact-name": "李助理"}
    ).content.decode()
    assert 'data-testid="error-contact"' in html
    assert Contact.objects.filter(customer=deal.customer).count() == 1
    move(client, retail, deal, quote, move_form="1", contact=wang.pk)
    deal.refresh_from_db()
    assert deal.stage == quote and deal.contact == wang


def test_a_role_that_may_not_add_contacts_is_told_who_can(client, org2, retail):
    interest, quote = stage(retail, "意向"), stage(retail, "报价")
    no_contacts = [p for p in perms() if p != "contact.add"]
    owner = org2.set_scope(org2.owner, DataScope.OWN, no_contacts)
    deal = make_deal(owner, interest, amount="5000", contact=False)
    client.force_login(owner)

    html = move(client, retail, deal, quote).content.decode()

    assert 'data-testid="move-form-no-contact"' in html
    assert deal.customer.name in html
    assert 'name="new_contact-name"' not in html
    assert re.search(r'data-testid="move-submit"[^>]*disabled', html)
    # Posted anyway, a new contact is not added.
    move(client, retail, deal, quote, move_form="1", **{"new_contact-name": "李助理"})
    deal.refresh_from_db()
    assert deal.stage == interest and not deal.customer.contacts.exists()


# --- Layout -----------------------------------------------------------------------------


def test_the_compact_layout_is_kept_in_a_cookie(client, org2, retail):
    from pipelines.views_board import COMPACT_COOKIE

    client.force_login(org2.owner)
    html = client.get(board_url(retail)).content.decode()
    assert 'data-testid="compact-toggle"' in html
    assert re.search(r'class="app-board" id="board"', html)
    client.cookies[COMPACT_COOKIE] = "1"
    html = client.get(board_url(retail)).content.decode()
    assert re.search(r'class="app-board app-board-compact" id="board"', html)
    assert 'aria-pressed="true"' in html
