"""The list machinery made for 100k rows (crm/views/base.py, crm/filters.py,
crm/widgets.py): capped counts, deep pages, dictionary columns from memory, fast
selects, the department filter's scope, and the quick search matching like /search/."""

import re
from datetime import UTC, date, datetime

import pytest
from django import forms
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.filters import SearchFilter
from crm.models import Customer, DictionaryItem
from crm.templatetags.crm_ui import day
from crm.views import base
from crm.views.base import RecordListView, RecordPaginator
from crm.widgets import FastSelect, FastSelectMultiple, speed_up_selects

from .factories import ContactFactory, CustomerFactory, TagFactory, crm_permissions

LIST_URL = reverse("customers:list")


@pytest.fixture
def crm(org):
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, crm_permissions()))
    return org


def listed(response) -> list[str]:
    return [c.name for c in response.context["object_list"]]


def list_count(response) -> str:
    html = response.content.decode()
    return re.search(r'data-testid="list-count">([^<]*)<', html).group(1)


# --- Capped counts and deep pages -----------------------------------------------------


@pytest.fixture
def sixty(crm, monkeypatch):
    """60 customers of the owner, newest first named 客户00..客户59; counts stop at 30."""
    monkeypatch.setattr(RecordPaginator, "COUNT_LIMIT", 30)
    now = timezone.now()
    for n in range(60):
        CustomerFactory(
            name=f"客户{n:02d}", owner=crm.owner, created_at=now - timezone.timedelta(minutes=n)
        )
    return crm


def test_a_list_longer_than_the_limit_says_more(client, sixty):
    client.force_login(sixty.owner)
    response = client.get(LIST_URL)
    assert listed(response) == [f"客户{n:02d}" for n in range(25)]
    assert "30+" in list_count(response)
    page = response.context["page_obj"]
    assert page.has_next() and not page.has_previous()


def test_pages_past_the_limit_are_read_not_counted(client, sixty):
    client.force_login(sixty.owner)
    second = client.get(LIST_URL, {"page": 2})
    assert listed(second) == [f"客户{n:02d}" for n in range(25, 50)]
    assert second.context["page_obj"].has_next()
    assert "26–50" in list_count(second) and "50+" in list_count(second)
    last = client.get(LIST_URL, {"page": 3})
    assert listed(last) == [f"客户{n:02d}" for n in range(50, 60)]
    assert not last.context["page_obj"].has_next()


def test_a_page_past_the_end_shows_the_last_page(client, sixty):
    client.force_login(sixty.owner)
    response = client.get(LIST_URL, {"page": 99})
    assert listed(response) == [f"客户{n:02d}" for n in range(50, 60)]
    assert response.context["page_obj"].number == 3


def test_below_the_limit_the_count_is_exact_in_any_sort(client, crm):
    for n in range(7):
        CustomerFactory(name=f"客户{n}", owner=crm.owner)
    client.force_login(crm.owner)
    for sort in ("", "name", "-last_activity"):
        response = client.get(LIST_URL, {"sort": sort} if sort else {})
        assert (
            "of 7" in list_count(response)
            or "共 7" in list_count(response)
            or (list_count(response).endswith("7"))
        ), list_count(response)
        assert len(listed(response)) == 7


def test_the_page_query_count_is_the_same_at_any_depth_and_size(client, sixty):
    client.force_login(sixty.owner)

    def queries(params):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST_URL, params).status_code == 200
        return len(captured)

    queries({})  # warms the caches (department tree, custom fields) as any page load does
    first = queries({})
    assert queries({"page": 3}) == first
    assert queries({"per_page": 100}) <= first


def test_a_capped_page_reads_its_rows_by_id_filtering_once(client, sixty):
    """Past the count's cap, the page's ids come from the filtered list (scope, search,
    filters, in order) and its rows are read by those ids alone: the filters are not
    applied again around the page, and a filter through a relation repeats no row."""
    tag = TagFactory(name="重点")
    for customer in Customer.objects.filter(owner=sixty.owner):
        customer.tags.add(tag)
    client.force_login(sixty.owner)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST_URL, {"q": "客户", "tag": tag.pk, "page": 2})
    assert listed(response) == [f"客户{n:02d}" for n in range(25, 50)]
    rows_sql = next(
        q["sql"]
        for q in captured
        if 'SELECT "crm_customer"."id", "crm_customer"."name"' in q["sql"]
    )
    # The scope (the owner's or the pool's) and the tag filter, once each: in the id
    # subquery; the rows around it are picked by id alone.
    assert rows_sql.count('"owner_id" IS NULL') == 1, rows_sql
    assert rows_sql.count("crm_customer_tags") == 1, rows_sql
    assert rows_sql.split(" WHERE ", 1)[1].startswith('"crm_customer"."id" IN (SELECT'), rows_sql


