"""The pipeline admin: stages as ordered inlines with required fields chosen from the
record type's fields; the rules of a pipeline (an open stage, one won and one lost stage,
their probabilities, one default per kind); stages in use not deletable; leads and deals
only listed, never edited, in the admin (DESIGN rule 3)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import ConfigChange, DictionaryItem
from pipelines import services
from pipelines.models import Deal, Lead, Pipeline, Stage, StageKind

from .admin_forms import admin_errors, admin_page_data
from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    custom_field,
)

pytestmark = pytest.mark.usefixtures("english")


def pipeline(name="零售", kind="deal") -> Pipeline:
    return Pipeline.objects.get(kind=kind, name=name)


def stage(pipe: Pipeline, name: str) -> Stage:
    return pipe.stages.get(name=name)


def change_url(pipe: Pipeline) -> str:
    return reverse("admin:pipelines_pipeline_change", args=[pipe.pk])


def row_prefix(response, obj) -> str:
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    for form in formset.forms:
        if form.instance.pk == obj.pk:
            return form.prefix
    raise AssertionError(f"no row for {obj}")


def post_pipeline(client, pipe, rows=None, new_rows=(), **changes):
    """Post the pipeline page as rendered; `rows` maps a stage to changed fields (False
    unticks a box, a list sets a multiple choice); `new_rows` adds stages."""
    url = change_url(pipe)
    response = client.get(url)
    data = admin_page_data(response)
    for obj, fields in (rows or {}).items():
        prefix = row_prefix(response, obj)
        for name, value in fields.items():
            key = f"{prefix}-{name}"
            if value is False:
                data.pop(key, None)
            else:
                data[key] = "on" if value is True else value
    if new_rows:
        (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
        total = int(data[f"{formset.prefix}-TOTAL_FORMS"])
        for offset, fields in enumerate(new_rows):
            for name, value in fields.items():
                data[f"{formset.prefix}-{total + offset}-{name}"] = value
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(total + len(new_rows))
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = "on" if value is True else value
    return client.post(url, data)


def all_errors(response) -> str:
    errors = admin_errors(response)
    return " ".join(m for messages in errors.values() for m in messages)


def test_the_pipeline_page_lists_its_stages_in_order(admin_client):
    pipe = pipeline()
    response = admin_client.get(change_url(pipe))
    assert response.status_code == 200
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    assert [f.instance.name for f in formset.forms] == [
        "意向", "产品介绍", "产生兴趣", "报价", "评估", "合同", "赢单", "输单",
    ]  # fmt: skip
    form = formset.forms[0]
    offered = dict(form.fields["required_fields"].choices)
    assert {"amount", "contact", "expected_close_date"} <= set(offered)
    assert "lost_reason" not in offered
    assert "company_name" not in offered  # a lead field


def test_required_fields_offer_the_record_types_custom_fields(admin_client):
    custom_field("budget", "money", record_type="deal", label="预算")
    custom_field("region", "text", record_type="lead", label="地区")
    response = admin_client.get(change_url(pipeline()))
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    offered = dict(formset.forms[0].fields["required_fields"].choices)
    assert offered["cf_budget"] == "预算"
    assert "cf_region" not in offered

    response = admin_client.get(change_url(pipeline("线索", "lead")))
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    offered = dict(formset.forms[0].fields["required_fields"].choices)
    assert {"cf_region", "company_name", "person_name", "phone", "email"} <= set(offered)


def test_an_admin_sets_required_fields_guide_and_time_limit(admin_client, org):
    custom_field("budget", "money", record_type="deal", label="预算")
    pipe = pipeline()
    quote = stage(pipe, "报价")
    response = post_pipeline(
        admin_client,
        pipe,
        rows={
            quote: {
                "required_fields": ["contact", "amount", "cf_budget"],
                "guide": "发送报价单",
                "time_limit_days": "5",
                "color": "red",
            }
        },
    )
    assert response.status_code == 302, admin_errors(response)
    quote.refresh_from_db()
    assert quote.required_fields == ["contact", "amount", "cf_budget"]
    assert quote.guide == "发送报价单" and quote.time_limit_days == 5 and quote.color == "red"
    change = ConfigChange.objects.filter(model="pipelines.stage").latest("id")
    assert change.source == "admin" and change.user == org.admin
    assert {c["field"] for c in change.changes} == {
        "required_fields", "guide", "time_limit_days", "color",
    }  # fmt: skip


def test_a_new_stage_is_added_in_order(admin_client):
    pipe = pipeline()
    response = post_pipeline(
        admin_client,
        pipe,
        new_rows=[
            {
                "name": "样品测试",
                "name_en": "Sample test",
                "order": "35",
                "kind": "open",
                "probability": "40",
                "color": "teal",
                "required_fields": ["contact"],
            }
        ],
    )
    assert response.status_code == 302, admin_errors(response)
    names = list(pipe.stages.order_by("order").values_list("name", flat=True))
    assert names.index("样品测试") == names.index("产生兴趣") + 1
    assert ConfigChange.objects.filter(model="pipelines.stage", action="create").exists()


def test_a_pipeline_needs_an_open_stage(admin_client):
    pipe = pipeline()
    rows = {s: {"DELETE": True} for s in pipe.stages.filter(kind=StageKind.OPEN)}
    response = post_pipeline(admin_client, pipe, rows=rows)
    assert response.status_code == 200
    assert "needs at least one open stage" in all_errors(response)
    assert pipe.stages.filter(kind=StageKind.OPEN).count() == 6


def test_only_one_won_and_one_lost_stage(admin_client):
    pipe = pipeline()
    response = post_pipeline(
        admin_client,
        pipe,
        new_rows=[
            {
                "name": "再次赢单",
                "order": "95",
                "kind": "won",
                "probability": "100",
                "color": "green",
            },
            {"name": "放弃", "order": "96", "kind": "lost", "probability": "0", "color": "dark"},
        ],
    )
    text = all_errors(response)
    assert "only one won stage" in text and "赢单、再次赢单" in text
    assert "only one lost stage" in text
    assert not pipe.stages.filter(name="再次赢单").exists()


def test_won_and_lost_probabilities(admin_client):
    pipe = pipeline()
    response = post_pipeline(
        admin_client,
        pipe,
        rows={
            stage(pipe, "赢单"): {"probability": "90"},
            stage(pipe, "输单"): {"probability": "5"},
        },
    )
    text = all_errors(response)
    assert "A Won stage has a win probability of 100%." in text
    assert "A Lost stage has a win probability of 0%." in text
    assert stage(pipe, "赢单").probability == 100


def test_stage_names_differ_within_a_pipeline(admin_client):
    pipe = pipeline()
    response = post_pipeline(admin_client, pipe, rows={stage(pipe, "评估"): {"name": "报价"}})
    assert "Two stages are called “报价”" in all_errors(response)


def test_lead_fields_cannot_be_required_by_a_deal_stage(admin_client):
    pipe = pipeline()
    response = post_pipeline(
        admin_client, pipe, rows={stage(pipe, "意向"): {"required_fields": ["company_name"]}}
    )
    assert response.status_code == 200
    assert "company_name" in all_errors(response)


def test_one_default_pipeline_per_kind(admin_client):
    wholesale = pipeline("批发")
    response = post_pipeline(admin_client, wholesale, is_default=True)
    assert "“零售” is the default pipeline for Deals" in all_errors(response)
    assert not Pipeline.objects.get(pk=wholesale.pk).is_default

    retail = pipeline("零售")
    assert post_pipeline(admin_client, retail, is_default=False).status_code == 302
    assert post_pipeline(admin_client, wholesale, is_default=True).status_code == 302
    assert list(Pipeline.objects.filter(kind="deal", is_default=True)) == [wholesale]


def test_the_default_pipeline_stays_active(admin_client):
    response = post_pipeline(admin_client, pipeline(), is_active=False)
    assert "must stay active" in all_errors(response)


def test_a_new_pipeline_with_its_stages(admin_client):
    url = reverse("admin:pipelines_pipeline_add")
    response = admin_client.get(url)
    assert response.status_code == 200
    data = admin_page_data(response)
    data.update({"kind": "deal", "name": "大客户", "name_en": "Key accounts", "order": "30"})
    prefix = "stages"
    rows = [
        ("初步接触", "open", "10", ["contact"]),
        ("方案", "open", "50", ["contact", "amount"]),
        ("签约", "won", "100", ["amount"]),
        ("失败", "lost", "0", []),
    ]
    for i, (name, kind, probability, required) in enumerate(rows):
        data.update(
            {
                f"{prefix}-{i}-name": name,
                f"{prefix}-{i}-order": str((i + 1) * 10),
                f"{prefix}-{i}-kind": kind,
                f"{prefix}-{i}-probability": probability,
                f"{prefix}-{i}-color": "blue",
                f"{prefix}-{i}-required_fields": required,
            }
        )
    data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
    response = admin_client.post(url, data)
    assert response.status_code == 302, admin_errors(response)
    created = Pipeline.objects.get(name="大客户")
    assert created.kind == "deal" and not created.is_default
    assert [s.name for s in created.stages.order_by("order")] == [
        "初步接触",
        "方案",
        "签约",
        "失败",
    ]
    assert created.stages.get(name="方案").required_fields == ["contact", "amount"]


def test_a_new_lead_pipeline_may_not_require_deal_fields(admin_client):
    url = reverse("admin:pipelines_pipeline_add")
    data = admin_page_data(admin_client.get(url))
    data.update({"kind": "lead", "name": "展会线索", "order": "20"})
    data.update(
        {
            "stages-0-name": "新线索",
            "stages-0-order": "10",
            "stages-0-kind": "open",
            "stages-0-probability": "10",
            "stages-0-color": "blue",
            "stages-0-required_fields": ["amount"],
            "stages-TOTAL_FORMS": "1",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "amount cannot be required for Leads" in all_errors(response)


@pytest.fixture
def deal_in_quote(org):
    """A deal in 零售 · 报价, moved there through the service (so there is history)."""
    customer = CustomerFactory(owner=org.admin)
    contact = ContactFactory(customer=customer, name="张三")
    deal = DealFactory.created_by(
        org.admin, title="年度设备采购", customer=customer, contact=contact, amount=Decimal("80000")
    )
    services.move_to_stage(record=deal, stage=stage(pipeline(), "报价"), by=org.admin)
    return deal


def test_a_stage_in_use_cannot_be_deleted(admin_client, deal_in_quote):
    pipe = pipeline()
    quote = stage(pipe, "报价")
    response = admin_client.get(change_url(pipe))
    prefix = row_prefix(response, quote)
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    form = next(f for f in formset.forms if f.prefix == prefix)
    assert form.fields["DELETE"].disabled
    assert "move its records to another stage first" in form.fields["DELETE"].help_text

    # A forged post is refused with the reason and what to do.
    data = admin_page_data(response)
    data[f"{prefix}-DELETE"] = "on"
    response = admin_client.post(change_url(pipe), data)
    assert Stage.objects.filter(pk=quote.pk).exists()
    # Disabled fields ignore posted data: the row simply stays.
    assert response.status_code in (200, 302)


def test_in_use_message_names_records_and_history(deal_in_quote):
    from pipelines.admin import StageFormSet

    pipe = pipeline()
    quote = stage(pipe, "报价")
    from pipelines.config import stages_in_use

    use = stages_in_use([quote])[quote.pk]
    assert use == {"deals": 1, "history": 1}
    message = StageFormSet._in_use_message(quote, use)
    assert "1 deals" in message and "1 stage moves" in message
    assert "Move its records to another stage first" in message


def test_an_unused_stage_can_be_deleted(admin_client):
    pipe = pipeline("批发")
    response = post_pipeline(admin_client, pipe, rows={stage(pipe, "评估"): {"DELETE": True}})
    assert response.status_code == 302, admin_errors(response)
    assert not pipe.stages.filter(name="评估").exists()
    assert ConfigChange.objects.filter(model="pipelines.stage", action="delete").exists()


def test_a_stage_holding_records_keeps_its_kind(admin_client, deal_in_quote):
    pipe = pipeline()
    response = post_pipeline(
        admin_client, pipe, rows={stage(pipe, "报价"): {"kind": "lost", "probability": "0"}}
    )
    assert "holds records" in all_errors(response)


def test_a_pipeline_in_use_cannot_be_deleted(admin_client, deal_in_quote):
    pipe = pipeline()
    response = admin_client.get(reverse("admin:pipelines_pipeline_delete", args=[pipe.pk]))
    assert response.status_code == 403
    unused = pipeline("批发")
    response = admin_client.get(reverse("admin:pipelines_pipeline_delete", args=[unused.pk]))
    assert response.status_code == 200
    response = admin_client.get(reverse("admin:pipelines_pipeline_changelist"))
    assert "delete_selected" not in response.content.decode()


def test_the_kind_of_a_saved_pipeline_is_fixed(admin_client):
    response = admin_client.get(change_url(pipeline()))
    assert "kind" not in response.context["adminform"].form.fields


def test_leads_and_deals_are_listed_read_only(admin_client, deal_in_quote, org):
    lead = services.create_lead(lead=Lead(person_name="王先生", phone="13912345678"), by=org.admin)
    response = admin_client.get(reverse("admin:pipelines_deal_changelist"))
    assert response.status_code == 200 and "年度设备采购" in response.content.decode()
    response = admin_client.get(reverse("admin:pipelines_lead_changelist"))
    assert "王先生" in response.content.decode()

    response = admin_client.get(reverse("admin:pipelines_deal_change", args=[deal_in_quote.pk]))
    assert response.status_code == 200
    assert not response.context["adminform"].form.fields  # every field read-only
    before = Deal.objects.get(pk=deal_in_quote.pk).stage_id
    wholesale_stage = stage(pipeline("批发"), "合同")
    admin_client.post(
        reverse("admin:pipelines_deal_change", args=[deal_in_quote.pk]),
        {"stage": wholesale_stage.pk, "status": "won"},
    )
    assert Deal.objects.get(pk=deal_in_quote.pk).stage_id == before
    assert admin_client.get(reverse("admin:pipelines_deal_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:pipelines_lead_delete", args=[lead.pk])).status_code == 403
    )


def test_lost_reason_dictionary_items_are_not_requirable(db):
    from pipelines.config import requirable_fields

    assert "lost_reason" not in dict(requirable_fields("deal"))
    assert DictionaryItem.objects.of("lost_reason").exists()


# --- The stage editor: a card per stage, dragged to reorder -------------------------------


def stage_cards(html: str) -> list[str]:
    """Each saved stage's card, as rendered."""
    return re.findall(
        r'<div class="inline-related crm-stage has_original".*?(?=<div class="inline-related|\Z)',
        html,
        re.S,
    )


