"""The search as one statement (issue 17): customers, contacts, leads and deals in a single
query, each type still in the user's scope, in the same order, with the same caps.

The rep (scope own) owns a customer, its contact, a lead and a deal, all named 恒信; the
outsider (another team, scope own) owns the same of their own, named 恒信 too. An
unassigned lead and a pool customer are seen by everyone who may view their type.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import DataScope
from crm.services import search as search_service
from crm.services.search import search
from pipelines.models import Lead

from .factories import ContactFactory, CustomerFactory, crm_permissions
from .factories.pipelines import DealFactory, LeadFactory

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
URL = reverse("search")


@pytest.fixture
def team(org):
    perms = crm_permissions(types=TYPES)
    for name in ("owner", "colleague", "sub_member", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, perms))
    return org


def records_of(user, name):
    customer = CustomerFactory(name=f"{name}机械有限公司", owner=user, phone="+862158881234")
    contact = ContactFactory(customer=customer, name=f"{name}联系人", mobile="+8613800138000")
    lead = LeadFactory(owner=user, company_name=f"{name}贸易", person_name="张三")
    deal = DealFactory(owner=user, customer=customer, title=f"{name}数控机床", amount=Decimal(5))
    return customer, contact, lead, deal


@pytest.fixture
def mine(team):
    return records_of(team.owner, "恒信")


@pytest.fixture
def theirs(team):
    return records_of(team.outsider, "恒信二")


@pytest.fixture
def shared(team):
    """Seen by everyone: an unassigned lead, a public-pool customer and its contact."""
    pool = CustomerFactory(name="恒信公海客户", owner=None)
    return (
        pool,
        ContactFactory(customer=pool, name="恒信公海联系人"),
        LeadFactory(owner=None, company_name="恒信未分配线索"),
    )


def found(results) -> dict[str, set[int]]:
    return {group.key: {hit.record.pk for hit in group.hits} for group in results.groups}


def reads(queries) -> list[str]:
    """The statements of a search, without a test transaction's savepoints and the
    planner settings put back for it (inside a transaction that goes on)."""
    skipped = ("SAVEPOINT", "RELEASE SAVEPOINT", search_service._DEFAULTS_SQL)
    return [q["sql"] for q in queries if not q["sql"].startswith(skipped)]


def test_the_four_types_are_one_query(team, mine, theirs, shared):
    with CaptureQueriesContext(connection) as queries:
        results = search(team.admin, "恒信")
    statements = reads(queries)
    assert len(statements) == 1, statements
    assert [g.key for g in results.groups] == ["customers", "contacts", "leads", "deals"]
    assert all(g.count for g in results.groups)


def test_each_type_shows_only_what_the_user_may_see(team, mine, theirs, shared):
    customer, contact, lead, deal = mine
    other_customer, other_contact, other_lead, other_deal = theirs
    pool, pool_contact, unassigned = shared
    assert found(search(team.owner, "恒信")) == {
        "customers": {customer.pk, pool.pk},
        "contacts": {contact.pk, pool_contact.pk},
        "leads": {lead.pk, unassigned.pk},
        "deals": {deal.pk},
    }
    assert found(search(team.outsider, "恒信")) == {
        "customers": {other_customer.pk, pool.pk},
        "contacts": {other_contact.pk, pool_contact.pk},
        "leads": {other_lead.pk, unassigned.pk},
        "deals": {other_deal.pk},
    }
    # A colleague in the owner's team with scope own sees the shared records only.
    assert found(search(team.colleague, "恒信")) == {
        "customers": {pool.pk},
        "contacts": {pool_contact.pk},
        "leads": {unassigned.pk},
        "deals": set(),
    }
    # The manager of the owner's team (销售一部 and below) sees the owner's, not the
    # outsider's (销售二部).
    manager = team.set_scope(
        team.colleague, DataScope.DEPARTMENT_TREE, crm_permissions(types=TYPES)
    )
    assert found(search(manager, "恒信")) == {
        "customers": {customer.pk, pool.pk},
        "contacts": {contact.pk, pool_contact.pk},
        "leads": {lead.pk, unassigned.pk},
        "deals": {deal.pk},
    }
    everything = found(search(team.admin, "恒信"))
    assert everything["deals"] == {deal.pk, other_deal.pk}
    assert everything["leads"] == {lead.pk, other_lead.pk, unassigned.pk}


def test_counts_are_of_what_the_user_may_see(team, mine, theirs, shared):
    counts = {g.key: g.count for g in search(team.owner, "恒信").groups}
    assert counts == {"customers": 2, "contacts": 2, "leads": 2, "deals": 1}


def test_a_phone_finds_the_users_records_of_every_type_only(team, mine, theirs):
    customer, contact, _, _ = mine
    assert found(search(team.owner, "138 0013 8000")) == {
        "customers": set(),
        "contacts": {contact.pk},
        "leads": set(),
        "deals": set(),
    }
    assert found(search(team.owner, "5888"))["customers"] == {customer.pk}


def test_a_type_the_role_may_not_view_is_left_out_and_not_queried(team, mine):
    no_deals = team.set_scope(
        team.owner, DataScope.OWN, crm_permissions(types=("customer", "contact", "lead"))
    )
    with CaptureQueriesContext(connection) as queries:
        results = search(no_deals, "恒信")
    assert [g.key for g in results.groups] == ["customers", "contacts", "leads"]
    assert "pipelines_deal" not in " ".join(reads(queries))


def test_exact_matches_first_then_by_name_in_every_type(team):
    owner = team.owner
    customer = CustomerFactory(name="恒信", owner=owner)
    for name in ("老客户恒信", "恒信贸易有限公司"):
        CustomerFactory(name=name, owner=owner)
    for name in ("恒信乙", "恒信", "恒信甲"):
        LeadFactory(owner=owner, company_name=name, person_name="")
    for title in ("恒信续约", "恒信", "恒信扩容"):
        DealFactory(owner=owner, customer=customer, title=title)
    for name in ("恒信丙", "恒信"):
        ContactFactory(customer=customer, name=name)
    results = search(owner, "恒信")
    names = {g.key: [h.record.pk for h in g.hits] for g in results.groups}

    def expected(model, field):
        rows = model.objects.filter(**{f"{field}__contains": "恒信"})
        return [
            r.pk
            for r in sorted(
                rows, key=lambda r: (getattr(r, field) != "恒信", getattr(r, field), r.pk)
            )
        ]

    from crm.models import Contact, Customer
    from pipelines.models import Deal, Lead

    assert names["customers"] == expected(Customer, "name")
    assert names["contacts"] == expected(Contact, "name")
    assert names["leads"] == expected(Lead, "company_name")
    assert names["deals"] == expected(Deal, "title")
    assert results.groups[3].hits[0].record.title == "恒信"
    # Fewer shown than found: the first in that order (picked before the rows are read).
    shown = {g.key: [h.record.pk for h in g.hits] for g in search(owner, "恒信", limit=2).groups}
    assert shown == {key: pks[:2] for key, pks in names.items()}


def test_beyond_the_cap_every_type_still_shows_its_exact_match(team, monkeypatch):
    monkeypatch.setattr(search_service, "CAP", 3)
    owner = team.owner
    customer = CustomerFactory(name="客户", owner=owner)
    for n in range(5):
        LeadFactory(owner=owner, company_name=f"恒信分公司{n}", person_name="")
        DealFactory(owner=owner, customer=customer, title=f"恒信项目{n}")
    lead = LeadFactory(owner=owner, company_name="恒信", person_name="")  # created last
    deal = DealFactory(owner=owner, customer=customer, title="恒信")
    groups = {g.key: g for g in search(owner, "恒信").groups}
    for key, exact in (("leads", lead), ("deals", deal)):
        assert groups[key].capped and groups[key].count_display == "3+"
        assert groups[key].hits[0].record.pk == exact.pk
    # Not the outsider's, though: an exact match outside the scope stays out.
    assert search(team.outsider, "恒信").total == 0


def test_beyond_the_cap_the_first_exact_matches_by_name_are_shown(team, monkeypatch):
    """More exact matches than the rows show, most of them left out by the cap: the rows
    are the first exact ones in the rows' order (name, then id), whichever the cap kept."""
    monkeypatch.setattr(search_service, "CAP", 3)
    owner = team.owner
    for n in range(4):
        LeadFactory(owner=owner, company_name=f"恒信分公司{n}", person_name="")
    for _ in range(6):
        LeadFactory(owner=owner, company_name="恒信", person_name="")
    exact = Lead.objects.filter(owner=owner, company_name="恒信").order_by("pk")
    group = {g.key: g for g in search(owner, "恒信", limit=3).groups}["leads"]
    assert group.capped
    assert [h.record.pk for h in group.hits] == [lead.pk for lead in exact[:3]]


