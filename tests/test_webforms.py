"""Web-to-lead forms (integrations.webforms): a visitor on the company's site sends a form
an admin designed, and a lead appears — in the form's pipeline and stage, with its
owner (a fixed person or in turn among a department's members), made by the system
actor "web form «name»" through the lead service, so history says so and events fire.

What guards a public, CSRF-exempt POST: a signed token (too fast, too old or forged:
refused), a honeypot (answered as a success, nothing made), a rate limit per IP address
(429 with Retry-After), size limits, allowed origins. Values go through the lead's one
validation path and errors come back per field in the visitor's language. An open lead
with the same phone or email gets a follow-up instead of a twin; the same token sent
twice makes one lead."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from accounts import throttle
from accounts.models import DataScope
from automation.models import Notification
from crm.models import Activity, Change, EventKind
from integrations.webforms import services, tokens
from integrations.webforms.models import (
    Assignment,
    Outcome,
    WebForm,
    WebFormField,
    WebFormSubmission,
)
from pipelines.models import Lead

from .factories import LeadFactory, crm_permissions, custom_field, item, stage

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
_ips = itertools.count(1)


@pytest.fixture
def team(org):
    """The org's reps may work on leads (the sub-team's member too); the outsider may
    only look at customers."""
    perms = crm_permissions(actions=("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "sub_member"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    org.outsider = org.set_scope(org.outsider, DataScope.OWN, crm_permissions(("view",)))
    return org


@pytest.fixture(autouse=True)
def english_organisation(settings):
    """Texts the form stores (follow-ups) are in the organisation's language: English
    here, so the tests read the same before and after the catalogue is compiled."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def visitor():
    """A browser on another site: its own IP address, so each test has its own rate
    limit count; English unless the test says otherwise."""
    n = next(_ips)
    ip = f"10.{n // 250 % 250}.{n % 250}.{(n * 7) % 250 + 1}"
    throttle.reset("webforms-ip", ip)  # Redis outlives a run: no count from the last one
    return Client(REMOTE_ADDR=ip)


def make_form(*fields, **kwargs) -> WebForm:
    """A form with `fields`, each a name or (name, required)."""
    kwargs.setdefault("name", "官网咨询表单")
    kwargs.setdefault("source", item("lead_source", "website_form"))
    form = WebForm(**kwargs)
    form.full_clean()
    form.save()
    for order, spec in enumerate(fields or ("person_name", ("phone", True), "email")):
        name, required = (spec, False) if isinstance(spec, str) else spec
        WebFormField.objects.create(form=form, name=name, required=required, order=order)
    return form


def token(form: WebForm, *, age: float = 10) -> str:
    """A token handed out `age` seconds ago (a person takes a while to fill the form)."""
    return tokens.issue(form.pk, now=time.time() - age)


def send(client, form, data, *, age: float = 10, language="en", **headers):
    data = {tokens.FIELD: token(form, age=age), **data}
    return client.post(
        reverse("webforms:submit", args=[form.key]),
        data,
        HTTP_ACCEPT_LANGUAGE=language,
        **headers,
    )


def send_json(client, form, data, *, age: float = 10, language="en", with_token=True, **headers):
    body = {tokens.FIELD: token(form, age=age), **data} if with_token else data
    return client.post(
        reverse("webforms:api", args=[form.key]),
        json.dumps(body) if not isinstance(body, str | bytes) else body,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE=language,
        **headers,
    )


def events_of(lead: Lead) -> list[Change]:
    return list(
        Change.objects.filter(
            record_type=ContentType.objects.get_for_model(Lead), record_id=lead.pk
        ).order_by("id")
    )


def follow_ups(lead: Lead) -> list[Activity]:
    return list(
        Activity.objects.filter(
            subject_type=ContentType.objects.get_for_model(Lead), subject_id=lead.pk
        ).order_by("id")
    )


# --- A lead is made -----------------------------------------------------------------------


