"""Personal API tokens: made on one's own page and shown once, stored only as a hash,
presented as `Authorization: Bearer …`; unknown, revoked and expired tokens and
inactive users are refused (401, JSON); revoked by their owner or an admin."""

import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.api import services
from integrations.api.models import ApiToken

DICTIONARIES = "/api/v1/dictionaries/"


def new_token(user, *, days=None, name="script") -> tuple[ApiToken, str]:
    return services.create_token(user, name=name, expires_in_days=days, by=user)


def bearer(text: str, keyword: str = "Bearer") -> dict:
    return {"HTTP_AUTHORIZATION": f"{keyword} {text}"}


# --- the tokens page --------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(client, org):
    client.force_login(org.owner)

    created = client.post(reverse("api:tokens"), {"name": "ERP sync", "expires": "90"})

    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    text = created.context["new_token"]
    assert text.startswith("kd_") and len(text) > 40
    assert text in created.content.decode()
    token = ApiToken.objects.get(user=org.owner)
    assert token.name == "ERP sync"
    assert token.secret_hash == hashlib.sha256(text.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert not any(text in value for value in stored)
    assert token.created_by == org.owner
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)

    later = client.get(reverse("api:tokens"))
    page = later.content.decode()
    assert text not in page
    assert token.display_prefix in page  # recognisable by its start
    assert "ERP sync" in page


def test_a_token_may_never_expire_and_needs_a_name(client, org):
    client.force_login(org.owner)

    unnamed = client.post(reverse("api:tokens"), {"name": "  ", "expires": ""})
    assert unnamed.status_code == 200
    assert unnamed.context["form"].errors["name"]
    assert not ApiToken.objects.exists()

    client.post(reverse("api:tokens"), {"name": "BI", "expires": ""})
    assert ApiToken.objects.get().expires_at is None


def test_the_page_lists_only_ones_own_tokens(client, org):
    new_token(org.owner, name="mine")
    new_token(org.outsider, name="not mine")
    client.force_login(org.owner)

    response = client.get(reverse("api:tokens"))

    assert [t.name for t in response.context["tokens"]] == ["mine"]


def test_the_owner_revokes_a_token_and_it_stops_working(client, org):
    token, text = new_token(org.owner)
    client.force_login(org.owner)

    response = client.post(reverse("api:revoke_token", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == org.owner
    assert Client().get(DICTIONARIES, **bearer(text)).status_code == 401


def test_nobody_revokes_someone_elses_token(client, org):
    token, text = new_token(org.owner)
    client.force_login(org.outsider)

    assert client.post(reverse("api:revoke_token", args=[token.pk])).status_code == 404
    assert client.post(reverse("api:revoke_token", args=["x"])).status_code == 404
    assert client.post(reverse("api:revoke_token", args=[2**70])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert Client().get(DICTIONARIES, **bearer(text)).status_code == 200


def test_the_page_forms_need_their_csrf_token(org):
    token, _text = new_token(org.owner)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(org.owner)

    assert browser.post(reverse("api:tokens"), {"name": "x"}).status_code == 403
    assert browser.post(reverse("api:revoke_token", args=[token.pk])).status_code == 403
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_page_needs_a_signed_in_person(client, db):
    response = client.get(reverse("api:tokens"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_the_user_menu_links_to_the_page(client, org):
    client.force_login(org.owner)
    assert reverse("api:tokens") in client.get(reverse("dashboard")).content.decode()


# --- calling the API with a token --------------------------------------------------------


@pytest.mark.parametrize("keyword", ["Bearer", "bearer", "Token"])
def test_a_token_calls_the_api_as_its_user(client, org, keyword):
    _token, text = new_token(org.owner)

    response = client.get(DICTIONARIES, **bearer(text, keyword))

    assert response.status_code == 200
    assert response.wsgi_request.user.pk == org.owner.pk


def test_a_token_acts_as_its_user_through_the_token(org):
    from rest_framework.test import APIRequestFactory

    from integrations.api.authentication import ApiTokenAuthentication

    token, text = new_token(org.owner, name="ERP")
    request = APIRequestFactory().get(DICTIONARIES, **bearer(text))
    from rest_framework.request import Request

    user, auth = ApiTokenAuthentication().authenticate(Request(request))

    assert (user.pk, auth) == (org.owner.pk, token)
    assert (user.actor.kind, user.actor.id, user.actor.name) == ("api", token.pk, "ERP")


def refused(response, code: str) -> bool:
    body = response.json()
    return (
        response.status_code == 401
        and body["code"] == code
        and body["detail"]
        and response["WWW-Authenticate"].startswith("Bearer")
    )


def test_unknown_and_malformed_tokens_are_refused(client, org):
    _token, text = new_token(org.owner)
    wrong_secret = text[:-4] + ("aaaa" if not text.endswith("aaaa") else "bbbb")

    assert refused(client.get(DICTIONARIES, **bearer(wrong_secret)), "invalid_token")
    assert refused(client.get(DICTIONARIES, **bearer("kd_00000000_nope")), "invalid_token")
    assert refused(client.get(DICTIONARIES, **bearer("x" * 5000)), "invalid_token")
    assert refused(client.get(DICTIONARIES, **bearer(f"{text} extra")), "invalid_header")


def test_no_credentials_is_a_401(client, db):
    response = client.get(DICTIONARIES)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_revoked_token_is_refused(client, org):
    token, text = new_token(org.owner)
    services.revoke_token(token, by=org.admin)

    assert refused(client.get(DICTIONARIES, **bearer(text)), "token_revoked")


def test_an_expired_token_is_refused(client, org):
    token, text = new_token(org.owner, days=30)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert refused(client.get(DICTIONARIES, **bearer(text)), "token_expired")


def test_an_inactive_users_token_is_refused(client, org):
    _token, text = new_token(org.owner)
    org.owner.is_active = False
    org.owner.save(update_fields=["is_active"])

    assert refused(client.get(DICTIONARIES, **bearer(text)), "user_inactive")


def test_the_last_use_is_recorded_at_most_once_a_minute(client, org):
    token, text = new_token(org.owner)

    client.get(DICTIONARIES, REMOTE_ADDR="10.1.2.3", **bearer(text))
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and token.last_used_ip == "10.1.2.3"

    client.get(DICTIONARIES, REMOTE_ADDR="10.9.9.9", **bearer(text))
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (first, "10.1.2.3")

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(DICTIONARIES, REMOTE_ADDR="10.9.9.9", **bearer(text))
    token.refresh_from_db()
    assert token.last_used_at > first and token.last_used_ip == "10.9.9.9"


def test_a_recent_use_costs_no_write(client, org):
    _token, text = new_token(org.owner)
    client.get(DICTIONARIES, **bearer(text))  # records the use

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(DICTIONARIES, **bearer(text))
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]


# --- admins and the shell --------------------------------------------------------------


def test_an_admin_sees_and_revokes_tokens_in_django_admin(admin_client, org):
    token, text = new_token(org.owner, name="ERP")

    listing = admin_client.get(reverse("admin:api_apitoken_changelist"))
    assert listing.status_code == 200
    assert "ERP" in listing.content.decode()
    assert text not in listing.content.decode()

    admin_client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_by == org.admin and token.revoked_at is not None


def test_the_shell_command_prints_a_working_token(client, org, capsys):
    call_command("create_api_token", org.owner.username, "--name", "ci", "--print")
    text = capsys.readouterr().out.strip()

    assert client.get(DICTIONARIES, **bearer(text)).status_code == 200
    token = ApiToken.objects.get()
    assert (token.name, token.user, token.created_by) == ("ci", org.owner, org.admin)
