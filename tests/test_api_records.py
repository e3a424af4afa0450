"""The REST API's record endpoints (/api/v1/customers/ ... /deals/): who sees and changes
what (the data scope, as on the pages), field permissions, values in and out
(dictionary codes, custom fields, people), the same history as the pages, pagination,
and bad input that is always a 4xx."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.actors import ActorKind
from accounts.models import DataScope, FieldAccess
from crm.models import Change, Customer, EventKind

from .api_support import TYPES
from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TaskFactory,
    crm_permissions,
    custom_field,
    item,
)

PATHS = {
    "customer": "customers",
    "contact": "contacts",
    "activity": "activities",
    "task": "tasks",
    "lead": "leads",
    "deal": "deals",
}
EDITABLE_TYPES = ("customer", "contact", "task", "lead", "deal")
EVERYTHING = crm_permissions(("view", "add", "change", "delete"), types=TYPES)


def url(record_type: str, pk=None, action: str | None = None) -> str:
    path = f"/api/v1/{PATHS[record_type]}/"
    if pk is not None:
        path += f"{pk}/"
    if action:
        path += f"{action}/"
    return path


def owned_by(record_type: str, user):
    """A record of `record_type` whose data scope is `user`'s."""
    if record_type == "customer":
        return CustomerFactory(owner=user)
    if record_type == "contact":
        return ContactFactory(customer=CustomerFactory(owner=user))
    if record_type == "activity":
        return ActivityFactory(customer=CustomerFactory(owner=user))
    if record_type == "task":
        return TaskFactory(assignee=user)
    if record_type == "lead":
        return LeadFactory(owner=user)
    return DealFactory(owner=user)


@pytest.fixture
def api():
    return APIClient()


def signed_in(api, user):
    api.force_login(user)
    return api


def rep(org, name="owner", scope=DataScope.OWN, permissions=None):
    user = org.set_scope(
        getattr(org, name), scope, EVERYTHING if permissions is None else permissions
    )
    setattr(org, name, user)
    return user


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- Data scope ---------------------------------------------------------------------------------

# Who sees the owner's (销售一部) records: the colleague shares the department, the
# outsider is in 销售二部.
SEES = {
    DataScope.OWN: {"colleague": False, "outsider": False},
    DataScope.DEPARTMENT: {"colleague": True, "outsider": False},
    DataScope.DEPARTMENT_TREE: {"colleague": True, "outsider": False},
    DataScope.ALL: {"colleague": True, "outsider": True},
}


@pytest.mark.parametrize("record_type", TYPES)
@pytest.mark.parametrize("scope", list(SEES))
def test_each_type_is_seen_within_the_data_scope_only(api, org, record_type, scope):
    owner = rep(org)
    record = owned_by(record_type, owner)
    for name, sees in SEES[scope].items():
        viewer = rep(org, name, scope)
        client = signed_in(APIClient(), viewer)
        assert (record.pk in ids(client.get(url(record_type)))) is sees
        detail = client.get(url(record_type, record.pk))
        assert detail.status_code == (200 if sees else 404)
        if not sees and record_type in EDITABLE_TYPES:
            assert client.patch(url(record_type, record.pk), {}).status_code == 404
            assert client.put(url(record_type, record.pk), {}).status_code == 404
    mine = signed_in(api, owner)
    assert record.pk in ids(mine.get(url(record_type)))


@pytest.mark.parametrize(
    ("record_type", "action"),
    [
        ("customer", "release"),
        ("customer", "transfer"),
        ("lead", "move"),
        ("lead", "convert"),
        ("lead", "release"),
        ("lead", "transfer"),
        ("deal", "move"),
        ("deal", "transfer"),
        ("task", "complete"),
        ("task", "reopen"),
    ],
)
def test_actions_on_a_record_outside_the_scope_are_404(api, org, record_type, action):
    record = owned_by(record_type, rep(org))
    outsider = rep(org, "outsider", DataScope.DEPARTMENT_TREE)
    response = signed_in(api, outsider).post(url(record_type, record.pk, action), {})
    assert response.status_code == 404


