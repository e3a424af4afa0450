"""Bad parameters get a clear 4xx, an ignored value or a form error, never a 500; a hidden
field cannot be used to sort (its order would reveal it); nothing typed is cut short.

Each case here failed (a 500, or a leak of the order) before crm.params, the NUL guard and
the sort rules; tests/test_fuzz.py walks every URL with these classes of values.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Customer, PoolEvent, SavedView, Tag
from crm.params import int_param, page_param, parse_id, parse_int
from pipelines.models import Deal, Pipeline

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    CustomFieldFactory,
    DealFactory,
    TagFactory,
    UserFactory,
    crm_permissions,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
NOT_ASCII_DIGITS = ["²", "١٢", "１２"]
HUGE = ["9223372036854775808", "99999999999999999999999"]


@pytest.fixture
def team(org):
    perms = crm_permissions(("view", "add", "change", "delete"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    manager = UserFactory(username="manager", name="张伟", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, perms)
    return org


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- The parsing helpers ------------------------------------------------------------------


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE, "", " ", "1.5", "1e3", None, "0"])
def test_parse_id_takes_only_ascii_positive_bigints(value):
    assert parse_id(value) is None


def test_parse_int_and_int_param_bound_what_they_read():
    assert parse_id(" 42 ") == 42
    assert parse_int("-3", minimum=-5) == -3
    assert parse_int("9223372036854775807") == 2**63 - 1
    assert page_param({"page": "99999999999999999999999"}) == 1_000_000
    assert page_param({"page": "²"}) == 1
    assert page_param({"page": "-4"}) == 1
    assert int_param({"offset": "12"}, "offset", 0, maximum=10) == 10


# --- Ids and numbers in URLs ------------------------------------------------------------------


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE])
@pytest.mark.parametrize(
    "url",
    ["contacts:create", "tasks:create", "deals:create", "deals:contact_options"],
)
def test_a_customer_id_that_is_not_one_is_ignored(client, team, url, value):
    client.force_login(team.owner)
    response = client.get(reverse(url), {"customer": value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE, "-1"])
@pytest.mark.parametrize("view", ["timeline", "history"])
def test_a_page_number_that_is_not_one_shows_a_page(client, team, view, value):
    customer = CustomerFactory(owner=team.owner)
    ActivityFactory(customer=customer)
    client.force_login(team.owner)
    response = client.get(reverse(f"customers:{view}", args=[customer.pk]), {"page": value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE])
@pytest.mark.parametrize("name", ["page", "per_page"])
def test_list_paging_that_is_not_a_number_shows_the_list(client, team, name, value):
    CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    assert client.get(reverse("customers:list"), {name: value}).status_code == 200


@pytest.mark.parametrize("value", [*HUGE, "1e400"])
def test_days_without_follow_up_past_a_century_is_a_form_error(client, team, value):
    CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    response = client.get(reverse("customers:list"), {"stale": value})
    assert response.status_code == 200
    assert response.context["filterset"].errors


def test_a_board_column_offset_past_64_bits_shows_the_column(client, team):
    deal = make_deal(team.owner, amount="1000")
    client.force_login(team.owner)
    url = reverse("board:column", args=[deal.pipeline_id, deal.stage_id])
    for value in [*HUGE, "²", "-5"]:
        assert client.get(url, {"offset": value}).status_code == 200


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE, "abc"])
def test_a_move_to_a_stage_that_is_not_an_id_says_choose_a_stage(client, team, value):
    deal = make_deal(team.owner, amount="1000")
    client.force_login(team.owner)
    response = client.post(reverse("deals:move", args=[deal.pk]), {"stage": value})
    assert response.status_code == 302
    assert messages_of(response)


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE, "0001-01-01T00:00"])
@pytest.mark.parametrize(
    ("url", "action"), [("customers:list", "transfer"), ("deals:list", "transfer")]
)
def test_a_bulk_transfer_to_someone_who_is_not_an_id_says_choose(client, team, url, action, value):
    customer = CustomerFactory(owner=team.manager)
    client.force_login(team.manager)
    selected = customer.pk if url == "customers:list" else make_deal(team.manager).pk
    response = client.post(
        reverse(url), {"action": action, "to_owner": value, "selected": [selected, "²", HUGE[1]]}
    )
    assert response.status_code == 302
    assert messages_of(response)


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE])
def test_a_transfer_or_merge_with_an_id_that_is_not_one_changes_nothing(client, team, value):
    customer = CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    assert (
        client.post(
            reverse("customers:transfer", args=[customer.pk]), {"to_owner": value}
        ).status_code
        == 302
    )
    assert (
        client.get(reverse("customers:merge", args=[customer.pk]), {"other": value}).status_code
        == 200
    )
    assert (
        client.post(reverse("customers:merge", args=[customer.pk]), {"other": value}).status_code
        == 302
    )
    customer.refresh_from_db()
    assert customer.owner == team.owner


# --- NUL bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "search", {"q": "上海\x00"}),
        ("get", "customers:duplicates", {"name": "a\x00b"}),
        ("get", "customers:list", {"q": "\x00"}),
        ("post", "customers:list", {"save_view": "1", "name": "我的\x00视图"}),
        ("post", "customers:create", {"name": "华东\x00机械"}),
    ],
)
def test_a_nul_byte_anywhere_is_a_400_that_says_so_and_changes_nothing(
    client, team, method, url, data
):
    client.force_login(team.owner)
    response = getattr(client, method)(reverse(url), data)
    assert response.status_code == 400
    assert 'data-testid="bad-request"' in response.text
    assert "无法保存的字符" in response.text or "cannot be stored" in response.text
    assert not SavedView.objects.exists() and not Customer.objects.exists()


def test_a_release_reason_with_a_nul_byte_is_refused(client, team):
    customer = CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    response = client.post(reverse("customers:release", args=[customer.pk]), {"reason": "\x00"})
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.owner == team.owner


# --- Text that is too long is refused, never cut short -------------------------------------------


def test_a_release_reason_too_long_is_refused_and_nothing_changes(client, team):
    customer = CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    response = client.post(reverse("customers:release", args=[customer.pk]), {"reason": "长" * 301})
    assert response.status_code == 302
    assert any("300" in m for m in messages_of(response))
    customer.refresh_from_db()
    assert customer.owner == team.owner and not PoolEvent.objects.exists()


def test_a_bulk_tag_too_long_is_refused_not_cut(client, team):
    customer = CustomerFactory(owner=team.owner)
    client.force_login(team.owner)
    response = client.post(
        reverse("customers:list"), {"action": "tag", "tag": "标" * 51, "selected": [customer.pk]}
    )
    assert response.status_code == 302
    assert any("50" in m for m in messages_of(response))
    assert not Tag.objects.exists()


def test_a_saved_view_name_or_query_too_long_is_refused_not_cut(client, team):
    client.force_login(team.owner)
    url = reverse("customers:list")
    response = client.post(url, {"save_view": "1", "name": "视" * 101, "query": "level=1"})
    assert any("100" in m for m in messages_of(response))
    long_query = "&".join(f"q={'上海' * 20}{i}" for i in range(40))
    response = client.post(url, {"save_view": "1", "name": "上海", "query": long_query})
    assert response.status_code == 302
    assert messages_of(response)
    assert not SavedView.objects.exists()
    response = client.post(url, {"save_view": "1", "name": "上海", "query": "q=上海"})
    assert SavedView.objects.get().name == "上海"


def test_the_way_back_from_a_bulk_action_is_the_list_not_a_header(client, team):
    client.force_login(team.owner)
    response = client.post(
        reverse("customers:list"), {"action": "nothing", "query": "q=1\r\nSet-Cookie: x=1"}
    )
    assert response.status_code == 302
    assert "\n" not in response["Location"] and response["Location"].startswith("/customers/?")


# --- Sign-in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_username_too_long_is_a_form_error_not_a_500(client, db, url):
    response = client.post(url, {"username": "x" * 5000, "password": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors


# --- Sorting by a hidden field ------------------------------------------------------------------


def make_deal(owner, *, amount="1000", title=None, days_ago=0) -> Deal:
    """A deal in the default pipeline's (零售) first stage, made `days_ago`."""
    return DealFactory(
        owner=owner,
        amount=Decimal(amount),
        created_at=timezone.now() - timedelta(days=days_ago),
        **({"title": title} if title else {}),
    )


