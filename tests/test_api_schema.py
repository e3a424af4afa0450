"""The OpenAPI document (/api/schema/) is valid OpenAPI 3, describes the token
(a bearer scheme) and the error shape; the docs page (/api/docs/) is Swagger UI served
from our own static files: nothing from another site."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse
from drf_spectacular.validation import validate_schema

from integrations.api import services

SCHEMA = "/api/schema/"


def bearer(user) -> dict:
    _token, text = services.create_token(user, name="docs", expires_in_days=None, by=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {text}"}


@pytest.fixture
def document(client, org) -> dict:
    response = client.get(SCHEMA, {"format": "json"}, **bearer(org.admin))
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # raises on an invalid document


def test_the_schema_describes_the_token_as_a_bearer_scheme(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    operation = document["paths"]["/api/v1/pipelines/"]["get"]
    assert {"bearerAuth": []} in operation["security"]


def test_the_schema_lists_the_configuration_endpoints_and_their_errors(document):
    paths = document["paths"]
    for path in (
        "/api/v1/pipelines/",
        "/api/v1/pipelines/{id}/",
        "/api/v1/dictionaries/",
        "/api/v1/dictionaries/{code}/",
        "/api/v1/custom-fields/",
    ):
        assert "get" in paths[path]
    detail = paths["/api/v1/pipelines/{id}/"]["get"]["responses"]
    assert {"200", "401", "404", "429"} <= set(detail)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]
    assert detail["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_the_schema_needs_a_signed_in_caller(client, db):
    response = client.get(SCHEMA)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_browser_session_reads_the_schema_too(client, org):
    client.force_login(org.owner)
    assert client.get(SCHEMA).status_code == 200


def test_generating_the_schema_gives_no_warning(tmp_path, db):
    """`manage.py spectacular --validate --fail-on-warn`: what CI's API fuzzing reads."""
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "api.yaml")
    )
    assert "bearerAuth" in (tmp_path / "api.yaml").read_text()


# --- the docs page ---------------------------------------------------------------------


def test_the_docs_page_loads_only_from_this_site(client, org):
    client.force_login(org.owner)

    response = client.get(reverse("api:docs"))

    assert response.status_code == 200
    page = response.content.decode()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(src.startswith("/") for src in sources)
    for src in sources:
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), src
    assert 'data-schema-url="/api/schema/"' in page
    # Swagger UI would fetch a validator badge from swagger.io unless told not to.
    with open(finders.find("api/docs.js")) as script:
        assert "validatorUrl: null" in script.read()


def test_the_docs_page_needs_a_signed_in_person(client, db):
    response = client.get(reverse("api:docs"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]
