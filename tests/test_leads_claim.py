"""Claiming unassigned leads (领取): every rep who may change leads sees the unassigned
ones (the lead pool) and may take them — from the lead's page or in bulk from the list —
through pipelines.services.claim_leads, which claims only unowned leads the person may
see, records a `claimed` history entry and event for each, and lets only one of two
people claiming at once have the lead."""

from __future__ import annotations

import threading

import pytest
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.urls import reverse

from accounts.models import DataScope
from crm.models import Change, EventKind
from pipelines import services
from pipelines.models import Lead

from .factories import LeadFactory, crm_permissions

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
LIST_URL = reverse("leads:list")


@pytest.fixture
def team(org):
    perms = crm_permissions(actions=("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        user = org.set_scope(getattr(org, name), DataScope.OWN, perms)
        user.language = "en"
        user.save(update_fields=["language"])
        setattr(org, name, user)
    return org


def unassigned(name: str = "公海线索") -> Lead:
    return LeadFactory(owner=None, company_name=name, person_name="周先生")


def claims(lead: Lead) -> list[Change]:
    return list(
        Change.objects.filter(
            record_type=ContentType.objects.get_for_model(Lead),
            record_id=lead.pk,
            action=EventKind.CLAIMED,
        )
    )


def texts(response) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request)]


# --- The service ----------------------------------------------------------------------


def test_claim_leads_takes_only_the_unowned_ones_and_records_each(team):
    pool = [unassigned("甲"), unassigned("乙")]
    theirs = LeadFactory(owner=team.colleague, company_name="丙")
    claimed = services.claim_leads(
        Lead.objects.filter(pk__in=[*(p.pk for p in pool), theirs.pk]), by=team.owner
    )
    assert sorted(lead.pk for lead in claimed) == sorted(p.pk for p in pool)
    assert set(
        Lead.objects.filter(pk__in=[p.pk for p in pool]).values_list("owner", flat=True)
    ) == {team.owner.pk}
    theirs.refresh_from_db()
    assert theirs.owner == team.colleague
    (entry,) = claims(pool[0])
    assert entry.user == team.owner
    assert entry.fields["owner"] == [None, team.owner.pk]
    assert entry.changes[0]["new"] == str(team.owner)
    assert claims(theirs) == []


def test_claim_lead_refuses_a_lead_that_has_an_owner(team):
    lead = LeadFactory(owner=team.owner)
    with pytest.raises(ValidationError, match="already has an owner"):
        services.claim_lead(lead=lead, by=team.colleague)
    lead.refresh_from_db()
    assert lead.owner == team.owner


def test_claiming_needs_the_change_permission(team):
    viewer = team.set_scope(
        team.colleague, DataScope.OWN, crm_permissions(actions=("view",), types=TYPES)
    )
    lead = unassigned()
    with pytest.raises(PermissionDenied):
        services.claim_lead(lead=lead, by=viewer)
    lead.refresh_from_db()
    assert lead.owner is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: concurrent sessions")
@pytest.mark.django_db(transaction=True)
def test_two_people_claiming_at_once_one_gets_the_lead(team):
    lead = unassigned()
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def claim(user) -> None:
        try:
            barrier.wait(timeout=10)
            services.claim_lead(lead=lead, by=user)
            results[user.username] = "claimed"
        except ValidationError:
            results[user.username] = "refused"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (team.owner, team.colleague)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == ["claimed", "refused"]
    winner = next(name for name, result in results.items() if result == "claimed")
    lead.refresh_from_db()
    assert lead.owner.username == winner
    assert len(claims(lead)) == 1


# --- The lead's page ------------------------------------------------------------------


def test_an_unassigned_lead_page_offers_claim_and_claiming_makes_it_mine(client, team):
    lead = unassigned()
    client.force_login(team.owner)
    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="claim"' in page
    assert 'data-testid="convert"' not in page  # not hers to convert until she claims it
    response = client.post(reverse("leads:claim", args=[lead.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:detail", args=[lead.pk])
    assert texts(response) == ["“公海线索 · 周先生” is now your lead."]
    lead.refresh_from_db()
    assert lead.owner == team.owner
    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="claim"' not in page and 'data-testid="convert"' in page


def test_claiming_a_lead_someone_took_first_says_so(client, team):
    lead = unassigned()
    services.claim_lead(lead=lead, by=team.colleague)
    client.force_login(team.owner)
    # An owned lead of another rep is out of her scope: not found, not claimed.
    assert client.post(reverse("leads:claim", args=[lead.pk])).status_code == 404
    # A manager who sees it is told it has an owner.
    manager = team.set_scope(
        team.outsider, DataScope.ALL, crm_permissions(actions=("view", "change"), types=TYPES)
    )
    client.force_login(manager)
    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="claim"' not in page
    response = client.post(reverse("leads:claim", args=[lead.pk]))
    assert texts(response) == ["This lead already has an owner."]
    lead.refresh_from_db()
    assert lead.owner == team.colleague


def test_without_the_change_permission_there_is_no_claim(client, team):
    viewer = team.set_scope(
        team.colleague, DataScope.OWN, crm_permissions(actions=("view",), types=TYPES)
    )
    lead = unassigned()
    client.force_login(viewer)
    page = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert 'data-testid="claim"' not in page
    assert client.post(reverse("leads:claim", args=[lead.pk])).status_code == 403
    assert client.get(reverse("leads:claim", args=[lead.pk])).status_code == 405
    lead.refresh_from_db()
    assert lead.owner is None


# --- The list's bulk action -----------------------------------------------------------


def test_bulk_claim_takes_the_unassigned_and_says_why_not_the_rest(client, team):
    pool = [unassigned("甲"), unassigned("乙")]
    mine = LeadFactory(owner=team.owner, company_name="丙")
    client.force_login(team.owner)
    html = client.get(LIST_URL + "?owner=pool").content.decode()
    assert '<option value="claim">Claim</option>' in html
    response = client.post(
        LIST_URL,
        {"action": "claim", "selected": [pool[0].pk, pool[1].pk, mine.pk], "query": "owner=pool"},
    )
    assert response["Location"] == LIST_URL + "?owner=pool"
    assert texts(response) == ["2 leads claimed; 1 not claimed: have an owner"]
    assert set(Lead.objects.values_list("owner", flat=True)) == {team.owner.pk}


def test_bulk_transfer_of_unassigned_leads_says_to_claim_them_first(client, team):
    pool = unassigned()
    mine = LeadFactory(owner=team.owner, company_name="我的")
    client.force_login(team.owner)
    response = client.post(
        LIST_URL,
        {"action": "transfer", "selected": [pool.pk, mine.pk], "to_owner": team.owner.pk},
    )
    assert texts(response) == [
        f"0 records transferred to {team.owner}; 2 not transferred: "
        f"unassigned: claim them first (1), already {team.owner}'s (1)"
    ]
    pool.refresh_from_db()
    assert pool.owner is None