def test_a_record_seen_but_not_changeable_is_403_like_the_page(api, org):
    customer = CustomerFactory(owner=rep(org))
    viewer = rep(
        org,
        "colleague",
        DataScope.DEPARTMENT,
        crm_permissions(("view",), types=TYPES),
    )
    client = signed_in(api, viewer)
    assert client.get(url("customer", customer.pk)).status_code == 200
    assert client.patch(url("customer", customer.pk), {"name": "改名"}).status_code == 403
    assert client.post(url("customer"), {"name": "新客户"}).status_code == 403


def test_without_the_view_permission_the_list_is_403(api, org):
    user = rep(org, permissions=crm_permissions(("view",), types=("contact",)))
    assert signed_in(api, user).get(url("customer")).status_code == 403


def test_a_record_nothing_belongs_to_is_deleted_with_its_event(api, org):
    owner = rep(org)
    client = signed_in(api, owner)
    for record_type in TYPES:
        record = owned_by(record_type, owner)  # nothing else points at it
        response = client.delete(url(record_type, record.pk))
        assert response.status_code == 204, (record_type, response.content)
        model = type(record)
        assert not model.objects.filter(pk=record.pk).exists()
        event = Change.objects.get(
            record_type=ContentType.objects.get_for_model(model),
            record_id=record.pk,
            kind=EventKind.DELETED,
        )
        assert event.user == owner


def test_a_customer_with_contacts_is_not_deleted_and_the_answer_says_why(api, org):
    owner = rep(org)
    customer = CustomerFactory(owner=owner)
    ContactFactory(customer=customer)
    response = signed_in(api, owner).delete(url("customer", customer.pk))
    assert response.status_code == 409
    assert "联系人" in response.json()["detail"] or "contact" in response.json()["detail"]
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert not Change.objects.filter(record_id=customer.pk, kind=EventKind.DELETED).exists()


def test_a_lead_with_a_follow_up_is_not_deleted_either(api, org):
    """Follow-ups point at a lead generically (no foreign key): they count as attached."""
    owner = rep(org)
    lead = owned_by("lead", owner)
    ActivityFactory(customer=None, subject=lead, author=owner)
    response = signed_in(api, owner).delete(url("lead", lead.pk))
    assert response.status_code == 409
    assert type(lead).objects.filter(pk=lead.pk).exists()


def test_deleting_needs_the_roles_delete_permission(api, org):
    owner = rep(org, permissions=crm_permissions(("view", "add", "change")))
    customer = CustomerFactory(owner=owner)
    assert signed_in(api, owner).delete(url("customer", customer.pk)).status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_activities_are_logged_not_edited(api, org):
    activity = owned_by("activity", rep(org))
    client = signed_in(api, org.owner)
    assert client.patch(url("activity", activity.pk), {"content": "x"}).status_code == 405


def test_anonymous_requests_are_refused(api, org):
    assert api.get(url("customer")).status_code in (401, 403)


# --- Values out ---------------------------------------------------------------------------------


def test_a_customer_reads_with_dictionary_codes_and_labels_owner_and_tags(api, org):
    owner = rep(org)
    customer = CustomerFactory(
        owner=owner, level=item("customer_level", "a"), phone="+8613800138000"
    )
    customer.tags.create(name="华东")
    data = signed_in(api, owner).get(url("customer", customer.pk)).json()
    level = item("customer_level", "a")
    assert data["level"] == {"code": "a", "label": str(level)}
    assert data["type"] is None
    assert data["owner"] == owner.pk
    assert data["owner_name"] == "王芳"
    assert data["tags"] == ["华东"]
    assert data["phone"] == "+8613800138000"


def test_hidden_fields_are_absent_and_custom_ones_too(api, org):
    owner = rep(org)
    custom_field("budget", "money")
    custom_field("secret", "text")
    owner.role.field_permissions = {
        "customer": {"phone": FieldAccess.HIDDEN, "cf_secret": FieldAccess.HIDDEN}
    }
    owner.role.save()
    customer = CustomerFactory(owner=owner, phone="+8613800138000", custom={"secret": "x"})
    client = signed_in(api, owner)
    detail = client.get(url("customer", customer.pk)).json()
    assert "phone" not in detail
    assert detail["custom"] == {"budget": None}
    (row,) = client.get(url("customer")).json()["results"]
    assert "phone" not in row and "secret" not in row["custom"]


