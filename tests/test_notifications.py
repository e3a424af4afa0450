"""In-app notifications (issue 15): the header's bell with the unread count, the
notifications page (one's own only, newest first, read and unread, each opening its
record while the reader may still see it), the daily digest setting and email, sent at
the hour each person chose (in the site's time zone: people have none of their own)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import DataScope
from automation.models import Notification, NotificationKind, NotificationSettings, Rule
from automation.notifications import notify, send_digests, settings_for, unread_count
from pipelines.models import Deal

from .factories import CustomerFactory, DealFactory, UserFactory, crm_permissions

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
LIST = "/notifications/"
BAD_IDS = ("１２", "99999999999999999999", "%00", "0", "-1", "abc")


def site_name(language: str) -> str:
    """The product's name as a person reading `language` sees it (客道 CRM, Kedao CRM)."""
    with translation.override(language):
        return str(settings.CRM_SITE_NAME)


@pytest.fixture
def team(org):
    perms = crm_permissions(actions=("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        user = org.set_scope(getattr(org, name), DataScope.OWN, perms)
        user.language = "en"
        user.save(update_fields=["language"])
        setattr(org, name, user)
    return org


@pytest.fixture
def deal(team) -> Deal:
    return DealFactory(owner=team.owner, title="数控机床采购")


def signed_in(client, user):
    client.force_login(user)
    return client


def bell_count(response) -> str | None:
    """The badge's text in the header, None when there is no badge."""
    match = re.search(r'data-testid="bell-count">([^<]*)<', response.content.decode())
    return match.group(1) if match else None


def shown_titles(response) -> list[str]:
    return [item.title for item in response.context["items"]]


def many(user, n: int, **fields) -> list[Notification]:
    now = timezone.now()
    return Notification.objects.bulk_create(
        Notification(
            user=user, title=f"通知 {i}", created_at=now - timedelta(minutes=n - i), **fields
        )
        for i in range(n)
    )


# --- The bell --------------------------------------------------------------------------


@pytest.mark.parametrize(("unread", "badge"), [(0, None), (3, "3"), (99, "99"), (150, "99+")])
def test_the_bell_shows_the_unread_count(client, team, unread, badge):
    many(team.owner, unread)
    many(team.owner, 2, read_at=timezone.now())  # read ones are not counted
    many(team.colleague, 5)  # nor someone else's
    response = signed_in(client, team.owner).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="bell"' in html
    assert f'href="{LIST}"' in html
    assert bell_count(response) == badge
    assert unread_count(team.owner) == unread


def test_the_bell_costs_one_count_query(client, team):
    """One COUNT of the unread (the partial index notification_unread) a page."""
    many(team.owner, 3)
    client = signed_in(client, team.owner)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    asked = [q["sql"] for q in captured.captured_queries if "automation_notification" in q["sql"]]
    assert len(asked) == 1 and "COUNT" in asked[0]


def test_anonymous_visitors_see_no_bell_and_are_sent_to_sign_in(client, team):
    response = client.get(reverse("accounts:login"))
    assert 'data-testid="bell"' not in response.content.decode()
    note = notify(user=team.owner, title="报价提醒")
    for method, path in (
        ("get", LIST),
        ("get", f"{LIST}{note.pk}/open/"),
        ("post", f"{LIST}{note.pk}/read/"),
        ("post", f"{LIST}{note.pk}/unread/"),
        ("post", f"{LIST}read-all/"),
        ("post", f"{LIST}settings/"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("accounts:login")), path
    assert Notification.objects.get().read_at is None


# --- The page --------------------------------------------------------------------------


def test_the_page_lists_only_ones_own_notifications_newest_first(client, team, deal):
    rule = Rule.objects.create(name="报价提醒", record_type="deal", trigger="stage_entered")
    notify(user=team.owner, title="较早的通知", body="第一条")
    notify(user=team.owner, title="报价两天未推进", body="请跟进", record=deal, rule=rule)
    notify(user=team.outsider, title="别人的通知")
    response = signed_in(client, team.owner).get(LIST)
    assert response.status_code == 200
    assert shown_titles(response) == ["报价两天未推进", "较早的通知"]
    html = response.content.decode()
    assert "别人的通知" not in html
    assert "请跟进" in html and "报价提醒" in html  # the body and the rule's name
    newest = response.context["items"][0]
    assert newest.record_url == reverse("automation:open", args=[newest.pk])
    assert newest.record_url in html


def test_the_unread_tab_and_pages_of_25(client, team):
    many(team.owner, 30)
    many(team.owner, 4, read_at=timezone.now())
    client = signed_in(client, team.owner)
    first = client.get(LIST)
    assert len(first.context["items"]) == 25
    assert first.context["page_obj"].paginator.count == 34
    assert len(client.get(LIST, {"page": "2"}).context["items"]) == 9
    unread = client.get(LIST, {"show": "unread"})
    assert unread.context["page_obj"].paginator.count == 30
    assert all(not item.is_read for item in unread.context["items"])
    assert "show=unread&amp;page=2" in unread.content.decode()
    # Pages past the end, and nonsense, are the nearest page, never an error.
    for page in ("999", "0", "-3", "x", "10" * 30):
        assert client.get(LIST, {"page": page, "show": "unread"}).status_code == 200


def test_marking_one_read_and_unread_and_all_read(client, team):
    first = notify(user=team.owner, title="甲")
    notify(user=team.owner, title="乙")
    notify(user=team.owner, title="丙")
    theirs = notify(user=team.colleague, title="丁")
    client = signed_in(client, team.owner)
    back = f"{LIST}?show=unread"

    response = client.post(f"{LIST}{first.pk}/read/", {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    first.refresh_from_db()
    assert first.is_read and unread_count(team.owner) == 2

    client.post(f"{LIST}{first.pk}/unread/")
    first.refresh_from_db()
    assert not first.is_read and unread_count(team.owner) == 3

    response = client.post(f"{LIST}read-all/", {"next": "https://evil.example/"})
    assert response["Location"] == LIST  # never away from the list
    assert unread_count(team.owner) == 0
    theirs.refresh_from_db()
    assert not theirs.is_read  # someone else's stay as they were
    assert bell_count(client.get(LIST)) is None


def test_opening_a_notification_marks_it_read_and_goes_to_its_record(client, team, deal):
    note = notify(user=team.owner, title="报价两天未推进", record=deal)
    response = signed_in(client, team.owner).get(f"{LIST}{note.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == reverse("deals:detail", args=[deal.pk])
    note.refresh_from_db()
    assert note.is_read


def test_a_record_no_longer_visible_is_not_linked(client, team, deal):
    """The deal went to a colleague: its notification stays, without a link, and
    opening it goes back to the list saying why."""
    note = notify(user=team.owner, title="报价两天未推进", record=deal)
    customer_note = notify(user=team.owner, title="客户提醒", record=CustomerFactory(owner=None))
    Deal.objects.filter(pk=deal.pk).update(owner=team.colleague)
    client = signed_in(client, team.owner)
    response = client.get(LIST)
    rows = {item.title: item for item in response.context["items"]}
    assert rows["报价两天未推进"].record_url == ""
    assert rows["客户提醒"].record_url != ""  # a public-pool customer: everyone sees it
    html = response.content.decode()
    assert reverse("automation:open", args=[note.pk]) not in html
    assert reverse("deals:detail", args=[deal.pk]) not in html
    assert 'data-testid="notification-gone"' in html

    response = client.get(f"{LIST}{note.pk}/open/", follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "The record of this notification is no longer yours to see."
    ]
    note.refresh_from_db()
    assert note.is_read
    opened = client.get(f"{LIST}{customer_note.pk}/open/")
    assert opened["Location"] == reverse("customers:detail", args=[customer_note.record_id])


def test_someone_elses_notification_is_not_found(client, team):
    theirs = notify(user=team.colleague, title="别人的通知")
    client = signed_in(client, team.owner)
    assert client.get(f"{LIST}{theirs.pk}/open/").status_code == 404
    assert client.post(f"{LIST}{theirs.pk}/read/").status_code == 404
    Notification.objects.filter(pk=theirs.pk).update(read_at=timezone.now())
    assert client.post(f"{LIST}{theirs.pk}/unread/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_read  # untouched


@pytest.mark.parametrize("bad", BAD_IDS)
def test_garbage_ids_are_refused_never_an_error(client, team, bad):
    notify(user=team.owner, title="甲")
    client = signed_in(client, team.owner)
    for method, action in (("get", "open"), ("post", "read"), ("post", "unread")):
        response = getattr(client, method)(f"{LIST}{bad}/{action}/")
        assert 400 <= response.status_code < 500, (method, action, response.status_code)
    assert client.get(LIST, {"show": bad, "page": bad}).status_code in (200, 400)
    assert unread_count(team.owner) == 1


def test_the_buttons_need_a_post(client, team):
    note = notify(user=team.owner, title="甲")
    client = signed_in(client, team.owner)
    for path in (f"{LIST}{note.pk}/read/", f"{LIST}{note.pk}/unread/", f"{LIST}read-all/"):
        assert client.get(path).status_code == 405
    assert client.post(LIST).status_code == 405
    assert unread_count(team.owner) == 1


# --- The daily digest setting ----------------------------------------------------------


def test_the_digest_setting_saves(client, team):
    client = signed_in(client, team.owner)
    page = client.get(LIST).content.decode()
    assert 'name="daily_digest"' in page and "owner@example.com" in page
    response = client.post(f"{LIST}settings/", {"daily_digest": "on"}, follow=True)
    assert settings_for(team.owner).daily_digest is True
    assert [str(m) for m in response.context["messages"]] == [
        "Saved: you will get a daily email of unread notifications at 08:00."
    ]
    assert 'name="daily_digest" class="form-check-input" data-testid="daily-digest" checked' in (
        response.content.decode()
    )
    response = client.post(f"{LIST}settings/", {}, follow=True)
    assert settings_for(team.owner).daily_digest is False
    assert [str(m) for m in response.context["messages"]] == ["Saved: no daily email."]
    assert NotificationSettings.objects.filter(user=team.owner).count() == 1


def test_the_digest_needs_an_email_address(client, team):
    team.owner.email = ""
    team.owner.save(update_fields=["email"])
    client = signed_in(client, team.owner)
    assert 'data-testid="no-email"' in client.get(LIST).content.decode()
    response = client.post(f"{LIST}settings/", {"daily_digest": "on"}, follow=True)
    assert settings_for(team.owner).daily_digest is True
    (message,) = [str(m) for m in response.context["messages"]]
    assert "needs an email address" in message


# --- The digest email ------------------------------------------------------------------


def opt_in(user):
    prefs = settings_for(user)
    prefs.daily_digest = True
    prefs.save()


def digest(when, callbacks) -> int:
    with callbacks(execute=True):
        return send_digests(now=when)


def at(hour: int, minute: int = 0, day: int = 7) -> datetime:
    """A beat on 2026-12-`day` at this local (TIME_ZONE) time."""
    return timezone.make_aware(datetime(2026, 12, day, hour, minute))


def test_the_digest_mails_each_opted_in_person_their_unread_once_a_day(
    team, django_capture_on_commit_callbacks
):
    morning = timezone.localtime().replace(hour=8, minute=0)
    opt_in(team.owner)
    opt_in(team.colleague)
    notify(user=team.owner, title="报价两天未推进", body="请跟进 数控机床采购")
    notify(user=team.owner, title="线索待分配")
    read = notify(user=team.owner, title="已读的通知")
    Notification.objects.filter(pk=read.pk).update(read_at=morning)
    for title, hours in (("线索待分配", 2), ("报价两天未推进", 1)):
        Notification.objects.filter(title=title).update(created_at=morning - timedelta(hours=hours))
    notify(user=team.outsider, title="没有订阅的人")  # not opted in
    # The colleague opted in but has nothing unread: no email.

    assert digest(morning, django_capture_on_commit_callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@example.com"]
    assert message.subject == f"{site_name('en')}: 2 unread notifications"
    assert "报价两天未推进" in message.body and "请跟进 数控机床采购" in message.body
    assert "线索待分配" in message.body
    assert "已读的通知" not in message.body and "没有订阅的人" not in message.body
    assert message.body.index("线索待分配") < message.body.index("报价两天未推进")  # oldest first

    # Again the same day: nothing, even with something new.
    notify(user=team.owner, title="新的通知")
    assert digest(morning + timedelta(hours=3), django_capture_on_commit_callbacks) == 0
    assert len(mail.outbox) == 1

    # The next day: only what no digest listed yet.
    assert digest(morning + timedelta(days=1), django_capture_on_commit_callbacks) == 1
    assert len(mail.outbox) == 2
    assert "新的通知" in mail.outbox[1].body
    assert "报价两天未推进" not in mail.outbox[1].body
    assert mail.outbox[1].subject.startswith(f"{site_name('en')}: 1 unread notification")


def test_the_digest_is_in_the_persons_language(team, django_capture_on_commit_callbacks):
    chinese = UserFactory(username="zh", language="zh-hans")
    opt_in(chinese)
    opt_in(team.owner)
    for user in (chinese, team.owner):
        notify(user=user, title="报价提醒")
        notify(user=user, title="线索待分配", kind=NotificationKind.ASSIGNMENT)

    assert digest(at(9), django_capture_on_commit_callbacks) == 2
    subjects = {message.to[0]: message.subject for message in mail.outbox}
    assert subjects["zh@example.com"] == f"{site_name('zh-hans')}：2 条未读通知"
    assert subjects["owner@example.com"] == f"{site_name('en')}: 2 unread notifications"
    english = next(m for m in mail.outbox if m.to == ["owner@example.com"])
    assert english.body.startswith("Hello 王芳,")
    assert "They are on the notifications page" in english.body


def test_no_digest_without_an_email_address_or_for_an_inactive_person(
    team, django_capture_on_commit_callbacks
):
    team.owner.email = ""
    team.owner.save(update_fields=["email"])
    team.colleague.is_active = False
    team.colleague.save(update_fields=["is_active"])
    for user in (team.owner, team.colleague):
        opt_in(user)
        notify(user=user, title="报价提醒")
    assert digest(at(9), django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []


# --- The digest's hour -------------------------------------------------------------------


def choose_hour(user, hour: int) -> None:
    NotificationSettings.objects.filter(user=user).update(digest_hour=hour)


def recipients(since: int = 0) -> list[str]:
    return [message.to[0] for message in mail.outbox[since:]]


def test_the_digest_goes_out_on_the_first_beat_at_or_after_the_persons_hour(
    team, django_capture_on_commit_callbacks
):
    def beat(when) -> list[str]:
        before = len(mail.outbox)
        digest(when, django_capture_on_commit_callbacks)
        return recipients(before)

    opt_in(team.owner)  # the default hour: 08:00
    opt_in(team.colleague)
    choose_hour(team.colleague, 18)
    assert settings_for(team.owner).digest_hour == 8
    for user in (team.owner, team.colleague):
        notify(user=user, title="报价提醒")

    # Beats every 15 minutes: before the hour, nothing.
    assert beat(at(0)) == []
    assert beat(at(7, 45)) == []
    assert beat(at(7, 59)) == []
    assert NotificationSettings.objects.get(user=team.owner).digest_sent_on is None
    # The first beat at the hour sends it; the ones after it, nothing more that day.
    assert beat(at(8)) == ["owner@example.com"]
    notify(user=team.owner, title="新的通知")
    assert beat(at(8, 15)) == []
    assert beat(at(17, 45)) == []
    # The colleague's hour comes later the same day.
    assert beat(at(18)) == ["colleague@example.com"]
    assert beat(at(23, 45)) == []
    # The next day: again at each one's hour, with what no digest listed yet.
    assert beat(at(0, day=8)) == []
    assert beat(at(7, 45, day=8)) == []
    assert beat(at(8, 15, day=8)) == ["owner@example.com"]
    assert "新的通知" in mail.outbox[-1].body and "报价提醒" not in mail.outbox[-1].body
    notify(user=team.colleague, title="第二天的通知")
    assert beat(at(18, 30, day=8)) == ["colleague@example.com"]
    assert NotificationSettings.objects.get(user=team.owner).digest_sent_on.isoformat() == (
        "2026-12-08"
    )


def test_a_beat_after_the_hour_sends_the_days_digest_once(team, django_capture_on_commit_callbacks):
    """Opting in (or the worker coming back) after one's hour: the next beat sends that
    day's digest, and only one."""
    opt_in(team.owner)
    notify(user=team.owner, title="报价提醒")
    assert digest(at(15, 30), django_capture_on_commit_callbacks) == 1
    notify(user=team.owner, title="新的通知")
    assert digest(at(15, 45), django_capture_on_commit_callbacks) == 0
    # Choosing a later hour once today's digest went out does not send another today.
    choose_hour(team.owner, 20)
    assert digest(at(20), django_capture_on_commit_callbacks) == 0
    assert digest(at(19, 45, day=8), django_capture_on_commit_callbacks) == 0
    assert digest(at(20, day=8), django_capture_on_commit_callbacks) == 1
    assert recipients() == ["owner@example.com", "owner@example.com"]


def test_at_the_hour_with_nothing_unread_no_email_and_the_day_is_done(
    team, django_capture_on_commit_callbacks
):
    """As before the hour was chosen: nothing unread, no email; what comes later that day
    waits for the next day's digest."""
    opt_in(team.owner)
    assert digest(at(8), django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []
    notify(user=team.owner, title="报价提醒")
    assert digest(at(9), django_capture_on_commit_callbacks) == 0
    assert digest(at(8, day=8), django_capture_on_commit_callbacks) == 1


def test_the_hour_and_the_day_are_the_sites_time_zone(
    team, settings, django_capture_on_commit_callbacks
):
    """People have no time zone of their own: the hour is TIME_ZONE's (Asia/Shanghai,
    UTC+8, by default), and so is the day a digest was sent on."""
    callbacks = django_capture_on_commit_callbacks

    def utc(day: int, hour: int, minute: int) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=UTC)

    assert settings.TIME_ZONE == "Asia/Shanghai"
    opt_in(team.owner)
    notify(user=team.owner, title="报价提醒")
    # 23:45 UTC on the 6th is 07:45 on the 7th in Shanghai: before the hour.
    assert digest(utc(6, 23, 45), callbacks) == 0
    # 00:00 UTC on the 7th is 08:00 in Shanghai: the hour.
    assert digest(utc(7, 0, 0), callbacks) == 1
    assert NotificationSettings.objects.get(user=team.owner).digest_sent_on.isoformat() == (
        "2026-12-07"
    )
    # 20:00 UTC on the 7th is already the 8th, 04:00, in Shanghai: not yet the hour.
    notify(user=team.owner, title="新的通知")
    assert digest(utc(7, 20, 0), callbacks) == 0

    # Another site time zone: 08:00 in New York is 13:00 UTC (winter).
    settings.TIME_ZONE = "America/New_York"
    assert digest(utc(8, 12, 45), callbacks) == 0
    assert digest(utc(8, 13, 0), callbacks) == 1
    assert NotificationSettings.objects.get(user=team.owner).digest_sent_on.isoformat() == (
        "2026-12-08"
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL: concurrent sessions")
@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_one_digest(team, monkeypatch):
    """Both beats have read the person as due before either claims the day: the second
    claim waits for the first's row lock, then no longer matches."""
    opt_in(team.owner)
    notify(user=team.owner, title="报价提醒")
    barrier = threading.Barrier(2)
    real_atomic = transaction.atomic

    class Transactions:
        on_commit = staticmethod(transaction.on_commit)

        @staticmethod
        def atomic(*args, **kwargs):
            barrier.wait(timeout=10)  # each beat is in the loop, about to claim
            return real_atomic(*args, **kwargs)

    monkeypatch.setattr("automation.notifications.transaction", Transactions)
    results: list[int] = []

    def beat() -> None:
        try:
            results.append(send_digests(now=at(8)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [0, 1]
    assert recipients() == ["owner@example.com"]
    assert Notification.objects.get(user=team.owner).digested_at is not None


# --- The hour on the notifications page ----------------------------------------------------


def hour_options(page: str) -> tuple[list[str], list[str]]:
    """The hour select's option labels, and the selected one(s)."""
    select = re.search(r'<select name="digest_hour".*?</select>', page, re.S).group(0)
    labels = re.findall(r"<option [^>]*>([^<]*)</option>", select)
    chosen = re.findall(r"<option [^>]*selected>([^<]*)</option>", select)
    return labels, chosen


def test_the_hour_is_a_select_next_to_the_switch_and_saves(client, team):
    client = signed_in(client, team.owner)
    page = client.get(LIST).content.decode()
    labels, chosen = hour_options(page)
    assert labels == [f"{hour:02d}:00" for hour in range(24)]
    assert chosen == ["08:00"]
    assert '<label class="text-secondary text-nowrap" for="id_digest_hour">Send at</label>' in page
    assert "Asia/Shanghai" in page

    response = client.post(
        f"{LIST}settings/",
        {"daily_digest": "on", "digest_hour": "18", "next": f"{LIST}?show=unread"},
    )
    assert response.status_code == 302 and response["Location"] == f"{LIST}?show=unread"
    prefs = settings_for(team.owner)
    assert (prefs.daily_digest, prefs.digest_hour) == (True, 18)
    response = client.get(response["Location"])
    assert [str(m) for m in response.context["messages"]] == [
        "Saved: you will get a daily email of unread notifications at 18:00."
    ]
    assert hour_options(response.content.decode())[1] == ["18:00"]

    # Midnight is an hour too; a post without an hour (the switch alone) keeps it.
    client.post(f"{LIST}settings/", {"daily_digest": "on", "digest_hour": "0"})
    assert settings_for(team.owner).digest_hour == 0
    client.post(f"{LIST}settings/", {})
    prefs = settings_for(team.owner)
    assert (prefs.daily_digest, prefs.digest_hour) == (False, 0)


@pytest.mark.parametrize(
    "bad", ["25", "24", "-1", "abc", "１２", "٣", "8.0", " 8", "99999999999999999999"]
)
def test_a_bad_hour_is_a_form_error_and_saves_nothing(client, team, bad):
    prefs = settings_for(team.owner)
    prefs.digest_hour = 9
    prefs.save()
    client = signed_in(client, team.owner)
    notify(user=team.owner, title="报价提醒")
    response = client.post(
        f"{LIST}settings/",
        {"daily_digest": "on", "digest_hour": bad, "next": f"{LIST}?show=unread"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'data-testid="error-digest_hour">Choose an hour from 00:00 to 23:00.<', page)
    assert 'is-invalid" data-testid="digest-hour" aria-invalid="true"' in page
    prefs.refresh_from_db()
    assert (prefs.daily_digest, prefs.digest_hour) == (False, 9)
    # The page is the list where the form was (its tab), its buttons coming back there.
    assert response.context["show"] == "unread"
    assert shown_titles(response) == ["报价提醒"]
    assert f'name="next" value="{LIST}?show=unread"' in page
    assert hour_options(page)[1] == ["09:00"]