# --- Dictionary columns from memory ---------------------------------------------------


class LevelList(RecordListView):
    model = Customer
    sort_fields = {"created": "created_at"}
    select_related = ("owner",)
    dictionary_fields = ("level", "type")


def test_dictionary_columns_come_from_one_load_per_request(crm):
    level = DictionaryItem.objects.of("customer_level").get(code="a")
    for _ in range(5):
        CustomerFactory(owner=crm.owner, level=level)
    CustomerFactory(owner=crm.owner, level=None)
    request = RequestFactory().get(LIST_URL)
    request.user = crm.owner
    view = LevelList()
    view.setup(request)
    with CaptureQueriesContext(connection) as captured:
        _paginator, _page, rows, _more = view.paginate_queryset(view.get_queryset(), 25)
        labels = [str(row.level) if row.level else None for row in rows]
    assert labels.count(str(level)) == 5 and labels.count(None) == 1
    dictionary_queries = [q for q in captured if "crm_dictionaryitem" in q["sql"]]
    assert len(dictionary_queries) == 1
    assert all('JOIN "crm_dictionaryitem"' not in q["sql"] for q in captured)


# --- Selects rendered in Python -------------------------------------------------------

CHOICES = [("", "---"), ("1", "A & <b>"), ("组", [("2", "x"), ("3", 'y"z')]), (4, "四")]


def attributes(html: str) -> list:
    """Tags with their attributes as sets: the order of attributes does not matter."""
    return [
        (tag, frozenset(re.findall(r'(\w[\w-]*)(?:="([^"]*)")?', attrs)))
        for tag, attrs in re.findall(r"<(/?\w+)([^>]*)>", html)
    ] + [text for text in re.findall(r">([^<]+)<", html) if text.strip()]


@pytest.mark.parametrize(
    ("django_widget", "fast_widget", "value"),
    [
        (forms.Select, FastSelect, "2"),
        (forms.Select, FastSelect, None),
        (forms.Select, FastSelect, 4),
        (forms.SelectMultiple, FastSelectMultiple, ["1", "4"]),
        (forms.SelectMultiple, FastSelectMultiple, []),
    ],
)
def test_fast_selects_render_what_django_renders(django_widget, fast_widget, value):
    attrs = {"class": "form-select", "id": "id_x", "required": True}
    expected = django_widget(attrs=attrs, choices=CHOICES).render("x", value)
    got = fast_widget(attrs=attrs, choices=CHOICES).render("x", value)
    assert attributes(got) == attributes(expected)
    assert "&lt;b&gt;" in got and "A &amp; " in got


def test_speed_up_selects_keeps_other_widgets():
    class Form(forms.Form):
        pick = forms.ChoiceField(choices=[("a", "A")])
        many = forms.MultipleChoiceField(choices=[("a", "A")])
        radio = forms.ChoiceField(choices=[("a", "A")], widget=forms.RadioSelect)
        text = forms.CharField()

    form = speed_up_selects(Form())
    kinds = {name: type(field.widget) for name, field in form.fields.items()}
    assert kinds == {
        "pick": FastSelect,
        "many": FastSelectMultiple,
        "radio": forms.RadioSelect,
        "text": forms.TextInput,
    }


# --- The department filter follows the data scope -------------------------------------


def test_a_rep_with_scope_own_gets_no_department_filter(client, crm):
    client.force_login(crm.owner)
    form = client.get(LIST_URL).context["filterset"].form
    assert "department" not in form.fields


def test_a_manager_picks_among_the_departments_of_the_scope(client, crm):
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    client.force_login(manager)
    form = client.get(LIST_URL).context["filterset"].form
    labels = [label for value, label in form.fields["department"].widget.choices if value]
    assert labels == ["销售部 / 销售一部", "销售部 / 销售一部 / 销售一部-华东"]
    # A department outside the scope is refused, not applied.
    response = client.get(LIST_URL, {"department": crm.team2.pk})
    assert "department" in response.context["filterset"].form.errors


def test_the_admin_picks_among_all_departments(client, crm):
    client.force_login(crm.admin)
    form = client.get(LIST_URL).context["filterset"].form
    labels = [label for value, label in form.fields["department"].widget.choices if value]
    assert "销售部 / 销售二部" in labels and len(labels) == 4


# --- The list's quick search matches like /search/ ------------------------------------


@pytest.mark.parametrize(
    "query", ["+86 138 0013 8000", "138-0013-8000", "0086 13800138000", "8000", "恒信", "HENGXIN"]
)
def test_the_list_quick_search_matches_like_the_search_page(client, crm, query):
    CustomerFactory(
        name="上海恒信机械设备有限公司",
        owner=crm.owner,
        phone="+8613800138000",
        email="sales@hengxin.example",
    )
    CustomerFactory(name="别的公司", owner=crm.owner, phone="+8613911112222")
    client.force_login(crm.owner)
    assert listed(client.get(LIST_URL, {"q": query})) == ["上海恒信机械设备有限公司"]


