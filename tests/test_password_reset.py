"""Forgotten password: the sign-in page links to a form that emails a one-time link to
choose a new password. The page answers the same whether or not an account has the
address, requests are limited per IP and per address, and a link expires."""

import itertools
import re
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.test import Client
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext

from accounts import throttle
from accounts.models import Language, SecurityNotice

from .factories import UserFactory

RESET_URL = "/accounts/password/reset/"
SENT_URL = "/accounts/password/reset/sent/"
NEW_PASSWORD = "a-much-better-passphrase-42"
TOO_MANY = (
    "Too many password reset requests. Please wait %(minutes)s minutes "
    "and try again, or ask your administrator to reset your password."
)
_addresses = itertools.count(1)


@pytest.fixture
def visitor(db):
    """A browser at an IP address of its own: the limits of one test don't touch
    another's (the cache outlives a test)."""
    ip = f"10.{next(_addresses) % 250}.{next(_addresses) % 250}.7"
    yield Client(REMOTE_ADDR=ip)
    throttle.reset("password-reset-ip", ip)


@pytest.fixture
def rep(db):
    user = UserFactory(username=f"reset{next(_addresses)}", language=Language.ZH_HANS)
    yield user
    throttle.reset("password-reset-email", user.email)


def ask(client, email):
    return client.post(RESET_URL, {"email": email})


def link_in(message) -> str:
    found = re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/)", message.body)
    assert found, message.body
    return found.group(1)


def test_the_sign_in_page_links_to_the_reset_form(visitor):
    page = visitor.get("/accounts/login/").content.decode()
    assert f'href="{RESET_URL}"' in page and 'data-testid="forgot-password"' in page
    form = visitor.get(RESET_URL)
    assert form.status_code == 200
    assert 'name="email"' in form.content.decode()


def test_the_emailed_link_sets_a_new_password_once(visitor, rep):
    response = ask(visitor, rep.email.upper())  # addresses match whatever their case
    assert response.status_code == 302 and response["Location"] == SENT_URL
    assert 'data-testid="reset-sent"' in visitor.get(SENT_URL).content.decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [rep.email]
    assert "[" in message.subject and rep.username in message.body
    link = link_in(message)

    # Django moves the token into the session and the address to .../set-password/.
    opened = visitor.get(link)
    assert opened.status_code == 302
    form_url = opened["Location"]
    assert visitor.get(form_url).context["validlink"] is True
    done = visitor.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/password/reset/done/"
    assert 'data-testid="reset-complete"' in visitor.get(done["Location"]).content.decode()

    rep.refresh_from_db()
    assert rep.check_password(NEW_PASSWORD)
    # The owner is told, as after any password change.
    assert SecurityNotice.objects.filter(user=rep).exists()
    signed_in = Client().post(
        "/accounts/login/", {"username": rep.username, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 302

    # The link worked once.
    again = Client().get(link, follow=True)
    assert again.context["validlink"] is False
    assert 'data-testid="reset-invalid"' in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_email(visitor, rep):
    known = ask(visitor, rep.email)
    mail.outbox.clear()
    unknown = ask(visitor, "nobody-here@example.com")
    throttle.reset("password-reset-email", "nobody-here@example.com")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert mail.outbox == []


def test_an_inactive_account_gets_no_email(visitor, rep):
    rep.is_active = False
    rep.save(update_fields=["is_active"])
    assert ask(visitor, rep.email)["Location"] == SENT_URL
    assert mail.outbox == []


def test_a_bad_address_is_a_clear_error_not_a_crash(visitor):
    response = ask(visitor, "not an address")
    assert response.status_code == 200
    assert response.context["form"].errors["email"]


def test_one_address_may_ask_a_few_times_an_hour(visitor, rep):
    limit = settings.PASSWORD_RESET_LIMITS["email"]["limit"]
    for _ in range(limit):
        assert ask(visitor, rep.email).status_code == 302
    # From another IP address too: the limit is the address's.
    other = Client(REMOTE_ADDR="10.251.0.9")
    refused = ask(other, rep.email)
    throttle.reset("password-reset-ip", "10.251.0.9")
    assert refused.status_code == 429
    error = refused.context["form"].non_field_errors()[0]
    assert re.search(r"\d+", error), error  # says how long to wait
    assert len(mail.outbox) == limit


def test_an_unknown_address_is_limited_alike(visitor):
    limit = settings.PASSWORD_RESET_LIMITS["email"]["limit"]
    statuses = [ask(visitor, "ghost@example.com").status_code for _ in range(limit + 1)]
    throttle.reset("password-reset-email", "ghost@example.com")
    assert statuses == [302] * limit + [429]


def test_one_ip_address_may_ask_about_only_so_many_addresses(visitor):
    limit = settings.PASSWORD_RESET_LIMITS["ip"]["limit"]
    addresses = [f"probe{i}@example.com" for i in range(limit + 1)]
    statuses = [ask(visitor, address).status_code for address in addresses]
    for address in addresses:
        throttle.reset("password-reset-email", address)
    assert statuses == [302] * limit + [429]


def test_the_refusal_reads_in_the_visitors_language(visitor, rep):
    for _ in range(settings.PASSWORD_RESET_LIMITS["email"]["limit"]):
        ask(visitor, rep.email)
    page = visitor.post(RESET_URL, {"email": rep.email}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 429
    assert page["Content-Language"] == "zh-hans"
    with translation.override("zh-hans"):
        expected = gettext(TOO_MANY) % {"minutes": 60}
    assert page.context["form"].non_field_errors() == [expected]


class TwoHoursAgo(PasswordResetTokenGenerator):
    def _now(self):
        return datetime.now() - timedelta(hours=2)


def test_a_link_expires_after_an_hour(visitor, rep):
    assert settings.PASSWORD_RESET_TIMEOUT == 60 * 60
    uid = urlsafe_base64_encode(force_bytes(rep.pk))
    old = TwoHoursAgo().make_token(rep)
    page = visitor.get(f"/accounts/password/reset/{uid}/{old}/", follow=True)
    assert page.context["validlink"] is False
    fresh = PasswordResetTokenGenerator().make_token(rep)
    page = visitor.get(f"/accounts/password/reset/{uid}/{fresh}/", follow=True)
    assert page.context["validlink"] is True


def test_the_email_is_in_the_readers_language(visitor, db):
    emma = UserFactory(username="emma-reset", language=Language.EN)
    ask(visitor, emma.email)
    throttle.reset("password-reset-email", emma.email)
    assert mail.outbox[0].subject.endswith("Choose a new password")
    assert "Someone asked to reset the password of your account emma-reset" in (mail.outbox[0].body)