# --- Values in ----------------------------------------------------------------------------------


def test_creating_a_customer_takes_codes_and_custom_values(api, org):
    owner = rep(org)
    custom_field("budget", "money")
    response = signed_in(api, owner).post(
        url("customer"),
        {
            "name": "杭州远景科技",
            "level": "a",
            "source": "website",
            "phone": "138 0013 8000",
            "tags": ["华东", "重点"],
            "custom": {"budget": "12万"},
        },
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["level"]["code"] == "a"
    assert data["source"]["code"] == "website"
    assert data["phone"] == "+8613800138000"
    assert data["owner"] == owner.pk  # the creator unless said, as on the page
    assert data["tags"] == ["华东", "重点"]
    assert data["custom"] == {"budget": "120000.00"}
    customer = Customer.objects.get(pk=data["id"])
    assert Change.objects.filter(record_id=customer.pk, kind=EventKind.CREATED).count() == 1


def test_a_customer_created_with_no_owner_goes_to_the_pool(api, org):
    owner = rep(org)
    response = signed_in(api, owner).post(url("customer"), {"name": "公海客户", "owner": None})
    assert response.status_code == 201
    assert Customer.objects.get(pk=response.json()["id"]).owner is None


def test_bad_values_are_400_by_field_and_nothing_is_saved(api, org):
    owner = rep(org)
    custom_field("budget", "money")
    response = signed_in(api, owner).post(
        url("customer"),
        {
            "name": "",
            "level": "no-such-level",
            "email": "not-an-email",
            "custom": {"budget": "a lot", "nope": 1},
        },
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"name", "level", "email", "custom"}
    assert set(errors["custom"]) == {"budget", "nope"}
    assert not Customer.objects.exists()


def test_read_only_and_unknown_fields_are_refused_not_ignored(api, org):
    owner = rep(org)
    owner.role.field_permissions = {"customer": {"level": FieldAccess.READONLY}}
    owner.role.save()
    customer = CustomerFactory(owner=owner, name="原名")
    response = signed_in(api, owner).patch(
        url("customer", customer.pk),
        {
            "name": "新名",
            "level": "a",
            "owner": org.colleague.pk,
            "created_at": "2026-01-01",
            "x": 1,
        },
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"level", "owner", "created_at", "x"}
    customer.refresh_from_db()
    assert customer.name == "原名"


def test_a_read_only_custom_field_is_refused(api, org):
    owner = rep(org)
    custom_field("budget", "money")
    owner.role.field_permissions = {"customer": {"cf_budget": FieldAccess.READONLY}}
    owner.role.save()
    customer = CustomerFactory(owner=owner)
    response = signed_in(api, owner).patch(
        url("customer", customer.pk), {"custom": {"budget": "100"}}
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]["custom"]) == {"budget"}


def test_put_replaces_and_patch_changes_only_what_is_sent(api, org):
    owner = rep(org)
    customer = CustomerFactory(owner=owner, email="a@example.com", address="杭州")
    client = signed_in(api, owner)
    patched = client.patch(url("customer", customer.pk), {"address": "上海"}).json()
    assert (patched["email"], patched["address"]) == ("a@example.com", "上海")
    put = client.put(url("customer", customer.pk), {"name": customer.name})
    assert put.status_code == 200, put.json()
    assert (put.json()["email"], put.json()["address"]) == ("", "")
    assert client.put(url("customer", customer.pk), {"email": "b@example.com"}).status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x" * 10_000},
        {"name": "华东\x00机械"},
        {"name": ["a"]},
        {"name": {"a": 1}},
        {"name": 1e308},
        {"level": 10**40},
        {"owner": 10**40},
        {"owner": "9" * 30},
        {"owner": -1},
        {"tags": [{"a": 1}]},
        {"tags": "x" * 500},
        {"website": "javascript:alert(1)"},
        {"custom": "not an object"},
        {"custom": {"budget": 10**40}},
        {"custom": {"budget": "1e400"}},
        {"custom": {"day": "0000-01-01"}},
        {"custom": {"day": "10000-01-01"}},
        {"custom": {"day": [2026, 1, 1]}},
        {"custom": {"day": True}},
        {"custom": {"count": 2**63}},
        {"custom": {"count": "1.5"}},
    ],
)
def test_bad_input_is_never_a_server_error(api, org, payload):
    owner = rep(org)
    custom_field("budget", "money")
    custom_field("day", "date")
    custom_field("count", "integer")
    customer = CustomerFactory(owner=owner)
    client = signed_in(api, owner)
    assert client.patch(url("customer", customer.pk), payload).status_code == 400
    assert client.post(url("customer"), {"name": "新客户", **payload}).status_code == 400