def test_a_submission_makes_a_lead_in_the_forms_stage_for_its_person(team, visitor):
    start = stage("线索", "收集线索信息")
    form = make_form(
        assignment=Assignment.USER, owner=team.owner, pipeline=start.pipeline, stage=start
    )

    response = send(
        visitor, form, {"person_name": "周先生", "phone": "138 0013 8000", "email": "Zhou@X.cn"}
    )

    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    lead = Lead.objects.get()
    assert (lead.person_name, lead.phone, lead.email) == ("周先生", "+8613800138000", "Zhou@X.cn")
    assert (lead.pipeline, lead.stage, lead.owner) == (start.pipeline, start, team.owner)
    assert lead.source == item("lead_source", "website_form")
    # Made by the lead service as the form: its created event names the form.
    [created] = events_of(lead)
    assert created.kind == EventKind.CREATED
    assert (created.actor_type, created.actor_id) == ("webform", form.pk)
    assert created.actor_label == "web form “官网咨询表单”"
    submission = WebFormSubmission.objects.get()
    assert (submission.form, submission.lead, submission.outcome) == (form, lead, Outcome.CREATED)


def test_without_a_stage_the_lead_starts_in_the_default_pipelines_first_stage(team, visitor):
    form = make_form()  # nobody assigned: the lead pool

    send(visitor, form, {"phone": "13800138000"})

    lead = Lead.objects.get()
    assert lead.stage == stage("线索", "已收到联系方式")
    assert lead.owner is None


def test_round_robin_gives_leads_in_turn_to_the_departments_members_who_may_own_leads(
    team, visitor
):
    # The outsider moves into the team but may not work on leads: never chosen. The
    # sub-team's member is not a member of the team itself.
    team.outsider.department = team.team1
    team.outsider.save(update_fields=["department"])
    form = make_form(assignment=Assignment.ROUND_ROBIN, department=team.team1)

    for n in range(4):
        assert send(visitor, form, {"phone": f"1380013800{n}"}).status_code == 200

    owners = [lead.owner for lead in Lead.objects.order_by("id")]
    first, second = sorted([team.owner, team.colleague], key=lambda u: u.pk)
    assert owners == [first, second, first, second]
    form.refresh_from_db()
    assert form.last_assigned == second


def test_a_fixed_person_who_may_no_longer_own_leads_leaves_the_lead_in_the_pool(team, visitor):
    form = make_form(assignment=Assignment.USER, owner=team.owner)
    team.owner.is_active = False
    team.owner.save(update_fields=["is_active"])

    send(visitor, form, {"phone": "13800138000"})

    assert Lead.objects.get().owner is None


def test_a_lead_made_by_a_form_fires_the_lead_events_automation_listens_to(team, visitor):
    form = make_form()
    send(visitor, form, {"phone": "13800138000"})

    event = Change.objects.get(kind=EventKind.CREATED)
    assert event.by_system
    assert event.automation_depth == 0  # a rule may react to it


# --- Refused values ------------------------------------------------------------------------


def test_a_required_field_left_empty_is_an_error_on_it_and_nothing_is_made(team, visitor):
    form = make_form("person_name", ("phone", True))

    response = send(visitor, form, {"person_name": "周先生", "phone": "  "})

    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page
    assert 'value="周先生"' in page  # what the visitor typed is still there
    assert not Lead.objects.exists()
    assert not WebFormSubmission.objects.exists()


def test_errors_are_in_the_visitors_language(team, visitor):
    form = make_form("person_name", ("phone", True), "email")

    response = send_json(visitor, form, {"phone": "", "email": "不是邮箱"}, language="zh-hans")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["phone"] == ["该字段是必填项。"]
    assert "不是邮箱" in errors["email"][0]
    assert not Lead.objects.exists()


def test_bad_values_are_refused_field_by_field_as_the_lead_form_refuses_them(team, visitor):
    form = make_form("person_name", "phone", "email")

    response = send_json(
        visitor,
        form,
        {"person_name": "x" * 101, "phone": "138-FLOWERS", "email": "zhou@"},
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"person_name", "phone", "email"}
    assert "too long" in errors["person_name"][0]
    assert "is not a phone number" in errors["phone"][0]
    assert not Lead.objects.exists()