def hide_amount(user):
    role = user.role
    role.field_permissions = {"deal": {"amount": "hidden"}}
    role.save()
    user.refresh_from_db()
    return user


def test_a_role_that_cannot_see_the_amount_cannot_sort_the_deal_list_by_it(client, team):
    big = make_deal(team.owner, amount="900000", title="大单", days_ago=2)
    small = make_deal(team.owner, amount="10", title="小单", days_ago=1)
    client.force_login(team.owner)
    url = reverse("deals:list")
    titles = lambda r: [d.title for d in r.context["object_list"]]  # noqa: E731
    assert titles(client.get(url, {"sort": "-amount"})) == ["大单", "小单"]
    hide_amount(team.owner)
    newest_first = [small.title, big.title]
    assert titles(client.get(url, {"sort": "-amount"})) == newest_first
    assert titles(client.get(url, {"sort": "amount"})) == newest_first
    assert "amount" not in client.get(url).context["sort_fields"]


def test_a_role_that_cannot_see_the_amount_sees_board_cards_newest_first(client, team):
    big = make_deal(team.owner, amount="900000", title="大单", days_ago=2)
    small = make_deal(team.owner, amount="10", title="小单", days_ago=1)
    client.force_login(team.owner)
    url = reverse("board:board", args=[big.pipeline_id])

    def cards(response):
        html = response.text
        return sorted((html.index(f"card-deal-{d.pk}"), d.title) for d in (big, small))

    assert [t for _i, t in cards(client.get(url))] == ["大单", "小单"]
    hide_amount(team.owner)
    assert [t for _i, t in cards(client.get(url))] == ["小单", "大单"]
    column = reverse("board:column", args=[big.pipeline_id, big.stage_id])
    response = client.get(column, {"offset": 0})
    assert [t for _i, t in cards(response)] == ["小单", "大单"]