def test_each_stage_is_a_card_with_its_delete_box_handle_and_checkboxes(admin_client):
    html = admin_client.get(change_url(pipeline())).content.decode()
    cards = stage_cards(html)
    assert len(cards) == 8
    for card in cards:
        assert "data-stage-handle" in card
        assert 'data-testid="stage-delete"' in card and ">Delete" in card
        # Required fields: a checkbox per field, no Ctrl-click list.
        assert re.search(r'type="checkbox" name="stages-\d+-required_fields" value="amount"', card)
        assert "<select" not in card.split("field-required_fields")[1].split("</div>")[0]
        # The order is set by dragging: a hidden field the script rewrites.
        assert re.search(r'type="hidden" name="stages-\d+-order"[^>]*data-stage-order', card)
        # Guides fold away.
        assert "<details" in card and 'name="stages-' in card.split("<details")[1]
    assert "<select multiple" not in html and 'multiple name="stages-' not in html
    assert "vendor/sortablejs/Sortable.min.js" in html and "crm/js/admin_stages.js" in html


def test_a_card_says_how_much_its_stage_is_used(admin_client, deal_in_quote):
    html = admin_client.get(change_url(pipeline())).content.decode()
    quote = next(
        card for card in stage_cards(html) if "报价" in card.split("crm-stage-title")[1][:40]
    )
    assert re.search(r"1 records, \d+ stage moves", quote)
    assert "not used" in stage_cards(html)[-1]


def test_posting_new_order_values_reorders_the_stages(admin_client):
    """What the drag posts: each stage's order field, renumbered 10, 20, 30... ."""
    pipe = pipeline()
    names = [s.name for s in pipe.stages.order_by("order")]
    reordered = [names[1], names[0], *names[2:]]
    response = post_pipeline(
        admin_client,
        pipe,
        rows={stage(pipe, name): {"order": str((i + 1) * 10)} for i, name in enumerate(reordered)},
    )
    assert response.status_code == 302, admin_errors(response)
    assert [s.name for s in pipe.stages.order_by("order")] == reordered