def test_the_leads_own_rules_apply_a_lead_needs_a_way_to_reach_it(team, visitor):
    form = make_form("title", "notes")

    response = send_json(visitor, form, {"title": "采购经理"})

    assert response.status_code == 400
    assert response.json()["errors"]["__all__"] == [
        "Give at least a name, a company, a phone number, an email or a WeChat id."
    ]
    assert not Lead.objects.exists()
    assert not WebFormSubmission.objects.exists()


def test_custom_fields_are_checked_by_their_definition(team, visitor):
    custom_field("budget", "money", record_type="lead", label="预算", label_en="Budget")
    form = make_form("phone", "cf_budget")

    refused = send_json(visitor, form, {"phone": "13800138000", "cf_budget": "很多"})
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"cf_budget"}

    accepted = send_json(visitor, form, {"phone": "13800138000", "cf_budget": "1.5万"})
    assert accepted.status_code == 200
    assert Lead.objects.get().custom == {"budget": "15000.00"}


def test_values_the_form_has_no_field_for_are_kept_and_noted_on_the_lead(team, visitor):
    form = make_form()

    send(visitor, form, {"phone": "13800138000", "product": "CRM 专业版"})

    lead = Lead.objects.get()
    [note] = follow_ups(lead)
    assert "product: CRM 专业版" in note.content
    assert WebFormSubmission.objects.get().payload["product"] == "CRM 专业版"


# --- Bots and resent forms ----------------------------------------------------------------


def test_a_filled_honeypot_is_answered_as_a_success_and_makes_nothing(team, visitor):
    form = make_form()

    response = send(visitor, form, {"phone": "13800138000", services.HONEYPOT: "http://spam"})

    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    assert not Lead.objects.exists()
    assert WebFormSubmission.objects.get().outcome == Outcome.SPAM


def test_a_form_sent_faster_than_a_person_types_is_refused_politely(team, visitor):
    form = make_form()

    response = send(visitor, form, {"phone": "13800138000"}, age=0.5)

    assert response.status_code == 400
    assert "please check your entries and send the form again" in response.content.decode()
    assert 'value="13800138000"' in response.content.decode()
    assert not Lead.objects.exists()


@pytest.mark.parametrize(
    "bad_token",
    ["", "forged", "expired", "another form's"],
)
def test_a_missing_forged_expired_or_foreign_token_is_refused(team, visitor, bad_token):
    form = make_form()
    other = make_form(name="另一个表单")
    value = {
        "": "",
        "forged": token(form)[:-3] + "abc",
        "expired": token(form, age=2 * 24 * 3600),
        "another form's": token(other),
    }[bad_token]

    response = send_json(visitor, form, {"phone": "13800138000", tokens.FIELD: value})

    assert response.status_code == 400
    assert response.json()["error"] in ("missing", "invalid", "expired")
    assert response.json()["token"]  # a fresh one to send again with
    assert not Lead.objects.exists()


def test_the_same_token_sent_twice_makes_one_lead(team, visitor):
    form = make_form("person_name")  # no phone nor email to match duplicates by
    data = {tokens.FIELD: token(form), "person_name": "周先生"}
    url = reverse("webforms:submit", args=[form.key])

    first = visitor.post(url, data)
    second = visitor.post(url, data)

    assert first.status_code == second.status_code == 200
    lead = Lead.objects.get()
    outcomes = list(WebFormSubmission.objects.order_by("id").values_list("outcome", "lead"))
    assert outcomes == [(Outcome.CREATED, lead.pk)]  # the repeat leaves no second row


def test_too_many_submissions_from_one_address_are_answered_429(team, visitor, settings):
    settings.WEBFORMS_RATE_LIMIT = "2/min"
    form = make_form()

    answers = [send(visitor, form, {"phone": f"1380013800{n}"}) for n in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) > 0
    assert Lead.objects.count() == 2
    json_answer = send_json(visitor, form, {"phone": "13800138009"})
    assert json_answer.status_code == 429
    assert json_answer.json()["error"] == "rate_limited"


# --- Duplicates --------------------------------------------------------------------------