def test_a_hidden_lead_company_cannot_sort_the_lead_list(client, team):
    role = team.owner.role
    role.field_permissions = {"lead": {"company_name": "hidden"}}
    role.save()
    client.force_login(team.owner)
    response = client.get(reverse("leads:list"), {"sort": "name"})
    assert response.context["sort"] == "-created"


def test_contacts_keep_sorting_by_customer_for_a_role_that_sees_it(client, team):
    ContactFactory(customer=CustomerFactory(owner=team.owner))
    client.force_login(team.owner)
    assert client.get(reverse("contacts:list"), {"sort": "customer"}).context["sort"] == "customer"


# --- Django admin --------------------------------------------------------------------------------


def test_an_empty_to_field_in_the_admin_is_a_400(admin_client):
    tag = TagFactory(name="华东")
    for path in ("change", "delete"):
        url = reverse(f"admin:crm_tag_{path}", args=[tag.pk])
        assert admin_client.get(url, {"_to_field": ""}).status_code == 400


@pytest.mark.parametrize("value", [*NOT_ASCII_DIGITS, *HUGE, "abc"])
def test_a_user_form_with_a_department_that_is_not_an_id_shows_the_error(admin_client, value):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {"username": "new", "password1": "x", "password2": "x", "department": value},
    )
    assert response.status_code == 200
    assert "department" in response.context["adminform"].form.errors


def test_a_custom_field_without_a_type_is_a_form_error(admin_client):
    from .admin_forms import admin_page_data

    data = admin_page_data(admin_client.get(reverse("admin:crm_customfield_add")))
    data.update(record_type="customer", key="grade", label="等级", field_type="", default="A")
    response = admin_client.post(reverse("admin:crm_customfield_add"), data)
    assert response.status_code == 200
    assert "field_type" in response.context["adminform"].form.errors


def test_a_field_made_filterable_right_after_records_were_written_gets_its_index(admin_client):
    """Customers written in the same transaction leave deferred foreign-key checks that
    PostgreSQL would not CREATE INDEX over (a 500): the index sync runs them first."""
    from .admin_forms import admin_page_data

    cf = CustomFieldFactory(key="staff", label="员工人数", field_type="integer")
    CustomerFactory(custom={"staff": 12})
    url = reverse("admin:crm_customfield_change", args=[cf.pk])
    data = admin_page_data(admin_client.get(url))
    data["filterable"] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 302
    cf.refresh_from_db()
    assert cf.filterable


@pytest.mark.parametrize("value", HUGE)
def test_an_id_past_64_bits_in_a_form_is_a_form_error_on_every_database(client, team, value):
    """PostgreSQL compares such a literal as a numeric; SQLite could not bind it at all."""
    client.force_login(team.owner)
    response = client.post(reverse("customers:create"), {"name": "华东机械", "tags": value})
    assert response.status_code == 200
    assert "tags" in response.context["form"].errors
    assert not Customer.objects.exists()


def test_a_pipeline_posted_with_two_to_the_63_stages_is_refused_quickly(admin_client):
    """A TOTAL_FORMS of 2**63 built and rendered 2,000 stage forms (20 s); the stage
    inline takes 50 at the most and says so."""
    from .admin_forms import admin_page_data

    pipeline = Pipeline.objects.get(kind="deal", name="零售")
    url = reverse("admin:pipelines_pipeline_change", args=[pipeline.pk])
    data = admin_page_data(admin_client.get(url))
    data["stages-TOTAL_FORMS"] = "9223372036854775808"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.total_form_count() == 50
    assert formset.non_form_errors()
