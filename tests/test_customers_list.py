"""The customer list at /customers/: filters, sorting, paging, saved views, bulk actions
and the built-in views. The outsider (a rep of 销售二部, scope own) sees none of the
owner's customers under any filter or view, and bulk actions on their ids change nothing.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Change, ChangeAction, Customer, PoolEvent, SavedView, Tag

from .factories import (
    CustomerFactory,
    SavedViewFactory,
    TagFactory,
    UserFactory,
    crm_permissions,
    give_crm_roles,
    item,
)

LIST_URL = reverse("customers:list")
ALL_ACTIONS = ("view", "add", "change", "delete")


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=ALL_ACTIONS)
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions(ALL_ACTIONS))
    return org


@pytest.fixture
def book(crm):
    """A few customers of each kind, named after what makes them special."""
    now = timezone.now()
    vip = TagFactory(name="VIP")
    mine_a = CustomerFactory(
        name="甲级客户",
        owner=crm.owner,
        level=item("customer_level", "a"),
        type=item("customer_type", "company"),
        source=item("customer_source", "website"),
        phone="+8613800138000",
        email="a@jia.example",
        last_activity_at=now - timedelta(days=2),
        next_follow_up_at=now - timedelta(hours=1),
        created_at=now - timedelta(days=10),
    )
    mine_a.tags.add(vip)
    mine_stale = CustomerFactory(
        name="久未跟进",
        owner=crm.owner,
        level=item("customer_level", "c"),
        last_activity_at=now - timedelta(days=45),
        created_at=now - timedelta(days=100),
    )
    mine_week = CustomerFactory(
        name="下周跟进",
        owner=crm.owner,
        next_follow_up_at=now + timedelta(days=3),
        last_activity_at=now - timedelta(days=1),
        created_at=now - timedelta(days=1),
    )
    colleagues = CustomerFactory(name="同事的客户", owner=crm.colleague)
    sub = CustomerFactory(name="华东分部客户", owner=crm.sub_member)
    outsiders = CustomerFactory(
        name="二部的客户", owner=crm.outsider, level=item("customer_level", "a")
    )
    outsiders.tags.add(vip)
    pool = CustomerFactory(name="公海客户", owner=None, created_at=now - timedelta(days=5))
    return {
        "vip": vip,
        "mine_a": mine_a,
        "mine_stale": mine_stale,
        "mine_week": mine_week,
        "colleagues": colleagues,
        "sub": sub,
        "outsiders": outsiders,
        "pool": pool,
    }


def login(client, user):
    client.force_login(user)
    return client


def names(response) -> list[str]:
    return [c.name for c in response.context["object_list"]]


def test_a_rep_sees_own_and_pool_customers_only(client, crm, book):
    response = login(client, crm.owner).get(LIST_URL)
    assert response.status_code == 200
    assert set(names(response)) == {"甲级客户", "久未跟进", "下周跟进", "公海客户"}
    assert f'href="{reverse("customers:detail", args=[book["mine_a"].pk])}"' in response.text
    assert f'href="{reverse("customers:create")}"' in response.text


def test_the_manager_sees_the_department_tree(client, crm, book):
    response = login(client, crm.manager).get(LIST_URL)
    assert "同事的客户" in names(response) and "华东分部客户" in names(response)
    assert "二部的客户" not in names(response)


def test_the_list_needs_sign_in_and_the_view_permission(client, crm):
    assert client.get(LIST_URL).status_code == 302
    nobody = crm.set_scope(crm.colleague, DataScope.OWN, permissions=[])
    assert login(client, nobody).get(LIST_URL).status_code == 403


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"level": "a"}, {"甲级客户"}),
        ({"tag": "vip"}, {"甲级客户"}),
        ({"type": "company"}, {"甲级客户"}),
        ({"source": "website"}, {"甲级客户"}),
        ({"q": "甲级"}, {"甲级客户"}),
        ({"q": "138 0013 8000"}, {"甲级客户"}),
        ({"q": "A@JIA.example"}, {"甲级客户"}),
        ({"owner": "me"}, {"甲级客户", "久未跟进", "下周跟进"}),
        ({"owner": "pool"}, {"公海客户"}),
        ({"follow_up": "overdue"}, {"甲级客户"}),
        ({"follow_up": "week"}, {"下周跟进"}),
        ({"follow_up": "none"}, {"久未跟进", "公海客户"}),
        ({"stale": "30"}, {"久未跟进"}),
        ({"created_after": "-7", "created_before": "0"}, {"下周跟进", "公海客户"}),
        ({"last_activity_after": "-3", "last_activity_before": "0"}, {"甲级客户", "下周跟进"}),
    ],
)
def test_filters(client, crm, book, params, expected):
    query = {}
    for key, value in params.items():
        if key in ("level", "type", "source"):
            code = {"level": "customer_level", "type": "customer_type", "source": "customer_source"}
            value = item(code[key], value).pk
        elif key == "tag":
            value = book["vip"].pk
        elif key.endswith(("_after", "_before")):
            value = (timezone.localdate() + timedelta(days=int(value))).isoformat()
        query[key] = value
    response = login(client, crm.owner).get(LIST_URL, query)
    assert set(names(response)) == expected


def test_the_department_filter_covers_sub_departments(client, crm, book):
    response = login(client, crm.manager).get(LIST_URL, {"department": crm.team1.pk})
    assert {"同事的客户", "华东分部客户", "甲级客户"} <= set(names(response))
    assert "公海客户" not in names(response)


def test_sorting(client, crm, book):
    client = login(client, crm.owner)
    by_name = names(client.get(LIST_URL, {"sort": "name", "owner": "me"}))
    assert by_name == sorted(by_name)
    assert names(client.get(LIST_URL, {"sort": "-name", "owner": "me"})) == by_name[::-1]
    by_activity = names(client.get(LIST_URL, {"sort": "-last_activity", "owner": "me"}))
    assert by_activity == ["下周跟进", "甲级客户", "久未跟进"]
    newest = names(client.get(LIST_URL, {"owner": "me"}))
    assert newest == ["下周跟进", "甲级客户", "久未跟进"]  # default: newest first


def test_paging(client, crm):
    CustomerFactory.create_batch(30, owner=crm.owner)
    client = login(client, crm.owner)
    first = client.get(LIST_URL)
    assert len(first.context["object_list"]) == 25 and first.context["is_paginated"]
    second = client.get(LIST_URL, {"page": 2})
    assert len(second.context["object_list"]) == 5
    assert not set(names(first)) & set(names(second))
    assert len(client.get(LIST_URL, {"per_page": 50}).context["object_list"]) == 30
    assert len(client.get(LIST_URL, {"per_page": 7}).context["object_list"]) == 25
    assert client.get(LIST_URL, {"page": 99}).context["page_obj"].number == 2


def test_list_queries_do_not_grow_with_rows(client, crm, django_assert_max_num_queries):
    client = login(client, crm.owner)
    for customer in CustomerFactory.create_batch(40, owner=crm.owner):
        customer.tags.add(Tag.objects.get_or_create(name="VIP")[0])
    with django_assert_max_num_queries(10):
        assert client.get(LIST_URL, {"per_page": 100}).status_code == 200
    with django_assert_max_num_queries(10):
        level = item("customer_level", "a").pk
        response = client.get(LIST_URL, {"level": level, "owner": "me", "sort": "name"})
        assert response.status_code == 200
    # The filter panel, loaded when opened, shows the filter in force.
    panel = client.get(LIST_URL, {"level": level, "owner": "me", "filters_form": "1"})
    assert f'<option value="{level}" selected>' in panel.text


def test_each_row_shows_its_own_tags_by_name(client, crm):
    tagged = CustomerFactory(name="有标签的客户", owner=crm.owner)
    CustomerFactory(name="没有标签的客户", owner=crm.owner)
    for name in ("重点", "VIP", "A类"):
        tagged.tags.add(Tag.objects.get_or_create(name=name)[0])
    Tag.objects.create(name="没用上的标签")
    client = login(client, crm.owner)
    rows = {
        re.search(r'class="fw-medium">([^<]+)</a>', row).group(1): re.findall(
            r'class="badge bg-\w+-lt">([^<]+)</span>', row
        )
        for row in client.get(LIST_URL).context["rows"]
    }
    assert rows["有标签的客户"] == sorted(["重点", "VIP", "A类"])
    assert rows["没有标签的客户"] == []


# --- Built-in and saved views -----------------------------------------------------------


def test_builtin_views(client, crm, book):
    client = login(client, crm.owner)
    views = {view.key: view for view, _active in client.get(LIST_URL).context["builtin_views"]}
    assert set(views) == {"mine", "due", "stale", "pool"}

    def shown(key):
        return set(names(client.get(f"{LIST_URL}?{views[key].query}")))

    assert shown("mine") == {"甲级客户", "久未跟进", "下周跟进"}
    assert shown("due") == {"甲级客户"}
    assert shown("stale") == {"久未跟进"}
    assert shown("pool") == {"公海客户"}
    active = client.get(f"{LIST_URL}?{views['pool'].query}").context["builtin_views"]
    assert [view.key for view, is_active in active if is_active] == ["pool"]


def save_view(client, name, query, shared=False):
    data = {"save_view": "1", "name": name, "query": query}
    if shared:
        data["shared"] = "1"
    return client.post(LIST_URL, data)


def test_save_a_private_view_and_a_shared_one(client, crm, book):
    level_a = item("customer_level", "a").pk
    owner_client = login(client, crm.owner)
    assert save_view(owner_client, "我的A级", f"level={level_a}&page=3").status_code == 302
    save_view(owner_client, "全员A级", f"level={level_a}", shared=True)
    private = SavedView.objects.get(name="我的A级")
    assert private.owner == crm.owner and not private.shared
    assert private.query == f"level={level_a}"  # paging is not part of a view
    shown = [view.name for view, _active in owner_client.get(LIST_URL).context["saved_views"]]
    assert shown == ["全员A级", "我的A级"]

    colleague_views = login(client, crm.colleague).get(LIST_URL).context["saved_views"]
    assert [view.name for view, _active in colleague_views] == ["全员A级"]


def test_a_view_needs_a_name(client, crm):
    save_view(login(client, crm.owner), "  ", "owner=me")
    assert not SavedView.objects.exists()


def test_delete_own_view_only(client, crm):
    mine = SavedViewFactory(name="我的", owner=crm.owner)
    theirs = SavedViewFactory(name="共享的", owner=crm.colleague, shared=True)
    client = login(client, crm.owner)
    assert client.post(LIST_URL, {"delete_view": theirs.pk}).status_code == 404
    assert SavedView.objects.filter(pk=theirs.pk).exists()
    assert client.post(LIST_URL, {"delete_view": mine.pk}).status_code == 302
    assert not SavedView.objects.filter(pk=mine.pk).exists()


# --- Bulk actions -----------------------------------------------------------------------


def bulk(client, action, customers, **extra):
    data = {"action": action, "selected": [c.pk for c in customers], **extra}
    return client.post(LIST_URL, data)


def test_bulk_transfer(client, crm, book):
    client = login(client, crm.manager)
    response = bulk(
        client, "transfer", [book["mine_a"], book["mine_stale"]], to_owner=crm.colleague.pk
    )
    assert response.status_code == 302
    assert set(Customer.objects.filter(owner=crm.colleague).values_list("name", flat=True)) == {
        "同事的客户",
        "甲级客户",
        "久未跟进",
    }
    assert Change.objects.filter(action=ChangeAction.TRANSFERRED).count() == 2


def test_bulk_transfer_needs_an_owner_in_scope(client, crm, book):
    client = login(client, crm.manager)
    bulk(client, "transfer", [book["mine_a"]], to_owner=crm.outsider.pk)
    bulk(client, "transfer", [book["mine_a"]])
    assert Customer.objects.get(pk=book["mine_a"].pk).owner == crm.owner


def test_bulk_tag_creates_the_tag_once(client, crm, book):
    client = login(client, crm.owner)
    bulk(client, "tag", [book["mine_a"], book["mine_week"]], tag="年度大单")
    tag = Tag.objects.get(name="年度大单")
    assert set(tag.customers.values_list("name", flat=True)) == {"甲级客户", "下周跟进"}
    assert Change.objects.filter(action=ChangeAction.TAGGED).count() == 2


def test_bulk_release_records_pool_events(client, crm, book):
    client = login(client, crm.owner)
    bulk(client, "release", [book["mine_a"], book["mine_stale"]], reason="客户流失")
    assert Customer.objects.filter(owner__isnull=True).count() == 3
    events = PoolEvent.objects.filter(action=PoolEvent.Action.RELEASE)
    assert events.count() == 2 and {e.reason for e in events} == {"客户流失"}


def test_bulk_claim_stops_at_the_role_limit(client, crm, book):
    crm.owner.role.max_customers = 4
    crm.owner.role.save()
    extra_pool = CustomerFactory(name="公海二号", owner=None)
    response = bulk(login(client, crm.owner), "claim", [book["pool"], extra_pool])
    assert response.status_code == 302
    assert Customer.objects.filter(owner=crm.owner).count() == 4  # 3 + 1, then the limit
    assert PoolEvent.objects.filter(action=PoolEvent.Action.CLAIM).count() == 1


def test_bulk_needs_a_selection_and_an_action(client, crm, book):
    client = login(client, crm.owner)
    bulk(client, "release", [])
    client.post(LIST_URL, {"action": "nope", "selected": [book["mine_a"].pk]})
    assert Customer.objects.get(pk=book["mine_a"].pk).owner == crm.owner


# --- The outsider -----------------------------------------------------------------------


def test_the_outsider_sees_none_of_the_owners_customers_under_any_filter(client, crm, book):
    client = login(client, crm.outsider)
    owners = {"甲级客户", "久未跟进", "下周跟进"}
    queries = [
        {},
        {"owner": crm.owner.pk},
        {"owner": "me"},
        {"department": crm.team1.pk},
        {"level": item("customer_level", "a").pk},
        {"tag": book["vip"].pk},
        {"q": "甲级"},
        {"q": "13800138000"},
        {"follow_up": "overdue"},
        {"stale": "30"},
        {"sort": "name", "per_page": 100},
    ]
    for query in queries:
        shown = set(names(client.get(LIST_URL, query)))
        assert not shown & owners, query
    assert set(names(client.get(LIST_URL))) == {"二部的客户", "公海客户"}


def test_the_outsider_sees_nothing_of_the_owner_through_saved_views(client, crm, book):
    SavedViewFactory(
        name="王芳的客户",
        owner=crm.owner,
        shared=True,
        query=f"owner={crm.owner.pk}",
    )
    client = login(client, crm.outsider)
    views = (
        client.get(LIST_URL).context["saved_views"] + client.get(LIST_URL).context["builtin_views"]
    )
    for view, _active in views:
        shown = set(names(client.get(f"{LIST_URL}?{view.query}")))
        assert not shown & {"甲级客户", "久未跟进", "下周跟进"}, view.name


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("transfer", {"to_owner": "outsider"}),
        ("tag", {"tag": "被改了"}),
        ("release", {"reason": "x"}),
        ("claim", {}),
    ],
)
def test_bulk_actions_on_ids_the_outsider_cannot_see_change_nothing(
    client, crm, book, action, extra
):
    if extra.get("to_owner") == "outsider":
        extra = {"to_owner": crm.outsider.pk}
    targets = [book["mine_a"], book["colleagues"], book["sub"]]
    before = {c.pk: (c.owner_id, list(c.tags.all())) for c in targets}
    response = bulk(login(client, crm.outsider), action, targets, **extra)
    assert response.status_code == 302
    for customer in Customer.objects.filter(pk__in=before):
        assert (customer.owner_id, list(customer.tags.all())) == before[customer.pk]
    assert not Change.objects.exists()
    assert not PoolEvent.objects.exists()