def test_an_open_lead_with_the_same_phone_gets_a_follow_up_instead_of_a_twin(team, visitor):
    existing = LeadFactory(owner=team.colleague, phone="+8613800138000", person_name="周先生")
    form = make_form()

    response = send(visitor, form, {"person_name": "周总", "phone": "138-0013-8000"})

    assert response.status_code == 200
    assert list(Lead.objects.all()) == [existing]
    [note] = follow_ups(existing)
    assert note.content.startswith("Sent the web form “官网咨询表单” again:")
    assert "周总" in note.content and "138-0013-8000" in note.content
    event = Change.objects.get(kind=EventKind.ACTIVITY_LOGGED)
    assert event.actor_type == "webform"
    submission = WebFormSubmission.objects.get()
    assert (submission.outcome, submission.lead) == (Outcome.DUPLICATE, existing)


def test_an_open_lead_with_the_same_email_in_other_case_is_the_same_visitor(team, visitor):
    existing = LeadFactory(owner=None, email="zhou@example.com")
    form = make_form("phone", "email")

    send(visitor, form, {"email": "ZHOU@Example.com", "phone": ""})

    assert list(Lead.objects.all()) == [existing]
    assert len(follow_ups(existing)) == 1


def test_a_closed_lead_with_the_same_phone_does_not_stop_a_new_one(team, visitor):
    LeadFactory(stage=stage("线索", "无效线索"), phone="+8613800138000")
    form = make_form()

    send(visitor, form, {"phone": "13800138000"})

    assert Lead.objects.count() == 2


# --- Where it came from -------------------------------------------------------------------


def test_utm_parameters_page_and_referrer_are_kept_with_the_submission(team, visitor):
    form = make_form()

    send(
        visitor,
        form,
        {
            "phone": "13800138000",
            "utm_source": "baidu",
            "utm_campaign": "双十二",
            services.PAGE: "https://www.example.com/pricing?utm_medium=cpc&utm_term=crm",
            services.REFERRER: "https://www.baidu.com/s?wd=crm",
        },
    )

    submission = WebFormSubmission.objects.get()
    assert submission.utm == {
        "utm_source": "baidu",
        "utm_medium": "cpc",
        "utm_campaign": "双十二",
        "utm_term": "crm",
    }
    assert submission.referrer == "https://www.baidu.com/s?wd=crm"
    assert submission.page.startswith("https://www.example.com/pricing")
    assert submission.ip
    # The rep sees it on the lead too.
    [note] = follow_ups(submission.lead)
    assert "utm_campaign: 双十二" in note.content


def test_utm_parameters_in_the_submit_address_count_too(team, visitor):
    form = make_form()
    url = reverse("webforms:submit", args=[form.key]) + "?utm_source=newsletter"

    visitor.post(url, {tokens.FIELD: token(form), "phone": "13800138000"})

    assert WebFormSubmission.objects.get().utm == {"utm_source": "newsletter"}


# --- The endpoints ------------------------------------------------------------------------


def test_an_inactive_form_is_not_found_anywhere(team, visitor):
    form = make_form(is_active=False)
    for name in ("webforms:page", "webforms:embed", "webforms:api"):
        assert visitor.get(reverse(name, args=[form.key])).status_code == 404
    assert send(visitor, form, {"phone": "13800138000"}).status_code == 404
    assert visitor.get(reverse("webforms:page", args=["no-such-key"])).status_code == 404
    assert visitor.get("/forms/%00/").status_code == 404
    assert visitor.post("/api/forms/%E4%B8%AD%00/", {}).status_code == 404
    assert not Lead.objects.exists()


def test_the_forms_page_shows_its_fields_honeypot_and_a_fresh_token(team, visitor):
    form = make_form(
        "person_name", ("phone", True), title="预约演示", intro="留下电话，我们联系您。"
    )

    response = visitor.get(reverse("webforms:page", args=[form.key]) + "?utm_source=wechat")

    page = response.content.decode()
    assert response.status_code == 200
    assert "预约演示" in page and "留下电话，我们联系您。" in page
    assert 'name="person_name"' in page and 'name="phone"' in page
    assert f'name="{services.HONEYPOT}"' in page
    assert 'name="utm_source" value="wechat"' in page
    token_value = response.context["form_html"].split(f'name="{tokens.FIELD}" value="')[1]
    assert tokens.check(token_value.split('"')[0], form.pk, now=time.time() + 5)
    assert response["Cache-Control"] == "no-store"


