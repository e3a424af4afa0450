"""What every API call shares: a token sees what its user sees; the rate limit per token
(and per person in the browser); every error as JSON in the caller's language — also
Django's own 404, 400 and 500 under /api/; bad ids and bodies are 4xx, never 500; and
the read-only configuration endpoints (pipelines, dictionaries, custom fields)."""

import io

import pytest
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseServerError
from django.test import RequestFactory
from rest_framework.exceptions import ParseError

from accounts.models import DataScope, FieldAccess
from integrations.api import services
from integrations.api.errors import ApiErrorsMiddleware
from integrations.api.parsers import JSONParser, TooLarge
from integrations.api.throttling import ApiRateThrottle

from .factories import (
    CustomerFactory,
    PipelineFactory,
    StageFactory,
    custom_field,
    dictionary,
    give_crm_roles,
)

PIPELINES = "/api/v1/pipelines/"
DICTIONARIES = "/api/v1/dictionaries/"
CUSTOM_FIELDS = "/api/v1/custom-fields/"


def token_of(user) -> str:
    _token, text = services.create_token(user, name="script", expires_in_days=None, by=user)
    return text


def api(client, user, path, **extra):
    """GET `path` with a fresh token of `user`."""
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token_of(user)}", **extra)


def speaking(user, language: str):
    user.language = language
    user.save(update_fields=["language"])
    return user


# --- a token is its user ----------------------------------------------------------------


def test_a_reps_token_does_not_see_another_reps_customer(client, org):
    give_crm_roles(org, scope=DataScope.OWN)
    mine = CustomerFactory(owner=org.owner, name="航启医疗")
    theirs = CustomerFactory(owner=org.outsider, name="远方贸易")

    assert api(client, org.owner, f"/api/v1/customers/{mine.pk}/").status_code == 200
    hidden = api(client, org.owner, f"/api/v1/customers/{theirs.pk}/")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"


def test_pipelines_are_those_of_the_types_the_role_may_view(client, org):
    deals_only = org.set_scope(org.owner, DataScope.OWN, permissions=["deal.view"])
    nothing = org.set_scope(org.outsider, DataScope.OWN, permissions=[])

    seen = api(client, deals_only, PIPELINES).json()
    assert seen and {p["kind"] for p in seen} == {"deal"}
    assert api(client, deals_only, PIPELINES, data={"kind": "lead"}).json() == []
    assert api(client, nothing, PIPELINES).json() == []

    everything = api(client, org.admin, PIPELINES).json()
    lead_pipeline = next(p for p in everything if p["kind"] == "lead")
    assert api(client, deals_only, f"{PIPELINES}{lead_pipeline['id']}/").status_code == 404
    assert api(client, org.admin, f"{PIPELINES}{lead_pipeline['id']}/").status_code == 200


def test_a_pipeline_lists_its_stages_in_order_in_the_readers_language(client, org):
    pipeline = PipelineFactory(name="大客户", name_en="Key accounts")
    StageFactory(pipeline=pipeline, name="报价", name_en="Quote", order=20)
    StageFactory(pipeline=pipeline, name="初访", name_en="First visit", order=10)
    english = speaking(org.admin, "en")

    body = api(client, english, f"{PIPELINES}{pipeline.pk}/").json()

    assert body["name"] == "Key accounts"
    assert [s["name"] for s in body["stages"]] == ["First visit", "Quote"]
    chinese = speaking(org.admin, "zh-hans")
    body = api(client, chinese, f"{PIPELINES}{pipeline.pk}/").json()
    assert [s["name"] for s in body["stages"]] == ["初访", "报价"]


def test_dictionaries_give_codes_and_labels_in_the_readers_language(client, org):
    dictionary("api_size", "规模", [("small", "小型", "Small"), ("large", "大型", "Large")])

    english = api(client, speaking(org.owner, "en"), f"{DICTIONARIES}api_size/").json()
    assert [(i["code"], i["label"]) for i in english["items"]] == [
        ("small", "Small"),
        ("large", "Large"),
    ]
    chinese = api(client, speaking(org.owner, "zh-hans"), DICTIONARIES).json()
    size = next(d for d in chinese if d["code"] == "api_size")
    assert [i["label"] for i in size["items"]] == ["小型", "大型"]
    assert api(client, org.owner, f"{DICTIONARIES}nope/").status_code == 404


def test_custom_fields_are_those_the_caller_may_see(client, org):
    custom_field("budget", "money", label="预算", label_en="Budget")
    custom_field("secret", "text")
    custom_field("grade", "text", record_type="lead")
    reader = org.set_scope(org.owner, DataScope.OWN, permissions=["customer.view"])
    reader.role.field_permissions = {"customer": {"cf_secret": FieldAccess.HIDDEN}}
    reader.role.save(update_fields=["field_permissions"])
    speaking(reader, "en")

    fields = api(client, reader, CUSTOM_FIELDS).json()

    assert [(f["name"], f["label"], f["field_type"]) for f in fields] == [
        ("cf_budget", "Budget", "money")
    ]
    assert api(client, reader, CUSTOM_FIELDS, data={"record_type": "lead"}).json() == []
    admin_view = api(client, org.admin, CUSTOM_FIELDS, data={"record_type": "lead"}).json()
    assert [f["key"] for f in admin_view] == ["grade"]


