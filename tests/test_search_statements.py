"""The search's per-request SQL, compiled once per shape (crm.services.search): what a
request runs is exactly what the ORM compiles for that user and query, for every data
scope, hidden fields, query forms (2 characters, longer, phone numbers, LIKE's special
characters, the markers' own characters), and the cache never carries one person's
scope to another."""

import dataclasses

import pytest

from accounts.models import DataScope, FieldAccess
from crm.services import search as service

from .factories import ContactFactory, CustomerFactory, crm_permissions

QUERIES = [
    "恒信",  # 2 characters: bigram indexes on PostgreSQL
    "恒信机械",
    "HengXin",
    "138 0013 8000",  # a full number: exact, digits and no prefix
    "+86 138",  # a prefix
    "021-5888",  # a trunk 0
    "8000",  # digits only
    "50%_off\\",  # LIKE's special characters
    "\ue000_",  # the query marker itself, 2 characters
    "\ue000_\ue000 \ue001",  # and the longer one, beside a phone marker
]

SCOPES = [DataScope.OWN, DataScope.DEPARTMENT, DataScope.DEPARTMENT_TREE, DataScope.ALL]


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    monkeypatch.setattr(service, "_compiled", {})


def fresh_and_cached(user, query: str, given: bool):
    phones = service.phone_terms(query)
    for index, source in enumerate(service.sources()):
        source = service._searched(source, user)
        if source is None:
            continue
        fresh = service._statements(source, index, user, query, phones, given, 10)
        # Twice: the first compiles the shape, the second fills it in.
        for _ in range(2):
            cached = service._compiled_statements(source, index, user, query, phones, given, 10)
            yield source.key, fresh, cached


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("given", [True, False], ids=["two phases", "one statement"])
def test_each_shape_runs_what_the_orm_compiles(org, scope, given):
    user = org.set_scope(org.owner, scope, crm_permissions())
    for query in QUERIES:
        for key, fresh, cached in fresh_and_cached(user, query, given):
            assert cached == fresh, (key, query)
    assert service._compiled and all(v is not None for v in service._compiled.values())


def test_a_role_s_hidden_fields_are_a_shape_of_their_own(org):
    open_user = org.set_scope(org.owner, DataScope.OWN, crm_permissions())
    hiding = org.set_scope(org.colleague, DataScope.OWN, crm_permissions())
    hiding.role.field_permissions = {"customer": {"email": FieldAccess.HIDDEN}}
    hiding.role.save(update_fields=["field_permissions"])
    for user in (open_user, hiding, open_user):
        for query in ("hengxin", "sales@"):
            for key, fresh, cached in fresh_and_cached(user, query, True):
                assert cached == fresh, (user, key, query)


def test_the_shape_of_a_scope_is_shared_but_its_people_are_not(client, org):
    """Two reps, then two managers of different departments: each finds only their own
    (the second of each pair runs the SQL the first compiled)."""
    owner = org.set_scope(org.owner, DataScope.OWN, crm_permissions())
    outsider = org.set_scope(org.outsider, DataScope.OWN, crm_permissions())
    mine = CustomerFactory(name="恒信机械一号", owner=owner, email="one@hengxin.example")
    theirs = CustomerFactory(name="恒信机械二号", owner=outsider, email="two@hengxin.example")
    ContactFactory(customer=mine, name="恒信张三", mobile="+8613800138000")
    ContactFactory(customer=theirs, name="恒信李四", mobile="+8613800139000")

    def found(user, query):
        results = service.search(user, query)
        return {str(r) for g in results.groups for r in g.records}

    assert found(owner, "恒信") == {"恒信张三", "恒信机械一号"}
    assert found(outsider, "恒信") == {"恒信李四", "恒信机械二号"}
    for query in ("恒信机械", "hengxin"):
        assert found(owner, query) == {"恒信机械一号"}
        assert found(outsider, query) == {"恒信机械二号"}
    assert found(owner, "1380013") == {"恒信张三"}
    assert found(outsider, "1380013") == {"恒信李四"}
    manager1 = org.set_scope(org.colleague, DataScope.DEPARTMENT, crm_permissions())
    manager2 = org.set_scope(org.outsider, DataScope.DEPARTMENT, crm_permissions())
    assert found(manager1, "恒信") == {"恒信张三", "恒信机械一号"}
    assert found(manager2, "恒信") == {"恒信李四", "恒信机械二号"}


def test_a_source_with_hidden_fields_keeps_its_rows_plan_beside_the_full_one():
    """The rows plan is cached per source: a role that hides fields and one that does not
    each reuse theirs, however the requests alternate."""
    source = service.sources()[0]
    hiding = dataclasses.replace(source, email_fields=())
    full_plan = service._rows_plan(source, 0, 10)
    hiding_plan = service._rows_plan(hiding, 0, 10)
    assert service._rows_plan(dataclasses.replace(source, email_fields=()), 0, 10) is hiding_plan
    assert service._rows_plan(source, 0, 10) is full_plan