def test_rows_need_no_further_query(team, mine, shared, django_assert_num_queries):
    """What the rows show is loaded with them: their relations too."""
    results = search(team.owner, "恒信")
    shown = []
    with django_assert_num_queries(0):
        for group in results.groups:
            for hit in group.hits:
                record = hit.record
                if group.key == "customers":
                    shown += [record.owner if record.owner_id else "", record.phone, record.email]
                elif group.key == "contacts":
                    shown += [record.customer.name, record.customer.owner, record.mobile]
                elif group.key == "leads":
                    shown += [record.display_name, record.stage.display_name, record.owner]
                else:
                    shown += [record.customer.name, record.stage.color, record.owner, record.amount]
    assert str(team.owner) in map(str, shown) and Decimal(5) in shown


def test_the_page_shows_every_type_with_its_links(client, team, mine):
    customer, contact, lead, deal = mine
    client.force_login(team.owner)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(URL, {"q": "恒信"}).content.decode()
    for key in ("customers", "contacts", "leads", "deals"):
        assert f'data-testid="search-group-{key}"' in html
    for url in (
        reverse("customers:detail", args=[customer.pk]),
        reverse("contacts:detail", args=[contact.pk]),
        reverse("leads:detail", args=[lead.pk]),
        reverse("deals:detail", args=[deal.pk]),
    ):
        assert f'href="{url}"' in html
    assert "<mark>恒信</mark>数控机床" in html
    searches = [q for q in reads(queries) if "search_m0" in q]
    assert len(searches) == 1