@pytest.mark.parametrize(
    "body",
    ["[1, 2]", '"text"', "null", "{", "1"],
)
def test_a_body_that_is_no_object_is_400(api, org, body):
    owner = rep(org)
    response = signed_in(api, owner).generic(
        "POST", url("customer"), body, content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("pk", ["9" * 19, "9" * 40, "abc", "-1", "1.5"])
def test_ids_that_are_no_record_are_404(api, org, pk):
    client = signed_in(api, rep(org))
    assert client.get(f"/api/v1/customers/{pk}/").status_code == 404


# --- The same history as the pages ----------------------------------------------------------


def _last_change(customer) -> Change:
    return Change.objects.filter(record_id=customer.pk).order_by("-pk").first()


def test_an_edit_through_the_api_writes_the_history_the_page_writes(api, client, org):
    owner = rep(org)
    by_page = CustomerFactory(owner=owner, name="甲", email="old@example.com")
    by_api = CustomerFactory(owner=owner, name="乙", email="old@example.com")
    client.force_login(owner)
    page = client.post(
        reverse("customers:edit", args=[by_page.pk]),
        {"name": "甲", "email": "new@example.com", "level": item("customer_level", "a").pk},
    )
    assert page.status_code == 302
    response = signed_in(api, owner).patch(
        url("customer", by_api.pk), {"email": "new@example.com", "level": "a"}
    )
    assert response.status_code == 200
    from_page, from_api = _last_change(by_page), _last_change(by_api)
    assert (from_api.kind, from_api.action, from_api.user_id) == (
        from_page.kind,
        from_page.action,
        from_page.user_id,
    )
    assert from_api.fields == from_page.fields
    assert from_api.changes == from_page.changes


def test_a_lead_created_through_the_api_is_recorded_as_the_service_records_it(api, org):
    owner = rep(org)
    response = signed_in(api, owner).post(
        url("lead"), {"company_name": "远景科技", "phone": "13800138000", "source": "website_form"}
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "open"
    assert data["stage_name"]
    assert data["source"]["code"] == "website_form"
    kinds = list(Change.objects.filter(record_id=data["id"]).values_list("kind", flat=True))
    assert kinds == [EventKind.CREATED]


# --- Lists: filters, search, pagination ---------------------------------------------------------


def test_the_list_takes_the_pages_filters_and_quick_search(api, org):
    owner = rep(org)
    a = CustomerFactory(owner=owner, name="杭州远景科技", level=item("customer_level", "a"))
    CustomerFactory(owner=owner, name="上海明德贸易", level=item("customer_level", "b"))
    client = signed_in(api, owner)
    assert ids(client.get(url("customer"), {"q": "远景"})) == {a.pk}
    assert ids(client.get(url("customer"), {"level": item("customer_level", "a").pk})) == {a.pk}


def test_filters_that_do_not_validate_are_400(api, org):
    client = signed_in(api, rep(org))
    response = client.get(url("customer"), {"created_after": "not-a-date", "stale": "-5"})
    assert response.status_code == 400
    assert {"created", "stale"} <= set(response.json()["errors"])


def test_the_lead_list_shows_open_leads_unless_a_status_is_asked_for(api, org):
    owner = rep(org)
    open_lead = LeadFactory(owner=owner)
    DealFactory  # noqa: B018 - (deals: no default)
    from .factories import stage

    lost = LeadFactory(owner=owner, stage=stage("线索", "无效线索"))
    client = signed_in(api, owner)
    assert ids(client.get(url("lead"))) == {open_lead.pk}
    assert ids(client.get(url("lead"), {"status": "lost"})) == {lost.pk}


def test_the_cursor_walks_every_row_once(api, org):
    owner = rep(org)
    made = {CustomerFactory(owner=owner).pk for _ in range(7)}
    client = signed_in(api, owner)
    seen: list[int] = []
    response = client.get(url("customer"), {"page_size": 3})
    while True:
        page = response.json()
        assert len(page["results"]) <= 3
        seen += [row["id"] for row in page["results"]]
        if not page["next"]:
            break
        response = client.get(page["next"])
    assert sorted(seen) == sorted(made)
    assert seen == sorted(seen, reverse=True)  # newest first (same time: higher id first)


@pytest.mark.parametrize("size", ["0", "-1", "abc", "100000", "9" * 30])
def test_page_sizes_out_of_range_fall_back_and_bad_cursors_are_404(api, org, size):
    client = signed_in(api, rep(org))
    assert client.get(url("customer"), {"page_size": size}).status_code == 200
    assert client.get(url("customer"), {"cursor": "bad"}).status_code == 404


# Only the department tree reaches a sub-department: the sub member's (销售一部-华东)
# records, seen from 销售一部.
TREE = {DataScope.DEPARTMENT: False, DataScope.DEPARTMENT_TREE: True}


@pytest.mark.parametrize("scope", list(TREE))
def test_the_department_tree_reaches_sub_departments(api, org, scope):
    record = owned_by("deal", rep(org, "sub_member"))
    client = signed_in(api, rep(org, "colleague", scope))
    assert (record.pk in ids(client.get(url("deal")))) is TREE[scope]
    assert client.get(url("deal", record.pk)).status_code == (200 if TREE[scope] else 404)


# --- Field permissions on the other types -------------------------------------------------


@pytest.mark.parametrize(
    ("record_type", "field", "value"),
    [
        ("contact", "mobile", "13800138000"),
        ("lead", "phone", "13800138000"),
        ("deal", "amount", "100"),
    ],
)
def test_every_type_applies_its_field_permissions(api, org, record_type, field, value):
    owner = rep(org)
    record = owned_by(record_type, owner)
    client = signed_in(api, owner)
    owner.role.field_permissions = {record_type: {field: FieldAccess.READONLY}}
    owner.role.save()
    assert field in client.get(url(record_type, record.pk)).json()
    refused = client.patch(url(record_type, record.pk), {field: value})
    assert refused.status_code == 400 and field in refused.json()["errors"]
    owner.role.field_permissions = {record_type: {field: FieldAccess.HIDDEN}}
    owner.role.save()
    assert field not in client.get(url(record_type, record.pk)).json()
    assert all(field not in row for row in client.get(url(record_type)).json()["results"])
    assert client.patch(url(record_type, record.pk), {field: value}).status_code == 400


# --- Language and schema ------------------------------------------------------------------


def test_messages_are_in_the_users_language(api, org):
    owner = rep(org)
    client = signed_in(api, owner)
    chinese = client.post(url("customer"), {"name": "甲", "level": "nope"}).json()
    owner.language = "en"
    owner.save(update_fields=["language"])
    english = client.post(url("customer"), {"name": "甲", "level": "nope"}).json()
    assert chinese["errors"]["level"] != english["errors"]["level"]
    assert "is not one of the options" in english["errors"]["level"][0]


def test_the_schema_describes_custom_fields_as_configured(org):
    from drf_spectacular.generators import SchemaGenerator

    custom_field("budget", "money")
    custom_field("region", "text", record_type="lead")
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    customer = components["Customer"]["properties"]["custom"]
    assert set(customer["properties"]) == {"budget"}
    assert customer["properties"]["budget"]["format"] == "decimal"
    assert set(components["LeadWriteRequest"]["properties"]["custom"]["properties"]) == {"region"}
    assert "custom" not in components["Task"]["properties"]
    paths = schema["paths"]
    assert "delete" in paths["/api/v1/customers/{id}/"]
    assert "post" in paths["/api/v1/deals/{id}/move/"]
    stage = components["DealWriteRequest"]["properties"]["stage"]
    assert stage["description"] == "Only when creating."


def test_a_customer_created_through_the_api_is_recorded_as_by_the_page(api, client, org):
    owner = rep(org)
    client.force_login(owner)
    page = client.post(
        reverse("customers:create"),
        {
            "name": "甲公司",
            "level": item("customer_level", "a").pk,
            "phone": "138 0013 8001",
            "owner": owner.pk,
            "confirm_duplicate": "on",
        },
    )
    assert page.status_code == 302
    response = signed_in(api, owner).post(
        url("customer"), {"name": "乙公司", "level": "a", "phone": "138 0013 8002"}
    )
    assert response.status_code == 201
    from_page = _last_change(Customer.objects.get(name="甲公司"))
    from_api = _last_change(Customer.objects.get(name="乙公司"))
    assert (from_api.kind, from_api.action, from_api.user_id, from_api.actor_type) == (
        from_page.kind,
        from_page.action,
        from_page.user_id,
        from_page.actor_type,
    )
    assert set(from_api.fields) == set(from_page.fields)


def test_with_a_token_the_change_is_the_tokens_users_through_the_token(org):
    from integrations.api import services as token_services

    owner = rep(org)
    _token, text = token_services.create_token(owner, name="ERP", expires_in_days=None, by=owner)
    client = APIClient()
    response = client.post(
        url("customer"), {"name": "令牌客户"}, HTTP_AUTHORIZATION=f"Bearer {text}"
    )
    assert response.status_code == 201, response.json()
    event = _last_change(Customer.objects.get(name="令牌客户"))
    assert event.user_id == owner.pk
    assert event.actor_type == ActorKind.API
    assert response.json()["owner"] == owner.pk


def test_a_contact_goes_only_to_a_customer_one_may_change(api, org):
    owner = rep(org)
    pooled = CustomerFactory(owner=None)  # seen by everyone, changed by no one until claimed
    client = signed_in(api, owner)
    assert client.get(url("customer", pooled.pk)).status_code == 200
    response = client.post(url("contact"), {"customer": pooled.pk, "name": "张伟"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"customer"}
    mine = CustomerFactory(owner=owner)
    created = client.post(url("contact"), {"customer": mine.pk, "name": "张伟"})
    assert created.status_code == 201, created.json()


@pytest.mark.parametrize(
    "params",
    [
        {"level": "9" * 30},
        {"level": "abc"},
        {"tag": "9" * 30},
        {"department": "9" * 30},
        {"owner": "9" * 30},
        {"created_after": "0000-01-01"},
        {"created_before": "10000-01-01"},
        {"stale": "1e99"},
        {"follow_up": "nope"},
        {"q": "x" * 5000},
        {"cf_budget_min": "9" * 40},
    ],
)
def test_bad_filters_are_400_or_ignored_never_500(api, org, params):
    custom_field("budget", "money", filterable=True)
    client = signed_in(api, rep(org, scope=DataScope.ALL))
    assert client.get(url("customer"), params).status_code in (200, 400)
    assert client.get(url("deal"), params).status_code in (200, 400)


def test_the_outsider_walk_every_api_record_route_is_404(api, org):
    """Every route the router made with a record id — detail and each action, today's
    and any added later — answers the outsider 404 (405 where the method is not taken,
    as for a missing id), and changes nothing."""
    from .urlwalk import arg_names, build, routes

    owner = rep(org)
    records = {record_type: owned_by(record_type, owner) for record_type in TYPES}
    client = signed_in(api, rep(org, "outsider", DataScope.DEPARTMENT_TREE))
    before = Change.objects.count()
    walked = set()
    for route in routes():
        basename = route.name.removeprefix("api:").split("-")[0]
        if not route.name.startswith("api:") or basename not in records:
            continue
        if arg_names(route) != ["pk"]:
            continue
        path = build(route, {"pk": str(records[basename].pk)})
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(client, method)(path, {"name": "外人改的名字"})
            assert response.status_code in (404, 405), (route.name, method, response.status_code)
            walked.add((basename, method, response.status_code))
    assert Change.objects.count() == before
    assert {(t, "get", 404) for t in TYPES} <= walked
    assert ("deal", "post", 404) in walked  # its actions (move) were walked too