def test_the_embed_script_carries_a_fresh_token_and_the_form(team, visitor):
    form = make_form()

    response = visitor.get(reverse("webforms:embed", args=[form.key]))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-store"
    script = response.content.decode()
    assert json.dumps(form.key) in script
    assert "\\u003cform" in script  # the form, drawn where the script stands if need be
    assert "</" not in script.split("html = ")[1].split(";")[0]


def test_the_json_endpoint_describes_the_form_and_takes_a_json_submission(team, visitor):
    form = make_form("person_name", ("phone", True), redirect_url="https://www.example.com/ok")

    url = reverse("webforms:api", args=[form.key])
    described = visitor.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    assert [f["name"] for f in described["fields"]] == ["person_name", "phone"]
    assert described["fields"][1] == {
        "name": "phone",
        "label": "Phone",
        "required": True,
        "type": "tel",
        "options": [],
    }
    assert described["honeypot_field"] == services.HONEYPOT

    response = visitor.post(
        reverse("webforms:api", args=[form.key]),
        json.dumps({tokens.FIELD: described["token"], "phone": "13800138000"}),
        content_type="application/json",
    )
    assert response.status_code == 400  # the token was handed out just now: too fast
    assert response.json()["error"] == "too_fast"

    answer = send_json(visitor, form, {"person_name": "周先生", "phone": "13800138000"})
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "message": "Thank you! We will be in touch soon.",
        "redirect": "https://www.example.com/ok",
    }
    assert Lead.objects.get().person_name == "周先生"


def test_a_form_encoded_post_goes_to_the_redirect_address(team, visitor):
    form = make_form(redirect_url="https://www.example.com/thanks")

    response = send(visitor, form, {"phone": "13800138000"})

    assert response.status_code == 303
    assert response["Location"] == "https://www.example.com/thanks"


def test_a_post_that_asks_for_json_gets_json_from_the_submit_address(team, visitor):
    form = make_form()

    response = send(visitor, form, {"phone": "13800138000"}, HTTP_ACCEPT="application/json")

    assert response.json()["ok"] is True


def test_cors_headers_go_to_allowed_origins_only(team, visitor):
    form = make_form(allowed_origins="https://www.example.com\nhttps://shop.example.com")
    url = reverse("webforms:api", args=[form.key])

    preflight = visitor.options(url, HTTP_ORIGIN="https://www.example.com")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert "POST" in preflight["Access-Control-Allow-Methods"]

    allowed = send_json(
        visitor, form, {"phone": "13800138000"}, HTTP_ORIGIN="https://shop.example.com"
    )
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"

    other = send_json(visitor, form, {"phone": "13800138001"}, HTTP_ORIGIN="https://evil.example")
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other
    assert Lead.objects.count() == 1


def test_a_form_naming_no_origins_may_be_sent_from_any_site(team, visitor):
    form = make_form()

    response = send_json(visitor, form, {"phone": "13800138000"}, HTTP_ORIGIN="https://a.example")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"


def test_a_redirect_address_must_be_http_or_https_and_origins_must_be_origins(team):
    form = WebForm(name="x", redirect_url="javascript:alert(1)", allowed_origins="example.com")
    with pytest.raises(Exception) as refused:
        form.full_clean()
    assert set(refused.value.message_dict) == {"redirect_url", "allowed_origins"}


def test_regenerating_the_key_retires_the_old_address(team, visitor):
    form = make_form()
    old = form.key

    form.regenerate_key()

    assert form.key != old and len(form.key) >= 32
    assert visitor.get(reverse("webforms:page", args=[old])).status_code == 404
    assert visitor.get(reverse("webforms:page", args=[form.key])).status_code == 200


