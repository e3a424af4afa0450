"""What every list and record page paid before its own work (issue 17), now read without
a query: the data-dictionary items from a per-process copy checked against a version
key (crm.dictionary_copy), a rep's people in scope from the request's user, the menu's
URLs reversed once. A change made by another person or process is seen on the next
request."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import clear_script_prefix, reverse, set_script_prefix
from django.utils import timezone

from accounts import access
from accounts.models import DataScope
from crm import dictionary_copy, process_copy
from crm.dictionary_copy import VERSION_KEY, dictionary_items_by_id
from crm.filters import dictionary_items, people_in_scope
from crm.models import DictionaryItem
from crm.navigation import navigation

from .factories import CustomerFactory, UserFactory, crm_permissions, give_crm_roles, item

LIST_URL = reverse("customers:list")


def request_as(user, path="/customers/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


def page_queries(client, url) -> list[str]:
    client.get(url)  # the process's copies loaded
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


# --- Dictionary items: one copy per process --------------------------------------------


def test_the_items_are_loaded_once_per_process_not_per_request(db, django_assert_num_queries):
    first = dictionary_items_by_id()
    assert set(first) == set(DictionaryItem.objects.values_list("pk", flat=True))
    with django_assert_num_queries(0):
        assert dictionary_items_by_id() is first
        assert dictionary_items(request_as(None)) is first


def test_the_copy_is_in_the_order_and_with_the_dictionaries_a_query_gives(
    db, django_assert_num_queries
):
    items = dictionary_items_by_id()
    expected = list(DictionaryItem.objects.order_by("order", "id").values_list("pk", flat=True))
    assert list(items) == expected
    with django_assert_num_queries(0):
        assert {i.dictionary.code for i in items.values()} >= {"customer_level", "activity_kind"}


def test_an_item_saved_is_seen_on_the_next_read(db, django_capture_on_commit_callbacks):
    level = item("customer_level", "a")
    assert dictionary_items_by_id()[level.pk].label != "战略客户"
    level.label = "战略客户"
    with django_capture_on_commit_callbacks(execute=True):
        level.save()
    assert dictionary_items_by_id()[level.pk].label == "战略客户"


def test_an_item_added_or_deleted_is_seen_on_the_next_read(db):
    dictionary = item("customer_level", "a").dictionary
    dictionary_items_by_id()
    added = DictionaryItem.objects.create(dictionary=dictionary, code="z", label="新级别")
    assert dictionary_items_by_id()[added.pk].label == "新级别"
    added.delete()
    assert added.pk not in dictionary_items_by_id()


def test_a_renamed_dictionary_is_seen_on_the_next_read(db):
    level = item("customer_level", "a")
    dictionary_items_by_id()
    level.dictionary.name = "客户等级（新）"
    level.dictionary.save()
    assert dictionary_items_by_id()[level.pk].dictionary.name == "客户等级（新）"


def test_the_version_changes_again_once_the_change_is_committed(
    db, django_capture_on_commit_callbacks
):
    """A request of another process between the save and the commit loads the items as
    they were (it cannot see the uncommitted change) under the new version: the second
    version after the commit makes it load them again."""
    level = item("customer_level", "a")
    level.label = "战略客户"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        level.save()
        during = cache.get(VERSION_KEY)
    assert during is not None and callbacks
    for callback in callbacks:
        callback()
    assert cache.get(VERSION_KEY) not in (None, during)


def test_a_change_by_another_process_is_seen_on_the_next_request(client, org):
    """Another process saved an item: its signal set a new version in the shared cache
    (here set by hand, the row changed without a signal), and this process's next request
    shows the change."""
    give_crm_roles(org, actions=("view",))
    level = item("customer_level", "a")
    CustomerFactory(name="甲级客户", owner=org.owner, level=level)
    client.force_login(org.owner)
    assert level.label in client.get(LIST_URL).content.decode()
    DictionaryItem.objects.filter(pk=level.pk).update(label="钻石客户")
    cache.set(VERSION_KEY, "set-by-another-process", None)
    assert "钻石客户" in client.get(LIST_URL).content.decode()


def test_a_change_that_sent_no_signal_is_seen_within_the_copy_seconds(db, monkeypatch):
    level = item("customer_level", "a")
    dictionary_items_by_id()
    DictionaryItem.objects.filter(pk=level.pk).update(label="钻石客户")  # SQL by hand
    now = process_copy.time.monotonic()
    monkeypatch.setattr(
        process_copy.time, "monotonic", lambda: now + dictionary_copy.COPY_SECONDS + 1
    )
    assert dictionary_items_by_id()[level.pk].label == "钻石客户"


def test_a_lost_version_key_reloads(db):
    """Redis restarted or evicted the key: a new version, and the items read again."""
    level = item("customer_level", "a")
    dictionary_items_by_id()
    DictionaryItem.objects.filter(pk=level.pk).update(label="钻石客户")
    cache.delete(VERSION_KEY)
    assert dictionary_items_by_id()[level.pk].label == "钻石客户"


# --- People in scope: a rep's is the rep ------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE, DataScope.ALL],
)
def test_people_in_scope_are_the_users_in_scope(org, scope):
    user = org.set_scope(org.owner, scope)
    expected = list(access.users_in_scope(user).order_by("name", "username"))
    assert [p.pk for p in people_in_scope(request_as(user))] == [p.pk for p in expected]


def test_a_reps_people_in_scope_are_the_rep_without_a_query(org, django_assert_num_queries):
    rep = org.set_scope(org.owner, DataScope.OWN)
    with django_assert_num_queries(0):
        people = people_in_scope(request_as(rep))
        assert [(p.pk, p.department.name, p.role.name) for p in people] == [
            (rep.pk, rep.department.name, rep.role.name)
        ]


def test_a_managers_people_in_scope_come_from_the_process_copy(org, django_assert_num_queries):
    """A manager's (or the admin's) people are the process's copy filtered by the scope's
    departments: no query once it is loaded."""
    manager = org.set_scope(org.owner, DataScope.DEPARTMENT_TREE)
    expected = [p.pk for p in access.users_in_scope(manager).order_by("name", "username")]
    assert [p.pk for p in people_in_scope(request_as(manager))] == expected
    with django_assert_num_queries(0):
        people = people_in_scope(request_as(manager))
        assert [p.pk for p in people] == expected
        assert all(p.department.name and p.role.name for p in people)


def test_a_person_changed_or_deactivated_is_seen_on_the_next_request(org):
    manager = org.set_scope(org.owner, DataScope.ALL)
    people_in_scope(request_as(manager))
    org.colleague.name = "李娜娜"
    org.colleague.save()
    org.outsider.is_active = False
    org.outsider.save()
    people = {p.pk: p.name for p in people_in_scope(request_as(manager))}
    assert people[org.colleague.pk] == "李娜娜" and org.outsider.pk not in people


def test_a_sign_in_keeps_the_copy(org):
    """Signing in saves only `last_login` (Django's `update_last_login`): the people are
    not reloaded by every process for it."""
    from django.contrib.auth.models import update_last_login

    from crm.people_copy import VERSION_KEY as PEOPLE_VERSION

    manager = org.set_scope(org.owner, DataScope.ALL)
    people_in_scope(request_as(manager))
    version = cache.get(PEOPLE_VERSION)
    update_last_login(None, org.colleague)
    assert cache.get(PEOPLE_VERSION) == version is not None
    org.colleague.save()
    assert cache.get(PEOPLE_VERSION) != version


def test_department_scope_without_a_department_is_the_user_alone(org):
    loner = UserFactory(username="loner", department=None)
    loner = org.set_scope(loner, DataScope.DEPARTMENT)
    assert list(access.users_in_scope(loner)) == [loner]
    assert people_in_scope(request_as(loner)) == [loner]


def test_nobody_is_in_an_inactive_or_anonymous_users_scope(org):
    from django.contrib.auth.models import AnonymousUser

    rep = org.set_scope(org.owner, DataScope.OWN)
    rep.is_active = False
    assert people_in_scope(request_as(rep)) == list(access.users_in_scope(rep)) == []
    assert people_in_scope(request_as(AnonymousUser())) == []


def test_a_reps_list_reads_no_person_and_no_dictionary_item(client, org):
    give_crm_roles(org, actions=("view", "add", "change"))
    CustomerFactory(owner=org.owner, level=item("customer_level", "a"))
    client.force_login(org.owner)
    queries = page_queries(client, LIST_URL)
    # The session's user, once; the owner filter offers the rep themselves.
    assert sum('FROM "accounts_user"' in sql for sql in queries) == 1
    assert not [sql for sql in queries if 'FROM "crm_dictionaryitem"' in sql]


def test_a_managers_list_still_offers_the_team(client, org):
    """(Its bulk transfer's people, for one who may change customers.)"""
    give_crm_roles(org, actions=("view",))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions(("view", "change")))
    CustomerFactory(owner=org.colleague)
    client.force_login(manager)
    response = client.get(LIST_URL)
    offered = {person.pk for person in response.context["owners"]}
    assert offered == {manager.pk, org.owner.pk, org.colleague.pk, org.sub_member.pk}
    body = response.content.decode()
    assert org.sub_member.get_full_name() in body
    assert org.outsider.get_full_name() not in body


def test_a_customer_page_reads_no_dictionary_item(client, org):
    give_crm_roles(org, actions=("view",))
    customer = CustomerFactory(
        owner=org.owner, level=item("customer_level", "a"), created_at=timezone.now()
    )
    customer.activities.create(
        kind=item("activity_kind", "call"),
        content="电话",
        author=org.owner,
        occurred_at=timezone.now() - timedelta(hours=1),
    )
    client.force_login(org.owner)
    queries = page_queries(client, reverse("customers:detail", args=[customer.pk]))
    assert not [sql for sql in queries if 'FROM "crm_dictionaryitem"' in sql]


# --- The menu ---------------------------------------------------------------------------


def test_the_menus_urls_are_reverse(org):
    admin = org.admin
    items = navigation(request_as(admin))["nav_items"]
    assert items and all(entry["url"].startswith("/") for entry in items)
    assert items[0]["url"] == reverse("dashboard")
    assert items[-1]["url"] == reverse("admin:index")


def test_the_menu_follows_the_script_prefix(org):
    """Served under a path (SCRIPT_NAME): the menu's URLs carry it, as reverse() does."""
    set_script_prefix("/crm/")
    try:
        items = navigation(request_as(org.admin, "/crm/"))["nav_items"]
        assert items[0]["url"] == "/crm/" == reverse("dashboard")
        assert items[-1]["url"] == reverse("admin:index")
    finally:
        clear_script_prefix()
    assert navigation(request_as(org.admin))["nav_items"][0]["url"] == "/"
