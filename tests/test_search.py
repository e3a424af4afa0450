"""Search (/search/?q=): customers and contacts the user may see, by name, phone, email.

The org's reps have scope "own": `owner` (销售一部) owns 上海恒信机械设备有限公司 with its
contact 张伟; the outsider (销售二部) must find none of it, by any name, phone or email,
while everyone finds the public-pool customer.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import DataScope
from crm.models import Customer
from crm.services import search as search_service
from crm.services.search import phone_terms, search

from .factories import ContactFactory, CustomerFactory, crm_permissions

URL = reverse("search")
PHONE = "+8613800138000"
PHONE_FORMATS = [
    "138 0013 8000",
    "+86 13800138000",
    "13800138000",
    "+86-138-0013-8000",
    "0086 138 0013 8000",
    "(+86) 138.0013.8000",
    "１３８００１３８０００",  # full-width digits from a Chinese IME
]


@pytest.fixture
def crm(org):
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, crm_permissions()))
    return org


@pytest.fixture
def customer(crm):
    return CustomerFactory(
        name="上海恒信机械设备有限公司",
        owner=crm.owner,
        phone="+862158881234",
        email="Sales@HengXin-jx.com",
    )


@pytest.fixture
def contact(customer):
    return ContactFactory(
        customer=customer,
        name="张伟",
        title="采购经理",
        mobile=PHONE,
        email="zhangwei@hengxin-jx.com",
    )


@pytest.fixture
def pool_customer(crm):
    return CustomerFactory(name="杭州瑞丰贸易有限公司", owner=None, phone="+8613911112222")


def names(results, key):
    group = next((g for g in results.groups if g.key == key), None)
    return [r.name for r in group.records] if group else []


def group_keys(results):
    return [g.key for g in results.groups]


# --- Phones ---------------------------------------------------------------------------


@pytest.mark.parametrize("query", PHONE_FORMATS)
def test_every_way_of_typing_a_mobile_finds_the_contact(crm, contact, query):
    assert names(search(crm.owner, query), "contacts") == ["张伟"]


@pytest.mark.parametrize("query", PHONE_FORMATS)
def test_every_way_of_typing_a_mobile_finds_the_customer(crm, query):
    CustomerFactory(name="个人客户王先生", owner=crm.owner, phone=PHONE)
    assert names(search(crm.owner, query), "customers") == ["个人客户王先生"]


@pytest.mark.parametrize("query", ["021-5888 1234", "(021) 58881234", "+86 21 5888 1234"])
def test_a_landline_with_its_area_code_finds_the_customer(crm, customer, query):
    assert names(search(crm.owner, query), "customers") == [customer.name]


@pytest.mark.parametrize("query", ["8000", "0013 8000", "1380013", "+86 138", "0086 1380"])
def test_four_or_more_digits_of_a_phone_find_it(crm, contact, query):
    assert names(search(crm.owner, query), "contacts") == ["张伟"]


def test_the_start_of_a_landline_with_the_trunk_zero_finds_it(crm, customer):
    assert names(search(crm.owner, "021-5888"), "customers") == [customer.name]


def test_fewer_than_four_digits_are_not_a_phone_search(crm, contact):
    assert names(search(crm.owner, "138"), "contacts") == []
    assert not phone_terms("138")


def test_phone_terms_read_the_query_as_people_type_it():
    terms = phone_terms("+86 138-0013-8000")
    assert terms.exact == PHONE
    assert terms.digits == "8613800138000"
    assert phone_terms("021-5888").prefix == "+86215888"
    assert phone_terms("0086 1380").prefix == "+861380"
    assert phone_terms("13800").prefix == ""
    assert not phone_terms("张伟 138")


def test_digits_in_a_non_phone_query_do_not_match_phones(crm, contact):
    assert names(search(crm.owner, "张伟 8000"), "contacts") == []


# --- Names and emails -----------------------------------------------------------------


def test_a_two_character_chinese_name_is_found(crm, contact):
    results = search(crm.owner, "张伟")
    assert names(results, "contacts") == ["张伟"]


def test_part_of_a_company_name_finds_it(crm, customer):
    assert names(search(crm.owner, "恒信"), "customers") == [customer.name]
    assert names(search(crm.owner, "恒信机械"), "customers") == [customer.name]


def test_names_and_emails_match_ignoring_case(crm, customer, contact):
    assert names(search(crm.owner, "sales@hengxin"), "customers") == [customer.name]
    assert names(search(crm.owner, "ZHANGWEI@"), "contacts") == ["张伟"]
    CustomerFactory(name="Acme Trading Co.", owner=crm.owner)
    assert names(search(crm.owner, "acme"), "customers") == ["Acme Trading Co."]


def test_an_email_domain_finds_customers_and_contacts(crm, customer, contact):
    results = search(crm.owner, "hengxin-jx.com")
    assert names(results, "customers") == [customer.name]
    assert names(results, "contacts") == ["张伟"]


def test_exact_and_prefix_matches_come_first(crm):
    for name in ("老客户恒信", "恒信贸易有限公司", "恒信"):
        CustomerFactory(name=name, owner=crm.owner)
    expected = ["恒信", "恒信贸易有限公司", "老客户恒信"]
    assert names(search(crm.owner, "恒信"), "customers") == expected


def test_like_wildcards_in_the_query_are_plain_characters(crm, customer):
    CustomerFactory(name="100%满意服务公司", owner=crm.owner)
    assert names(search(crm.owner, "0%满"), "customers") == ["100%满意服务公司"]
    assert names(search(crm.owner, "%%"), "customers") == []


# --- Contacts and their customer ------------------------------------------------------


def test_a_contact_result_shows_its_customer_owner_and_links(client, crm, contact):
    client.force_login(crm.owner)
    response = client.get(URL, {"q": "张伟"})
    assert response.status_code == 200
    html = response.content.decode()
    group = html[html.index('data-testid="search-group-contacts"') :]
    assert "上海恒信机械设备有限公司" in group
    assert "王芳" in group  # the customer's owner
    assert "138 0013 8000" in group  # the mobile as people read it
    hit = response.context["results"].groups[1].hits[0]
    assert hit.record.customer.name == "上海恒信机械设备有限公司"
    assert hit.url == reverse("contacts:detail", args=[contact.pk])
    assert hit.parent_url == reverse("customers:detail", args=[contact.customer_id])
    assert f'href="{hit.url}"' in group and f'href="{hit.parent_url}"' in group


def test_a_customer_result_shows_owner_phone_and_pool(client, crm, customer, pool_customer):
    client.force_login(crm.owner)
    html = client.get(URL, {"q": "有限公司"}).content.decode()
    assert "王芳" in html
    assert "021 5888 1234" in html
    assert "公海" in html or "Public pool" in html


# --- Who finds what -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "上海恒信机械设备有限公司",
        "恒信",
        "张伟",
        "138 0013 8000",
        "8000",
        "021-5888 1234",
        "zhangwei@hengxin-jx.com",
        "hengxin",
    ],
)
def test_the_outsider_finds_nothing_of_the_owners(client, crm, contact, query):
    assert search(crm.outsider, query).total == 0
    client.force_login(crm.outsider)
    response = client.get(URL, {"q": query})
    assert response.status_code == 200
    assert response.context["results"].total == 0
    html = response.content.decode()
    assert 'data-testid="search-nothing"' in html
    assert 'data-testid="search-hit"' not in html
    # Nothing the outsider did not type shows: not the owner, the title, or a record.
    for secret in ("王芳", "采购经理", "Sales@HengXin-jx.com", "上海恒信机械设备有限公司"):
        assert secret not in html or secret == query


def test_the_outsider_finds_a_public_pool_customer(crm, pool_customer):
    for query in ("瑞丰", "139 1111 2222", "2222"):
        assert names(search(crm.outsider, query), "customers") == [pool_customer.name]


def test_a_colleague_with_scope_own_does_not_see_the_owners_records(crm, contact):
    assert search(crm.colleague, "恒信").total == 0


def test_a_manager_sees_the_department_tree(crm, contact):
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    results = search(manager, "恒信")
    assert names(results, "customers") == ["上海恒信机械设备有限公司"]
    outsider_boss = crm.set_scope(crm.outsider, DataScope.DEPARTMENT_TREE, crm_permissions())
    assert search(outsider_boss, "恒信").total == 0


def test_an_admin_finds_everything(crm, contact, pool_customer):
    results = search(crm.admin, "有限公司")
    expected = sorted([contact.customer.name, pool_customer.name])
    assert sorted(names(results, "customers")) == expected


def test_a_role_without_contact_view_gets_no_contact_results(crm, contact):
    no_contacts = crm.set_scope(crm.owner, DataScope.OWN, crm_permissions(types=("customer",)))
    results = search(no_contacts, "张伟")
    assert group_keys(results) == ["customers"]
    assert search(no_contacts, "恒信").total == 1


def test_a_role_without_any_view_finds_nothing(client, crm, contact):
    nobody = crm.set_scope(crm.owner, DataScope.ALL, permissions=[])
    assert search(nobody, "张伟").groups == []
    client.force_login(nobody)
    assert "张伟</" not in client.get(URL, {"q": "张伟"}).content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL, {"q": "张伟"})
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


# --- Empty, short and many ------------------------------------------------------------


def test_an_empty_query_shows_the_empty_state_without_searching(
    client, crm, contact, django_assert_num_queries
):
    with django_assert_num_queries(0):
        results = search(crm.owner, "   ")
    assert not results.searched and results.groups == []
    client.force_login(crm.owner)
    html = client.get(URL).content.decode()
    assert 'data-testid="search-empty"' in html


def test_a_one_character_query_asks_for_more(client, crm, contact, django_assert_num_queries):
    with django_assert_num_queries(0):
        results = search(crm.owner, "张")
    assert results.message and not results.searched
    client.force_login(crm.owner)
    html = client.get(URL, {"q": "张"}).content.decode()
    assert 'data-testid="search-message"' in html
    assert "张伟" not in html


def test_results_are_capped_per_group_with_the_full_count(client, crm):
    for n in range(25):
        CustomerFactory(name=f"恒信分公司{n:02d}", owner=crm.owner)
    results = search(crm.owner, "恒信")
    group = results.groups[0]
    # The closest ten of each type; the list behind "see all" has the rest.
    assert len(group.hits) == search_service.LIMIT == 10
    assert group.count == 25 and group.has_more
    assert group.more_url == reverse("customers:list") + "?q=%E6%81%92%E4%BF%A1"
    client.force_login(crm.owner)
    html = client.get(URL, {"q": "恒信"}).content.decode()
    assert html.count('data-testid="search-hit"') == 10
    assert 'data-testid="search-more-customers"' in html


def test_a_very_long_query_is_cut(crm):
    assert len(search(crm.owner, "恒" * 500).query) == search_service.MAX_LENGTH


def test_beyond_the_cap_the_count_says_more_and_exact_matches_still_show(client, crm, monkeypatch):
    monkeypatch.setattr(search_service, "CAP", 5)
    for n in range(8):
        CustomerFactory(name=f"恒信分公司{n}", owner=crm.owner)
    exact = CustomerFactory(name="恒信", owner=crm.owner)  # created last: the cap cuts it
    group = search(crm.owner, "恒信").groups[0]
    assert group.capped and group.count_display == "5+"
    assert group.records[0] == exact
    client.force_login(crm.owner)
    html = client.get(URL, {"q": "恒信"}).content.decode()
    assert 'data-testid="search-count-customers">5+<' in html


def test_the_search_runs_at_most_two_queries_per_record_type(crm, contact):
    for n in range(30):
        phone = f"+861380000{n:04d}"
        customer = CustomerFactory(name=f"恒信分公司{n}", owner=crm.owner, phone=phone)
        ContactFactory(customer=customer, name=f"恒信联系人{n}", mobile=f"+861390000{n:04d}")
    for query in ("恒信", "138 0000", "zhangwei@", "nothing-like-it"):
        with CaptureQueriesContext(connection) as queries:
            search(crm.owner, query)
        assert len(reads(queries)) <= 4, [q["sql"] for q in queries]


def reads(queries) -> list[dict]:
    """The queries that read rows: not PostgreSQL's SET LOCAL of the search (no parallel
    workers) nor the savepoint that holds it inside a test's transaction."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "SET LOCAL")
    return [q for q in queries if not q["sql"].startswith(control)]


