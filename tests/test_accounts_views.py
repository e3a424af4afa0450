"""The account pages: sign in and out, the dashboard, password change, language switch.

Chinese pages are checked through `<html lang>` and the Content-Language header; our own
messages are compared with `in_chinese(...)` (what the zh-Hans catalogue says) and checked
to be Chinese with `has_chinese(...)`, so rewording a translation breaks no test but a
missing one does.
"""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts import services
from accounts.forms import SignInForm
from accounts.models import DataScope, Language, SecurityNotice, User
from crm.people_copy import forget_people

from .conftest import PASSWORD
from .factories import SecurityNoticeFactory, UserFactory, crm_permissions

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
PASSWORD_URL = "/accounts/password/"
LANGUAGE_URL = "/accounts/language/"
NEW_PASSWORD = "a-much-better-passphrase-42"


def in_chinese(message) -> str:
    """`message` (a msgid or lazy string) as a zh-hans user reads it."""
    with translation.override("zh-hans"):
        return gettext(str(message)) if isinstance(message, str) else str(message)


def has_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def sign_in(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password}, **extra)


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def page_language(response) -> str:
    return response.headers["Content-Language"]


class _TestIdText(HTMLParser):
    """Collects the text inside every element carrying data-testid="<testid>"."""

    def __init__(self, testid):
        super().__init__()
        self.testid, self.depth, self.found = testid, 0, []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("data-testid") == self.testid:
            self.depth = 1
            self.found.append("")

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.found[-1] += data


def text_of(response, testid) -> str | None:
    """The whitespace-normalised text of the element with `testid`, or None if absent."""
    parser = _TestIdText(testid)
    parser.feed(response.content.decode())
    return " ".join(parser.found[0].split()) if parser.found else None


# --- Signing in ----------------------------------------------------------------------


@pytest.mark.parametrize("accept_language", ["zh-CN", None], ids=["zh-CN browser", "no header"])
def test_the_sign_in_page_is_chinese_by_default(client, db, accept_language):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = client.get(LOGIN_URL, **headers)
    assert response.status_code == 200
    assert page_language(response) == "zh-hans"
    html = response.content.decode()
    assert '<html lang="zh-Hans">' in html
    assert "用户名" in html
    assert "密码" in html
    assert in_chinese("Sign in to your account") in html


def test_the_sign_in_page_follows_an_english_browser(client, db):
    response = client.get(LOGIN_URL, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page_language(response) == "en"
    assert "Sign in to your account" in response.content.decode()


def test_signing_in_with_good_credentials_goes_to_the_dashboard(client, org):
    response = sign_in(client, "owner")
    assert response.status_code == 302
    assert response.url == "/"
    assert signed_in_user_id(client) == str(org.owner.pk)
    assert client.get("/").status_code == 200


def test_signing_in_honours_a_safe_next(client, org):
    response = client.post(
        LOGIN_URL, {"username": "owner", "password": PASSWORD, "next": PASSWORD_URL}
    )
    assert response.url == PASSWORD_URL


def test_bad_credentials_show_an_error_in_chinese_and_stay_on_the_page(client, org):
    response = sign_in(client, "owner", "wrong-password", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 200
    assert response.templates[0].name == "accounts/login.html"
    assert signed_in_user_id(client) is None
    assert page_language(response) == "zh-hans"
    expected = in_chinese(SignInForm.error_messages["invalid_login"]) % {
        "limit": settings.AXES_FAILURE_LIMIT
    }
    assert has_chinese(expected)
    assert response.context["form"].non_field_errors() == [expected]
    assert 'role="alert"' in response.content.decode()


def test_an_inactive_user_cannot_sign_in(client, org):
    org.owner.is_active = False
    org.owner.save(update_fields=["is_active"])
    response = sign_in(client, "owner")
    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_after_too_many_failures_even_the_right_password_is_locked_out(client, org):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "owner", "wrong-password")
    assert AccessAttempt.objects.get(username="owner").failures_since_start == 5

    response = sign_in(client, "owner")

    assert response.status_code == 429
    assert "accounts/locked_out.html" in [t.name for t in response.templates]
    assert response.context["failure_limit"] == 5
    assert response.context["minutes"] == 15
    title = in_chinese("Too many failed sign-ins")
    assert has_chinese(title)
    assert title in response.content.decode()
    assert signed_in_user_id(client) is None


def test_the_lockout_is_per_username(client, org):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "owner", "wrong-password")
    assert sign_in(client, "colleague").status_code == 302


def test_a_signed_in_user_visiting_the_sign_in_page_goes_to_the_dashboard(client, org):
    client.force_login(org.owner)
    response = client.get(LOGIN_URL)
    assert response.status_code == 302
    assert response.url == "/"