def test_the_outsider_finds_nothing_with_the_list_quick_search(client, crm):
    CustomerFactory(name="上海恒信机械设备有限公司", owner=crm.owner, phone="+8613800138000")
    client.force_login(crm.outsider)
    for query in ("恒信", "13800138000", "8000"):
        assert listed(client.get(LIST_URL, {"q": query})) == []


@pytest.mark.parametrize("common", [1_000, 0], ids=["rare word", "common word"])
def test_the_contact_quick_search_finds_by_each_field_and_its_customer_s_name_once(
    client, crm, monkeypatch, common
):
    """A contact matches by its name, email, WeChat ID or phone, or by its customer's
    name (matched in the customers' own indexes, crm.filters.SearchFilter); a contact
    that matches several ways is listed once, and the scope still holds. The same
    whether the customers' side is a union of ids or, when more customers match than
    SearchFilter.COMMON (a common word), a set in one OR."""
    monkeypatch.setattr(SearchFilter, "COMMON", common)
    mine = CustomerFactory(name="华东恒信贸易", owner=crm.owner)
    pooled = CustomerFactory(name="公海恒信商行", owner=None)
    theirs = CustomerFactory(name="外部恒信集团", owner=crm.outsider)
    ContactFactory(customer=mine, name="恒信张三", email="zs@hengxin.example")
    ContactFactory(customer=mine, name="李四", wechat="hengxin_li", mobile="+8613800138000")
    ContactFactory(customer=pooled, name="王五")
    ContactFactory(customer=theirs, name="恒信赵六", wechat="hengxin_zhao")
    ContactFactory(customer=CustomerFactory(name="别的公司", owner=crm.owner), name="钱七")
    client.force_login(crm.owner)
    contacts = reverse("contacts:list")

    def names(query):
        return sorted(c.name for c in client.get(contacts, {"q": query}).context["object_list"])

    assert names("恒信") == ["恒信张三", "李四", "王五"]  # two match twice: shown once
    assert names("HENGXIN_LI") == ["李四"]
    assert names("zs@heng") == ["恒信张三"]
    assert names("138 0013 8000") == ["李四"]
    assert names("公海") == ["王五"]
    assert names("外部") == [] and names("赵六") == []


# --- Small helpers ---------------------------------------------------------------------


def test_day_prints_the_local_date():
    moment = datetime(2026, 1, 1, 20, 30, tzinfo=UTC)
    assert day(moment) == "2026-01-02"  # Asia/Shanghai is 8 hours ahead
    assert day(None) == ""
    assert day(date(2026, 1, 1)) == "2026-01-01"


def test_count_limit_is_a_round_number_people_read():
    assert base.RecordPaginator.COUNT_LIMIT == 2000


# --- The filter panel loads when it opens ---------------------------------------------


def test_without_filters_the_panel_loads_its_form_when_opened(client, crm):
    client.force_login(crm.owner)
    page = client.get(LIST_URL, {"sort": "name"}).content.decode()
    assert 'data-testid="filter-form"' not in page
    assert "filters_form=1" in page and 'hx-trigger="show.bs.offcanvas from:#filters once"' in page
    panel = client.get(LIST_URL, {"sort": "name", "filters_form": "1"})
    html = panel.content.decode()
    assert 'data-testid="filter-form"' in html and "<html" not in html
    assert '<input type="hidden" name="sort" value="name">' in html


def test_with_filters_the_form_still_loads_when_opened(client, crm):
    client.force_login(crm.owner)
    page = client.get(LIST_URL, {"follow_up": "overdue"}).content.decode()
    assert 'data-testid="filter-form"' not in page and "filters_form=1" in page


def test_a_filter_with_bad_input_comes_with_the_page_and_says_why(client, crm):
    client.force_login(crm.owner)
    page = client.get(LIST_URL, {"follow_up": "someday"}).content.decode()
    assert 'data-testid="filter-form"' in page and "filters_form=1" not in page
    assert "invalid-feedback" in page


def test_the_panel_offers_the_outsider_none_of_the_other_team(client, crm):
    client.force_login(crm.outsider)
    html = client.get(LIST_URL, {"filters_form": "1"}).content.decode()
    for name in ("王芳", "李娜", "赵强"):
        assert name not in html


def test_the_panel_parameter_is_not_a_filter_of_saved_views(client, crm):
    client.force_login(crm.owner)
    response = client.get(LIST_URL, {"filters_form": "1", "owner": "me"})
    assert response.context["query"] == "owner=me"
