"""Bulk actions on the customer, lead and deal lists say what they did and, when they
changed fewer rows than were ticked, why not the rest — counted per reason:
"1 records transferred to 李娜; 2 not transferred: not yours to edit (1), ..."."""

from __future__ import annotations

import pytest
from django.contrib.messages import constants, get_messages
from django.urls import reverse

from accounts.models import DataScope
from crm.models import Customer
from pipelines.models import Deal, Lead

from .factories import (
    CustomerFactory,
    DealFactory,
    LeadFactory,
    TagFactory,
    crm_permissions,
    give_crm_roles,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
ALL_ACTIONS = ("view", "add", "change", "delete")
CUSTOMERS = reverse("customers:list")


@pytest.fixture
def crm(org):
    """Reps own their records; 王芳 (owner) is made a manager over the 销售一部 tree."""
    give_crm_roles(org, actions=ALL_ACTIONS)
    org.owner = org.set_scope(
        org.owner, DataScope.DEPARTMENT_TREE, crm_permissions(ALL_ACTIONS, types=TYPES)
    )
    org.colleague = org.set_scope(
        org.colleague, DataScope.OWN, crm_permissions(ALL_ACTIONS, types=TYPES)
    )
    for user in (org.owner, org.colleague):
        user.language = "en"
        user.save(update_fields=["language"])
    return org


def bulk(client, url, action, records, **data):
    response = client.post(url, {"action": action, "selected": [r.pk for r in records], **data})
    assert response.status_code == 302
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


def test_a_transfer_of_every_row_says_only_what_it_did(client, crm):
    mine = [CustomerFactory(owner=crm.owner), CustomerFactory(owner=crm.sub_member)]
    client.force_login(crm.owner)
    assert bulk(client, CUSTOMERS, "transfer", mine, to_owner=crm.colleague.pk) == [
        (constants.SUCCESS, "2 customers transferred to 李娜.")
    ]


def test_a_customer_transfer_counts_why_rows_were_left(client, crm):
    moved = CustomerFactory(owner=crm.owner, name="转走的")
    already = CustomerFactory(owner=crm.colleague, name="已是李娜的")
    pool = CustomerFactory(owner=None, name="公海的")
    hidden = CustomerFactory(owner=crm.outsider, name="别部门的")
    client.force_login(crm.owner)
    messages = bulk(
        client, CUSTOMERS, "transfer", [moved, already, pool, hidden], to_owner=crm.colleague.pk
    )
    assert messages == [
        (
            constants.WARNING,
            "1 customers transferred to 李娜; 3 not transferred: no longer there or not "
            "visible to you (1), in the public pool: claim them first (1), already 李娜's (1)",
        )
    ]
    assert Customer.objects.get(pk=moved.pk).owner == crm.colleague
    assert Customer.objects.get(pk=pool.pk).owner is None
    assert Customer.objects.get(pk=hidden.pk).owner == crm.outsider


def test_a_rep_transferring_what_she_may_not_edit_is_told_so(client, crm):
    # 李娜 (scope own) sees a pool customer she may not change; one reason, no counts.
    pool = CustomerFactory(owner=None)
    client.force_login(crm.colleague)
    assert bulk(client, CUSTOMERS, "transfer", [pool], to_owner=crm.colleague.pk) == [
        (
            constants.WARNING,
            "0 customers transferred to 李娜; 1 not transferred: "
            "in the public pool: claim them first",
        )
    ]


def test_tagging_counts_the_customers_tagged_already(client, crm):
    vip = TagFactory(name="VIP")
    tagged = CustomerFactory(owner=crm.owner)
    tagged.tags.add(vip)
    fresh = CustomerFactory(owner=crm.owner)
    client.force_login(crm.owner)
    assert bulk(client, CUSTOMERS, "tag", [tagged, fresh], tag="VIP") == [
        (constants.WARNING, "Tagged 1 customers “VIP”; 1 not tagged: tagged already")
    ]


def test_returning_to_the_pool_counts_those_there_already(client, crm):
    mine = CustomerFactory(owner=crm.owner)
    pool = CustomerFactory(owner=None)
    client.force_login(crm.owner)
    assert bulk(client, CUSTOMERS, "release", [mine, pool]) == [
        (
            constants.WARNING,
            "1 customers returned to the public pool; 1 not returned: in the public pool already",
        )
    ]


def test_claiming_counts_those_not_in_the_pool_and_the_role_limit(client, crm):
    crm.colleague.role.max_customers = 1
    crm.colleague.role.save(update_fields=["max_customers"])
    owned = CustomerFactory(owner=crm.colleague)
    pool = [CustomerFactory(owner=None, name=f"公海{i}") for i in range(2)]
    client.force_login(crm.colleague)
    (message,) = bulk(client, CUSTOMERS, "claim", [owned, *pool])
    level, text = message
    assert level == constants.WARNING
    assert text.startswith("0 customers claimed from the public pool; 3 not claimed: ")
    assert "not in the public pool (1)" in text
    assert "over your role's limit of 1 customers (2)" in text
    assert Customer.objects.filter(owner__isnull=True).count() == 2


def test_a_lead_transfer_names_the_unassigned_and_the_ones_not_editable(client, crm):
    moved = LeadFactory(owner=crm.owner, company_name="甲")
    pool = LeadFactory(owner=None, company_name="乙")
    client.force_login(crm.colleague)
    # 李娜 sees the unassigned lead and not 王芳's; her own goes to herself: nothing to do.
    mine = LeadFactory(owner=crm.colleague, company_name="丙")
    assert bulk(
        client, reverse("leads:list"), "transfer", [moved, pool, mine], to_owner=crm.colleague.pk
    ) == [
        (
            constants.WARNING,
            "0 records transferred to 李娜; 3 not transferred: no longer there or not "
            "visible to you (1), unassigned: claim them first (1), already 李娜's (1)",
        )
    ]
    assert set(Lead.objects.values_list("owner", flat=True)) == {
        crm.owner.pk,
        None,
        crm.colleague.pk,
    }


def test_a_deal_transfer_counts_the_deals_left(client, crm):
    customer = CustomerFactory(owner=crm.owner)
    moved = DealFactory(owner=crm.owner, customer=customer, title="甲")
    theirs = DealFactory(owner=crm.colleague, customer=customer, title="乙")
    client.force_login(crm.owner)
    assert bulk(
        client, reverse("deals:list"), "transfer", [moved, theirs], to_owner=crm.colleague.pk
    ) == [
        (
            constants.WARNING,
            "1 records transferred to 李娜; 1 not transferred: already 李娜's",
        )
    ]
    assert set(Deal.objects.values_list("owner", flat=True)) == {crm.colleague.pk}