# --- The dashboard -------------------------------------------------------------------


def test_the_dashboard_requires_signing_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"


@pytest.fixture
def manager(org) -> User:
    """An English-speaking sales manager in team1 who sees team1 and its sub-departments."""
    person = UserFactory(
        username="manager", name="张伟", department=org.team1, language=Language.EN
    )
    return org.set_scope(person, DataScope.DEPARTMENT_TREE)


# The start page is about the user's work (crm.dashboard_cards; tests/test_dashboard*):
# no account card. The header's user menu names the person and their role.


def test_the_header_names_the_users_role_and_the_home_no_account_card(client, manager):
    client.force_login(manager)
    response = client.get("/")
    assert response.status_code == 200
    assert manager.role.name in response.content.decode()
    assert text_of(response, "my-department") is None and text_of(response, "my-scope") is None


def test_the_team_lists_exactly_the_people_in_scope(client, org, manager):
    manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions())
    client.force_login(manager)
    response = client.get("/")
    assert response.context["home_role"] == "manager"
    team = {member.username for member in response.context["people"]}
    assert team == {"manager", "owner", "colleague", "sub_member"}
    table = text_of(response, "team")
    for name in ("王芳", "李娜", "赵强"):
        assert name in table
    assert org.outsider.name not in table
    assert org.admin.name not in table


def test_a_rep_who_sees_only_own_records_has_no_team(client, org):
    client.force_login(org.owner)
    response = client.get("/")
    assert response.context["home_role"] == "rep"
    assert text_of(response, "team") is None


def test_the_dashboard_is_in_chinese_for_a_chinese_user(client, org):
    client.force_login(org.owner)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert page_language(response) == "zh-hans"
    greeting = in_chinese("Hello, %(name)s") % {"name": org.owner.get_short_name()}
    assert has_chinese(greeting) and greeting in response.content.decode()


def test_a_superuser_without_a_role_sees_the_whole_company(client, org):
    client.force_login(org.admin)
    response = client.get("/")
    assert response.context["home_role"] == "admin"
    team = {member.username for member in response.context["people"]}
    assert team == {"owner", "colleague", "sub_member", "outsider", "admin"}


def _nav_urls(response) -> list[str]:
    return [item["url"] for item in response.context["nav_items"]]


def test_the_administration_link_shows_only_to_staff(client, org):
    client.force_login(org.admin)
    response = client.get("/")
    assert "/admin/" in _nav_urls(response)
    assert 'href="/admin/"' in response.content.decode()

    client.force_login(org.owner)
    response = client.get("/")
    assert _nav_urls(response) == ["/"]
    assert 'href="/admin/"' not in response.content.decode()


def test_the_current_page_is_marked_in_the_nav(client, org):
    client.force_login(org.owner)
    response = client.get("/")
    assert [item["active"] for item in response.context["nav_items"]] == [True]
    assert 'aria-current="page"' in response.content.decode()


# --- Signing out ---------------------------------------------------------------------


def test_signing_out_by_get_is_not_allowed(client, org):
    client.force_login(org.owner)
    assert client.get(LOGOUT_URL).status_code == 405
    assert signed_in_user_id(client) == str(org.owner.pk)


def test_signing_out_by_post_signs_out(client, org):
    client.force_login(org.owner)
    response = client.post(LOGOUT_URL)
    assert response.status_code == 302
    assert response.url == LOGIN_URL
    assert signed_in_user_id(client) is None
    assert client.get("/").status_code == 302


# --- Changing the password -----------------------------------------------------------


def _change_password(client, old=PASSWORD, new=NEW_PASSWORD, **extra):
    data = {"old_password": old, "new_password1": new, "new_password2": new}
    return client.post(PASSWORD_URL, data, **extra)


def test_the_password_change_page_renders(client, org):
    client.force_login(org.owner)
    response = client.get(PASSWORD_URL)
    assert response.status_code == 200
    assert "旧密码" in response.content.decode()  # "Old password", Django's catalogue


def test_the_password_change_page_requires_signing_in(client, db):
    response = client.get(PASSWORD_URL)
    assert response.status_code == 302
    assert response.url == f"{LOGIN_URL}?next={PASSWORD_URL}"


def test_a_wrong_old_password_changes_nothing(client, org):
    client.force_login(org.owner)
    response = _change_password(client, old="not-my-password")
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"] == [
        "你的旧密码不正确。请重新输入。"  # Django's own zh-Hans message
    ]
    org.owner.refresh_from_db()
    assert org.owner.check_password(PASSWORD)
    assert not SecurityNotice.objects.exists()