# --- Garbage in, no 500 out ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2, 3]",
        b'"text"',
        b"\xff\xfe",
        json.dumps({"phone": "138\u0000"}).encode(),
        json.dumps({"phone": "\ud800"}).encode(),
        json.dumps({"phone": {"nested": 1}, "person_name": [1, [2]]}).encode(),
        json.dumps({"phone": 13800138000.0, "email": 5}).encode(),
        json.dumps({f"k{n}": n for n in range(200)}).encode(),
        json.dumps({"phone": "13800138000", "_wf_page": "http://[::1/?utm_source=x"}).encode(),
    ],
)
def test_garbage_json_is_a_4xx_never_a_500(team, visitor, body):
    form = make_form()
    response = visitor.post(
        reverse("webforms:api", args=[form.key]), body, content_type="application/json"
    )
    assert response.status_code in (200, 400)
    assert "ok" in response.json()


def test_nul_bytes_huge_text_and_odd_digits_in_a_form_post_are_no_500(team, visitor):
    form = make_form("person_name", "phone", "notes")

    nul = send(visitor, form, {"person_name": "周\x00先生"})
    assert nul.status_code == 400
    huge = send(visitor, form, {"notes": "长" * 40_000})
    assert huge.status_code == 413
    too_long = send(visitor, form, {"phone": "13800138000", "notes": "x" * 3000})
    assert too_long.status_code == 400
    assert "Too long" in too_long.content.decode()
    many = send(visitor, form, {f"extra{n}": "x" for n in range(30)})
    assert many.status_code == 400
    # Full-width digits are digits; Arabic-Indic ones a number or an error, never a crash.
    wide = send(visitor, form, {"phone": "１３８００１３８０００"})
    assert wide.status_code == 200
    assert Lead.objects.get().phone == "+8613800138000"
    arabic = send(visitor, form, {"phone": "١٣٨٠٠١٣٨٠٠١"})
    assert arabic.status_code in (200, 400)


# --- At the same time (PostgreSQL: concurrent sessions) ---------------------------------


def at_once(*calls) -> list:
    """Run the calls in threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(n, call):
        try:
            barrier.wait(timeout=10)
            results[n] = call()
        except Exception as exc:
            results[n] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: concurrent sessions")
@pytest.mark.django_db(transaction=True)
def test_the_same_token_sent_twice_at_once_makes_one_lead(team):
    form = make_form("person_name")
    data = {tokens.FIELD: token(form), "person_name": "周先生"}
    url = reverse("webforms:submit", args=[form.key])

    throttle.reset("webforms-ip", "10.9.9.9")
    answers = at_once(*[lambda: Client(REMOTE_ADDR="10.9.9.9").post(url, data)] * 2)

    assert [a.status_code for a in answers] == [200, 200]
    assert Lead.objects.count() == 1
    assert WebFormSubmission.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: concurrent sessions")
@pytest.mark.django_db(transaction=True)
def test_leads_sent_at_once_go_in_turn_to_different_members(team):
    form = make_form(assignment=Assignment.ROUND_ROBIN, department=team.team1)

    def submit(n):
        return lambda: services.submit(
            form, services.Submission(values={"phone": f"1380013800{n}"}, token=token(form))
        )

    results = at_once(submit(1), submit(2))

    assert all(r.outcome == Outcome.CREATED for r in results), results
    assert {lead.owner for lead in Lead.objects.all()} == {team.owner, team.colleague}


def test_the_owner_hears_of_a_new_lead_and_of_a_resent_form_and_sees_who_made_it(
    team, visitor, client
):
    team.owner.language = "en"
    team.owner.save(update_fields=["language"])
    form = make_form(assignment=Assignment.USER, owner=team.owner)
    send(visitor, form, {"person_name": "周先生", "phone": "13800138000", "product": "CRM"})
    send(visitor, form, {"person_name": "周先生", "phone": "13800138000", "product": "ERP"})
    lead = Lead.objects.get()

    new, again = Notification.objects.filter(user=team.owner).order_by("id")
    assert new.title == "New lead from the web form “官网咨询表单”: 周先生"
    assert again.title == "周先生 sent the web form “官网咨询表单” again"
    assert "product: ERP" in again.body
    assert (again.record_type, again.record_id) == ("lead", lead.pk)
    # The lead's page: made by the web form.
    client.force_login(team.owner)
    page = client.get(reverse("leads:detail", args=[lead.pk]))
    assert page.status_code == 200
    assert "Web form “官网咨询表单”" in page.content.decode()