def test_an_unknown_record_type_is_a_400_naming_the_parameter(client, org):
    response = api(client, speaking(org.admin, "en"), CUSTOM_FIELDS, data={"record_type": "x"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"] == "Some fields are not valid."
    assert body["errors"] == {"record_type": ["Choose one of: customer, contact, lead, deal."]}


# --- rate limits ------------------------------------------------------------------------


def test_over_the_rate_limit_a_token_gets_429_with_retry_after(client, org, settings):
    settings.API_RATE_LIMIT = "2/min"
    text = token_of(org.owner)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {text}"}

    assert [client.get(DICTIONARIES, **headers).status_code for _ in range(2)] == [200, 200]
    over = client.get(DICTIONARIES, **headers)

    assert over.status_code == 429
    assert over.json()["code"] == "throttled"
    assert 0 < int(over["Retry-After"]) <= 60
    # Per token: the same person's other token has its own count.
    assert api(client, org.owner, DICTIONARIES).status_code == 200


def test_session_requests_are_limited_per_person(client, org, settings):
    settings.API_RATE_LIMIT = "1/min"
    cache.delete(ApiRateThrottle.cache_format % {"scope": "api", "ident": f"user:{org.owner.pk}"})
    client.force_login(org.owner)

    assert client.get(DICTIONARIES).status_code == 200
    assert client.get(DICTIONARIES).status_code == 429


# --- errors: JSON, in the caller's language --------------------------------------------


def test_errors_are_in_the_token_users_language(client, org):
    chinese = api(client, speaking(org.owner, "zh-hans"), f"{PIPELINES}999999/")
    english = api(client, speaking(org.colleague, "en"), f"{PIPELINES}999999/")

    assert chinese.status_code == english.status_code == 404
    assert chinese.json() == {"detail": "未找到。", "code": "not_found"}
    assert english.json() == {"detail": "Not found.", "code": "not_found"}


def test_an_unknown_api_url_is_a_json_404_in_the_users_language(client, org):
    english = api(client, speaking(org.owner, "en"), "/api/v1/no-such-thing/")
    chinese = api(client, speaking(org.colleague, "zh-hans"), "/api/v2/")

    assert english.status_code == chinese.status_code == 404
    assert english["Content-Type"] == "application/json"
    assert english.json() == {"detail": "Not found.", "code": "not_found"}
    assert chinese.json()["detail"] == "未找到。"


@pytest.mark.parametrize(
    "path",
    [
        f"{PIPELINES}{2**63}/",
        f"{PIPELINES}{10**40}/",
        f"{PIPELINES}-1/",
        f"{PIPELINES}abc/",
        f"{DICTIONARIES}{'x' * 500}/",
        f"{DICTIONARIES}a%00b/",
        f"{DICTIONARIES}%E4%B8%AD/",
        f"{PIPELINES}?kind=%00",
        f"{CUSTOM_FIELDS}?record_type=customer%00",
    ],
)
def test_bad_ids_and_parameters_are_json_4xx(client, org, path):
    response = api(client, org.admin, path)

    assert 400 <= response.status_code < 500
    assert set(response.json()) >= {"detail", "code"}


def test_a_method_the_endpoint_lacks_is_a_json_405(client, org):
    response = client.post(
        PIPELINES,
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_of(org.admin)}",
    )
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"name": "a\\u0000b"}',
        b'{"a\\u0000": 1}',
        b"[" * 100_000,
        b'{"n": NaN}',
        b"\xff\xfe",
        b'{"n": ' + b"9" * 5000 + b"}",
    ],
)
def test_bodies_no_view_could_take_are_refused_as_400(raw):
    with pytest.raises(ParseError):
        JSONParser().parse(io.BytesIO(raw), parser_context={"encoding": "utf-8"})


def test_a_body_above_the_upload_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    with pytest.raises(TooLarge):
        JSONParser().parse(io.BytesIO(b'{"name": "long enough"}'))


def test_a_crash_under_api_is_a_json_500_and_pages_keep_their_html(rf: RequestFactory, db):
    crash = ApiErrorsMiddleware(lambda request: HttpResponseServerError("<h1>Server Error</h1>"))

    api_answer = crash(rf.get("/api/v1/customers/"))
    page_answer = crash(rf.get("/customers/"))

    assert api_answer.status_code == 500
    assert api_answer["Content-Type"] == "application/json"
    assert api_answer.content.startswith(b'{"detail"')
    assert b"server_error" in api_answer.content
    assert page_answer.content == b"<h1>Server Error</h1>"


def test_successes_and_json_errors_pass_through_unchanged(rf: RequestFactory, db):
    ok = ApiErrorsMiddleware(lambda request: HttpResponse("yes"))
    assert ok(rf.get("/api/docs/")).content == b"yes"
