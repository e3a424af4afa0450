"""What fuzzing the record endpoints from their OpenAPI document (schemathesis, `.ci/run`)
found, held here: bad input is a 400 naming the field, never a 500, and every answer
matches the document — checked the way schemathesis checks it (its own response
validation, formats included, against /api/schema/)."""

from __future__ import annotations

import pytest
import requests
import schemathesis

from crm.models import Contact
from pipelines.models import Deal

from .factories import (
    ContactFactory,
    CustomerFactory,
    TaskFactory,
    custom_field,
)


def fetched(api) -> dict:
    """The document as /api/schema/ gives it now (custom fields as configured)."""
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def document(api) -> dict:
    return fetched(api)


def conforms(document: dict, method: str, path: str, response) -> bool:
    """Whether `response` (to `method` on the document's `path`) matches the document, as
    schemathesis's response_schema_conformance check decides; raises with the mismatch."""
    operation = schemathesis.openapi.from_dict(document)[path][method.upper()]
    answer = schemathesis.Response(
        status_code=response.status_code,
        headers={"Content-Type": [response["Content-Type"]]},
        content=response.content,
        request=requests.Request(method.upper(), f"http://testserver{path}").prepare(),
        elapsed=0.0,
        verify=True,
    )
    operation.validate_response(answer)
    return True


# --- Bad input is a 400 by field, never a 500 --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "required"),
    [
        ("customers", {"name"}),
        ("contacts", {"customer", "name"}),
        ("activities", {"customer", "content"}),
        ("tasks", {"title"}),
        ("deals", {"title", "customer"}),
    ],
)
def test_a_create_without_its_required_fields_is_400_naming_them(api, document, path, required):
    # A contact's or deal's service read the customer before any validation: a 500.
    response = api.post(f"/api/v1/{path}/", {})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == required
    assert conforms(document, "post", f"/api/v1/{path}/", response)


def test_the_document_says_which_fields_a_create_needs_and_a_patch_none(document):
    schemas = document["components"]["schemas"]
    assert set(schemas["ContactWriteRequest"]["required"]) == {"customer", "name"}
    assert set(schemas["DealWriteRequest"]["required"]) == {"title", "customer"}
    assert "required" not in schemas["PatchedDealWriteRequest"]
    assert "required" not in schemas["LeadWriteRequest"]  # any one of several fields
    # null empties a field: not offered where it is refused
    assert "nullable" not in schemas["DealWriteRequest"]["properties"]["customer"]
    assert schemas["CustomerWriteRequest"]["properties"]["owner"]["nullable"] is True


def test_a_contact_and_a_deal_need_a_customer_and_nothing_is_saved(api, rep):
    contact = api.post("/api/v1/contacts/", {"name": "李雷"})
    assert (contact.status_code, set(contact.json()["errors"])) == (400, {"customer"})
    deal = api.post("/api/v1/deals/", {"title": "首单"})
    assert (deal.status_code, set(deal.json()["errors"])) == (400, {"customer"})
    assert not Contact.objects.exists() and not Deal.objects.exists()


def test_a_follow_up_with_another_customers_contact_is_400_under_contact(api, rep):
    customer = CustomerFactory(owner=rep)
    other = ContactFactory(customer=CustomerFactory(owner=rep))
    response = api.post(
        "/api/v1/activities/",
        {"customer": customer.pk, "contact": other.pk, "content": "电话沟通"},
    )
    assert response.status_code == 400  # was the service's bare 403
    assert set(response.json()["errors"]) == {"contact"}
    assert not customer.activities.exists()


# --- Answers match the document ----------------------------------------------------------------


def test_internationalised_emails_and_urls_read_as_the_document_says(api, rep):
    # Django's validators take Unicode domains; "email" and "uri" formats do not.
    custom_field("homepage", "url")
    document = fetched(api)
    response = api.post(
        "/api/v1/customers/",
        {
            "name": "例子科技",
            "email": "sales@例子.中国",
            "website": "例子.com/产品",
            "custom": {"homepage": "https://例子.com"},
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["website"] == "https://例子.com/产品"
    assert conforms(document, "post", "/api/v1/customers/", response)
    listed = api.get("/api/v1/customers/")
    assert conforms(document, "get", "/api/v1/customers/", listed)


def test_a_blank_url_is_not_ambiguous_in_the_document(api, rep, document):
    # drf-spectacular's oneOf ("uri" | maxLength 0) matched "" twice for any validator
    # that does not check formats.
    website = document["components"]["schemas"]["Customer"]["properties"]["website"]
    assert "oneOf" not in website
    CustomerFactory(owner=rep, website="", email="")
    assert conforms(document, "get", "/api/v1/customers/", api.get("/api/v1/customers/"))


def test_an_instant_before_1901_reads_as_an_rfc_3339_date_time(api, rep, document):
    # Asia/Shanghai's offset was local mean time then (+08:05:43): no RFC 3339 offset.
    response = api.post("/api/v1/tasks/", {"title": "旧约", "due_at": "1900-01-01 10:00"})
    assert response.status_code == 201, response.json()
    assert response.json()["due_at"] == "1900-01-01T01:54:17Z"
    assert conforms(document, "post", "/api/v1/tasks/", response)
    ordinary = api.post("/api/v1/tasks/", {"title": "回电话", "due_at": "2026-12-08 10:00"})
    assert ordinary.json()["due_at"] == "2026-12-08T10:00:00+08:00"


def test_error_answers_an_action_declares_have_the_error_body(api, rep, document):
    customer = CustomerFactory(owner=None)
    response = api.post(f"/api/v1/customers/{customer.pk}/release/", {})
    assert response.status_code == 409
    conflict = document["paths"]["/api/v1/customers/{id}/release/"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert conforms(document, "post", "/api/v1/customers/{id}/release/", response)


def test_a_transfer_answers_as_the_document_says(api, rep, org, document):
    customer = CustomerFactory(owner=rep, email="a@例子.中国")
    TaskFactory(assignee=rep, customer=customer)
    response = api.post(f"/api/v1/customers/{customer.pk}/transfer/", {"owner": rep.pk})
    assert response.status_code == 200, response.json()
    assert conforms(document, "post", "/api/v1/customers/{id}/transfer/", response)