def test_the_page_query_count_does_not_grow_with_the_results(client, crm):
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    client.force_login(manager)

    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL, {"q": "恒信"}).status_code == 200
        return len(reads(queries))

    ContactFactory(customer=CustomerFactory(name="恒信一号", owner=crm.owner), name="恒信人")
    page_queries()  # warm: the first request also fills the department-tree cache
    few = page_queries()
    for n in range(30):
        customer = CustomerFactory(name=f"恒信分公司{n}", owner=crm.sub_member)
        ContactFactory(customer=customer, name=f"恒信联系人{n}")
    assert page_queries() == few <= 8


# --- The page -------------------------------------------------------------------------


def test_names_are_escaped_and_the_match_highlighted(client, crm):
    CustomerFactory(name="<script>alert(1)</script>恒信", owner=crm.owner)
    client.force_login(crm.owner)
    html = client.get(URL, {"q": "恒信"}).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<mark>恒信</mark>" in html


def test_htmx_requests_get_only_the_results(client, crm, contact):
    client.force_login(crm.owner)
    response = client.get(URL, {"q": "张伟"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="search-group-contacts"' in html


def test_every_page_has_the_search_box(client, crm):
    client.force_login(crm.owner)
    html = client.get(reverse("dashboard")).content.decode()
    form = re.search(r'<form[^>]*data-testid="nav-search"[^>]*>', html).group(0)
    assert f'action="{URL}"' in form
    assert 'name="q"' in html
    assert 'data-testid="nav-search-icon"' in html  # phones: an icon to the search page


# --- PostgreSQL: the trigram indexes serve the search ---------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL trigram indexes")
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("恒信机械", "customer_name_trgm"),
        ("hengxin-jx", "customer_email_trgm"),
        ("58881234", "customer_phone_trgm"),
        ("恒信", "customer_name_bigram"),  # 2 characters: no trigram, the bigram index
    ],
)
def test_postgresql_uses_the_trigram_indexes(crm, customer, query, index):
    """At this size PostgreSQL would rather scan; with scans off it must pick the index,
    which proves the index matches the SQL the search sends (bench/ measures at scale)."""
    customers = search_service.sources()[0]
    queryset = Customer.objects.filter(search_service.match_q(customers, query)).order_by()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
    assert index in plan, plan