def test_a_type_without_row_builder_or_columns_gets_whole_records(org, monkeypatch):
    """Another app's type, registered with only a model, a name and select_related: its
    hits are whole records with their relation, as .select_related() loads them."""
    from crm.services.search import SearchSource

    from .factories.testapp import PooledNoteFactory

    note = SearchSource(
        key="notes",
        label="Notes",
        model=PooledNoteFactory._meta.model,
        name_field="title",
        select_related=("owner",),
    )
    monkeypatch.setattr(search_service, "_sources", {"notes": note})
    org.owner = org.set_scope(org.owner, DataScope.OWN, ["pooled.view"])
    mine = PooledNoteFactory(title="恒信备忘", owner=org.owner)
    pooled = PooledNoteFactory(title="恒信", owner=None)
    PooledNoteFactory(title="恒信其他", owner=org.outsider)
    results = search(org.owner, "恒信")
    (group,) = results.groups
    assert [hit.record.pk for hit in group.hits] == [pooled.pk, mine.pk]
    with CaptureQueriesContext(connection) as queries:
        assert [(h.record.title, h.record.owner) for h in group.hits] == [
            ("恒信", None),
            ("恒信备忘", org.owner),
        ]
    assert not queries.captured_queries


# --- PostgreSQL outside a transaction: two phases in one snapshot ----------------------
# (The tests above run inside the test's transaction: the one statement. A request runs
# outside one: on PostgreSQL the ids first, then the rows of the types that have some,
# in one REPEATABLE READ transaction.)

outside_a_transaction = pytest.mark.django_db(transaction=True)


@outside_a_transaction
def test_outside_a_transaction_each_type_still_shows_only_what_the_user_may_see(
    team, mine, theirs, shared
):
    assert search_service._two_phases() == (connection.vendor == "postgresql")
    test_each_type_shows_only_what_the_user_may_see(team, mine, theirs, shared)
    test_counts_are_of_what_the_user_may_see(team, mine, theirs, shared)
    test_a_phone_finds_the_users_records_of_every_type_only(team, mine, theirs)


@outside_a_transaction
def test_outside_a_transaction_two_statements_in_one_snapshot(team, mine, theirs, shared):
    with CaptureQueriesContext(connection) as queries:
        results = search(team.owner, "恒信")
    statements = [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]
    if connection.vendor == "postgresql":
        assert len(statements) == 2, statements
        assert statements[0].startswith("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;")
    else:
        assert len(statements) == 1, statements
    assert not connection.in_atomic_block
    assert [g.count for g in results.groups] == [2, 2, 2, 1]
    # Nothing found: no second statement.
    with CaptureQueriesContext(connection) as queries:
        assert search(team.owner, "无此记录").total == 0
    assert len([q for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]) == 1


@outside_a_transaction
def test_outside_a_transaction_the_order_is_the_same(team):
    test_exact_matches_first_then_by_name_in_every_type(team)


@outside_a_transaction
def test_outside_a_transaction_the_cap_is_the_same(team, monkeypatch):
    test_beyond_the_cap_every_type_still_shows_its_exact_match(team, monkeypatch)
    test_beyond_the_cap_the_first_exact_matches_by_name_are_shown(team, monkeypatch)


@outside_a_transaction
def test_outside_a_transaction_the_page_is_the_one_statements_page(
    client, team, mine, shared, monkeypatch
):
    client.force_login(team.owner)
    two_phases = client.get(URL, {"q": "恒信"}).content.decode()
    monkeypatch.setattr(search_service, "_two_phases", lambda: False)
    one_statement = client.get(URL, {"q": "恒信"}).content.decode()

    def rows(html):
        return html[html.index('data-testid="search-summary"') : html.index("</main>")]

    assert rows(two_phases) == rows(one_statement)
    assert two_phases.count('data-testid="search-hit"') == 7


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner settings")
def test_the_searchs_planner_settings_end_with_it_inside_a_callers_transaction(team, mine):
    """The search sets its planner settings for its own statement (no parallel workers,
    nested loops); called inside a transaction that goes on, it leaves them as they were."""

    def settings():
        with connection.cursor() as cursor:
            values = []
            for name in ("max_parallel_workers_per_gather", "enable_hashjoin", "enable_mergejoin"):
                cursor.execute(f"SHOW {name}")
                values.append(cursor.fetchone()[0])
            return values

    before = settings()
    assert connection.in_atomic_block
    assert search(team.owner, "恒信").groups[0].hits
    assert settings() == before