def test_mismatched_new_passwords_change_nothing(client, org):
    client.force_login(org.owner)
    data = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": "other"}
    response = client.post(PASSWORD_URL, data)
    assert response.status_code == 200
    assert "new_password2" in response.context["form"].errors
    org.owner.refresh_from_db()
    assert org.owner.check_password(PASSWORD)
    assert not SecurityNotice.objects.exists()


def test_a_good_password_change(client, org, django_capture_on_commit_callbacks):
    org.owner.language = Language.EN
    org.owner.save(update_fields=["language"])
    client.force_login(org.owner)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _change_password(client)

    assert response.status_code == 302
    assert response.url == "/"
    org.owner.refresh_from_db()
    assert org.owner.check_password(NEW_PASSWORD)
    # Still signed in, with a success message on the next page.
    followed = client.get(response.url)
    assert followed.status_code == 200
    assert [str(m) for m in followed.context["messages"]] == ["Your password has been changed."]
    # One notice to mail, queued to go out after the commit (not sent here: no broker).
    notice = SecurityNotice.objects.get()
    assert (notice.user, notice.kind) == (org.owner, SecurityNotice.Kind.PASSWORD_CHANGED)
    assert notice.sent_at is None
    # (Beside the reload of every process's copy of the people, crm.people_copy.)
    assert len([c for c in callbacks if c is not forget_people]) == 1
    assert mail.outbox == []


def test_the_success_message_follows_the_users_language(client, org):
    client.force_login(org.owner)
    response = _change_password(client)
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [in_chinese("Your password has been changed.")]
    assert has_chinese(messages[0])


# --- Delivering the security notice --------------------------------------------------

SUBJECT_MSGID = "[%(brand_name)s] Your password was changed"


def test_the_notice_is_mailed_once_in_english_to_an_english_user(db):
    user = UserFactory(username="emma", language=Language.EN)
    notice = SecurityNoticeFactory(user=user)

    assert services.deliver_security_notice(notice.pk) is True

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["emma@example.com"]
    with translation.override("en"):
        assert message.subject == f"[{settings.CRM_SITE_NAME}] Your password was changed"
    when = timezone.localtime(notice.created_at).strftime("%Y-%m-%d %H:%M")
    assert f"The password of your account emma was changed at {when}." in message.body
    notice.refresh_from_db()
    assert notice.sent_at is not None
    assert notice.result == "sent"


def test_the_notice_is_mailed_in_chinese_to_a_chinese_user(db):
    user = UserFactory(language=Language.ZH_HANS)
    notice = SecurityNoticeFactory(user=user)

    services.deliver_security_notice(notice.pk)

    assert len(mail.outbox) == 1
    expected = in_chinese(SUBJECT_MSGID) % {"brand_name": in_chinese(settings.CRM_SITE_NAME)}
    assert has_chinese(expected)
    assert mail.outbox[0].subject == expected


def test_delivering_the_notice_again_sends_nothing(db):
    notice = SecurityNoticeFactory()
    assert services.deliver_security_notice(notice.pk) is True
    assert services.deliver_security_notice(notice.pk) is False
    assert len(mail.outbox) == 1


def test_a_user_without_an_email_address_gets_the_notice_settled_without_mail(db):
    notice = SecurityNoticeFactory(user=UserFactory(email=""))
    assert services.deliver_security_notice(notice.pk) is True
    assert mail.outbox == []
    notice.refresh_from_db()
    assert notice.sent_at is not None
    assert notice.result == "no email address"
    assert services.deliver_security_notice(notice.pk) is False


def test_a_notice_claimed_by_a_live_worker_is_left_alone(db):
    notice = SecurityNoticeFactory(claimed_at=timezone.now() - timedelta(minutes=1))
    assert services.deliver_security_notice(notice.pk) is False
    assert mail.outbox == []


def test_a_stale_claim_is_taken_over(db):
    notice = SecurityNoticeFactory(claimed_at=timezone.now() - timedelta(minutes=11))
    assert services.deliver_security_notice(notice.pk) is True
    assert len(mail.outbox) == 1
    notice.refresh_from_db()
    assert notice.sent_at is not None


def test_pending_security_notice_ids(db):
    now = timezone.now()

    def notice(*, age, **fields):
        created = SecurityNoticeFactory(**fields)
        SecurityNotice.objects.filter(pk=created.pk).update(created_at=now - age)
        return created.pk

    old = notice(age=timedelta(minutes=5))
    old_stale_claim = notice(age=timedelta(minutes=30), claimed_at=now - timedelta(minutes=11))
    notice(age=timedelta(seconds=10))  # its task has not had time to run
    notice(age=timedelta(minutes=5), claimed_at=now - timedelta(minutes=1))  # being sent
    notice(age=timedelta(minutes=5), sent_at=now, result="sent")

    pending = services.pending_security_notice_ids(older_than=timedelta(minutes=2))

    assert sorted(pending) == sorted([old, old_stale_claim])


