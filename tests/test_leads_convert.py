"""The lead conversion form: it shows only the way of choosing the customer that is
picked (a new customer's fields or the existing-customer picker), labels the contact's
name as a person's name (姓名), and after converting takes the rep to where the work goes
on: the new deal, else the customer."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import DataScope
from crm.models import Customer
from pipelines.models import LeadStatus

from .factories import CustomerFactory, LeadFactory, crm_permissions, stage

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def rep(org):
    return org.set_scope(
        org.owner, DataScope.OWN, crm_permissions(("view", "add", "change"), types=TYPES)
    )


@pytest.fixture
def lead(rep):
    return LeadFactory.created_by(
        rep, company_name="杭州远景科技", person_name="张伟", phone="+8613800138000"
    )


def convert(client, lead, **data):
    return client.post(reverse("leads:convert", args=[lead.pk]), data)


def test_converting_with_a_deal_lands_on_the_deal(client, rep, lead):
    client.force_login(rep)
    response = convert(
        client,
        lead,
        **{
            "c-customer_mode": "new",
            "c-create_contact": "on",
            "c-create_deal": "on",
            "customer-name": "杭州远景科技",
            "contact-name": "张伟",
            "deal-title": "远景首单",
            "deal-amount": "50000",
            "deal-stage": stage("零售", "意向").pk,
        },
    )
    assert response.status_code == 302, [
        response.context[f].errors for f in ("choice_form", "contact_form", "deal_form")
    ]
    lead.refresh_from_db()
    assert lead.status == LeadStatus.CONVERTED
    assert response["Location"] == reverse("deals:detail", args=[lead.converted_deal_id])


def test_converting_without_a_deal_lands_on_the_customer(client, rep, lead):
    client.force_login(rep)
    response = convert(client, lead, **{"c-customer_mode": "new", "customer-name": "杭州远景科技"})
    lead.refresh_from_db()
    assert response["Location"] == reverse("customers:detail", args=[lead.converted_customer_id])


def test_converting_into_an_existing_customer_lands_on_it(client, rep, lead):
    customer = CustomerFactory(owner=rep, name="远景集团")
    client.force_login(rep)
    response = convert(
        client, lead, **{"c-customer_mode": "existing", "c-existing_customer": customer.pk}
    )
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    assert Customer.objects.count() == 1


def test_the_contact_name_is_a_persons_name(client, rep, lead):
    client.force_login(rep)
    with translation.override("zh-hans"):
        form = client.get(reverse("leads:convert", args=[lead.pk])).context["contact_form"]
        assert str(form["name"].label) == "姓名"
    with translation.override("en"):
        assert str(form["name"].label) == "Full name"


def test_each_customer_choice_has_its_own_section(client, rep, lead):
    """The new customer's fields and the existing-customer picker are in sections the
    form's stylesheet shows by the chosen radio (static/pipelines/convert.css)."""
    client.force_login(rep)
    html = client.get(reverse("leads:convert", args=[lead.pk])).content.decode()
    assert "data-convert" in html and "pipelines/convert.css" in html
    new = html.index('data-show-when="c-customer_mode=new"')
    existing = html.index('data-show-when="c-customer_mode=existing"')
    assert new < html.index('name="customer-name"') < existing
    assert existing < html.index('name="c-existing_customer"')
    assert html.index('name="customer-name"') < existing  # not in the picker's section
    contact = html.index('data-show-when="c-create_contact"')
    assert (
        contact < html.index('name="contact-name"') < html.index('data-show-when="c-create_deal"')
    )
