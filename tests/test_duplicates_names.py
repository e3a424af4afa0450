"""The duplicate warning matches company names the way people type them: without the
legal form (有限公司, 股份有限公司, 集团…) or a region in front (上海, 广东省深圳市…), and
close but not equal (trigram similarity on PostgreSQL, a LIKE-based fallback elsewhere);
the closest few, scoped as every duplicate warning: what the user may not open is
reported with its owner only."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Customer
from crm.services.customers import find_duplicates
from crm.services.similar_names import (
    THRESHOLD,
    company_core,
    name_similarity,
    postgres_candidates,
    similar_names,
)

from .factories import CustomerFactory, give_crm_roles

DUPLICATES_URL = reverse("customers:duplicates")
HANGQI = "上海航启医疗器械有限公司"


# --- Names as people type them (no database) ------------------------------------------


@pytest.mark.parametrize(
    ("name", "core"),
    [
        ("上海航启医疗器械有限公司", "航启医疗器械"),
        ("上海航启医疗", "航启医疗"),
        ("航启医疗器械", "航启医疗器械"),
        ("上海市航启医疗器械股份有限公司", "航启医疗器械"),
        ("航启医疗器械有限责任公司", "航启医疗器械"),
        ("航启（上海）医疗器械有限公司", "航启医疗器械"),
        ("广东省深圳市华强科技集团有限公司", "华强科技"),
        ("中国平安保险（集团）股份有限公司", "平安保险"),
        ("广西壮族自治区桂林米粉集团", "桂林米粉"),
        ("ＡＣＭＥ　Ｉｎｃ．", "acme"),
        ("Acme Co., Ltd.", "acme"),
        ("  航启 医疗 ", "航启医疗"),
        # A name that is only a region or only a legal form stays what it is.
        ("上海", "上海"),
        ("集团", "集团"),
    ],
)
def test_the_core_of_a_company_name(name, core):
    assert company_core(name) == core


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("上海航启医疗", HANGQI),
        ("航启医疗器械", HANGQI),
        ("北京航启医疗器械有限公司", HANGQI),
        ("航启医疗器材", HANGQI),  # one character off
        ("Acme", "ACME Co., Ltd."),
    ],
)
def test_names_people_mean_as_the_same_company_are_alike(typed, stored):
    assert name_similarity(typed, stored) >= THRESHOLD


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("华瑞医疗器械", HANGQI),  # the same trade, another company
        ("北京大学", "清华大学"),
        ("航启", "远航启明星"),
        ("上海", HANGQI),  # nothing left to compare once the region is gone
        ("医疗器械", "上海倰衰医疗器械有限公司"),  # the trade alone
        ("航启", HANGQI),  # too little typed yet
    ],
)
def test_different_companies_are_not_alike(typed, stored):
    assert name_similarity(typed, stored) < THRESHOLD


def test_closer_names_score_higher():
    assert (
        name_similarity("航启医疗器械", HANGQI)
        > name_similarity("航启医疗", HANGQI)
        > name_similarity("航启医疗器材科技", HANGQI)
    )


# --- The warning (the database's own matching) ----------------------------------------


@pytest.fixture
def crm(org):
    give_crm_roles(org, actions=("view", "add", "change"))
    return org


@pytest.fixture
def hangqi(crm):
    return CustomerFactory(name=HANGQI, owner=crm.owner)


@pytest.mark.parametrize(
    "typed", ["上海航启医疗", "航启医疗器械", "航启医疗器材", "北京航启医疗器械"]
)
def test_typed_names_find_the_company(crm, hangqi, typed):
    CustomerFactory(name="上海华瑞医疗器械有限公司", owner=crm.owner)
    (found,) = find_duplicates(user=crm.owner, name=typed, similar=True)
    assert found.record == hangqi and found.similar and found.visible


def test_the_same_name_is_a_match_not_a_likeness(crm, hangqi):
    (found,) = find_duplicates(user=crm.owner, name=HANGQI, similar=True)
    assert found.record == hangqi and not found.similar


def test_the_closest_few_come_first(crm):
    names = [
        "上海航启医疗器械有限公司",
        "航启医疗器械（苏州）有限公司",
        "航启医疗有限公司",
        "航启医疗器械科技有限公司",
        "航启医疗器械销售有限公司",
        "航启医疗器械贸易有限公司",
        "航启医疗器械服务有限公司",
    ]
    for name in names:
        CustomerFactory(name=name, owner=crm.owner)
    found = find_duplicates(user=crm.owner, name="航启医疗器械", similar=True)
    assert [d.record.name for d in found[:2]] == [
        "上海航启医疗器械有限公司",
        "航启医疗器械（苏州）有限公司",
    ]
    assert len(found) == 5  # the closest few, not every one
    assert "航启医疗有限公司" not in [d.record.name for d in found]  # the least alike


def test_a_short_or_generic_name_finds_nothing_alike(crm, hangqi):
    assert find_duplicates(user=crm.owner, name="上海", similar=True) == []
    assert find_duplicates(user=crm.owner, name="有限公司", similar=True) == []


def test_the_warning_says_similar_and_hides_what_the_user_may_not_open(client, crm, hangqi):
    client.force_login(crm.owner)
    html = client.get(DUPLICATES_URL, {"name": "上海航启医疗"}).content.decode()
    assert HANGQI in html and 'data-testid="similar"' in html
    assert reverse("customers:detail", args=[hangqi.pk]) in html
    client.force_login(crm.outsider)  # another department: may not open it
    html = client.get(DUPLICATES_URL, {"name": "航启医疗器械"}).content.decode()
    assert 'data-visible="0"' in html and "王芳" in html
    assert HANGQI not in html and "href" not in html


def test_without_a_company_name_typed_only_the_same_name_matches(crm, hangqi):
    """A contact's form asks with a person's name: no likeness to company names."""
    assert find_duplicates(user=crm.owner, name="上海航启医疗") == []
    assert [d.record for d in find_duplicates(user=crm.owner, name=HANGQI)] == [hangqi]


def test_contacts_still_match_on_the_exact_name_only(crm, hangqi):
    from .factories import ContactFactory

    ContactFactory(customer=hangqi, name="张伟")
    assert [d.record.name for d in find_duplicates(user=crm.owner, name="张伟", similar=True)] == [
        "张伟"
    ]
    assert find_duplicates(user=crm.owner, name="张伟伟", similar=True) == []


# --- PostgreSQL: pg_trgm through the trigram index ------------------------------------


pg_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL pg_trgm")


@pg_only
def test_postgresql_asks_pg_trgm_for_the_candidates(crm, hangqi):
    with CaptureQueriesContext(connection) as queries:
        found = similar_names(Customer.objects.all(), "航启医疗器材")
    assert [record for record, _score in found] == [hangqi]
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "%>" in sql  # pg_trgm's word similarity


@pg_only
@pytest.mark.parametrize("typed", ["航启医疗器材", "航启医疗"])
def test_postgresql_finds_candidates_through_the_trigram_index(crm, hangqi, typed):
    """At this size PostgreSQL would rather scan; with scans off it must pick the index,
    which proves the index serves the SQL the warning sends."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = postgres_candidates(Customer.objects.all(), typed).explain()
    assert "customer_name_trgm" in plan, plan