# --- Switching language --------------------------------------------------------------


def test_switching_to_english_is_kept_for_a_signed_in_user(client, org):
    client.force_login(org.owner)
    response = client.post(LANGUAGE_URL, {"language": "en", "next": "/"})

    assert response.status_code == 302
    assert response.url == "/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    org.owner.refresh_from_db()
    assert org.owner.language == "en"
    page = client.get("/")
    assert page_language(page) == "en"
    assert '<html lang="en">' in page.content.decode()
    assert "Hello, 王芳" in page.content.decode()


def test_the_users_language_wins_over_the_browser(client, org):
    org.owner.language = Language.EN
    org.owner.save(update_fields=["language"])
    client.force_login(org.owner)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert page_language(response) == "en"


def test_an_invalid_language_changes_nothing(client, org):
    client.force_login(org.owner)
    client.get("/")  # the language cookie now follows the user's preference
    response = client.post(LANGUAGE_URL, {"language": "xx", "next": "/"})
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    org.owner.refresh_from_db()
    assert org.owner.language == "zh-hans"
    assert page_language(client.get("/")) == "zh-hans"


def test_the_language_switch_returns_to_the_page_it_came_from(client, org):
    client.force_login(org.owner)
    response = client.post(LANGUAGE_URL, {"language": "en", "next": PASSWORD_URL})
    assert response.url == PASSWORD_URL


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example.com/", "//evil.example.com/", "http://evil.example.com/accounts/"],
)
def test_the_language_switch_does_not_redirect_to_another_host(client, org, next_url):
    client.force_login(org.owner)
    response = client.post(LANGUAGE_URL, {"language": "en", "next": next_url})
    assert response.status_code == 302
    assert response.url == "/"


def test_the_language_switch_by_get_is_not_allowed(client, org):
    client.force_login(org.owner)
    assert client.get(LANGUAGE_URL, {"language": "en"}).status_code == 405
    org.owner.refresh_from_db()
    assert org.owner.language == "zh-hans"


def test_english_chosen_on_the_sign_in_page_becomes_the_users_preference(client, org):
    response = client.post(LANGUAGE_URL, {"language": "en", "next": LOGIN_URL})
    assert response.url == LOGIN_URL
    assert page_language(client.get(LOGIN_URL)) == "en"

    sign_in(client, "owner")

    org.owner.refresh_from_db()
    assert org.owner.language == "en"
    assert page_language(client.get("/")) == "en"


def test_a_language_cookie_left_by_someone_else_does_not_change_the_preference(client, org):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert page_language(client.get(LOGIN_URL)) == "en"

    sign_in(client, "owner")

    org.owner.refresh_from_db()
    assert org.owner.language == "zh-hans"
    page = client.get("/")
    assert page_language(page) == "zh-hans"
    # ...and the cookie now follows the signed-in user's own preference.
    assert page.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"


def test_signing_out_forgets_a_language_chosen_on_the_sign_in_page(client, org):
    client.post(LANGUAGE_URL, {"language": "en", "next": LOGIN_URL})
    sign_in(client, "owner")
    client.post(LOGOUT_URL)

    sign_in(client, "colleague")

    org.colleague.refresh_from_db()
    assert org.colleague.language == "zh-hans"


# --- Health check, error pages, CSRF -------------------------------------------------


def test_healthz(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response.headers["Cache-Control"]


def test_an_unknown_url_gets_our_404_page(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert '<html lang="zh-Hans">' in html
    assert in_chinese("This page does not exist, or you may not open it.") in html


@pytest.fixture
def csrf_client(org) -> Client:
    checking = Client(enforce_csrf_checks=True)
    checking.force_login(org.owner)
    return checking


def test_the_language_switch_needs_a_csrf_token(csrf_client, org):
    response = csrf_client.post(LANGUAGE_URL, {"language": "en", "next": "/"})
    assert response.status_code == 403
    org.owner.refresh_from_db()
    assert org.owner.language == "zh-hans"


def test_signing_out_needs_a_csrf_token(csrf_client, org):
    assert csrf_client.post(LOGOUT_URL).status_code == 403
    assert csrf_client.get("/").status_code == 200


def test_forms_carry_the_csrf_token(csrf_client, org):
    page = csrf_client.get("/")
    token = page.context["csrf_token"]
    response = csrf_client.post(LOGOUT_URL, {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert csrf_client.get("/").status_code == 302
