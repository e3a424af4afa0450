"""`manage.py seed_demo`: the demo company and its customers; running it again converges."""

import random
from collections import Counter
from datetime import date, datetime, time, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts import access
from accounts.demo import DEMO_PASSWORD
from accounts.models import DataScope, Department, Role, User
from accounts.phones import normalize_phone
from crm.management.commands import seed_demo
from crm.models import (
    Activity,
    Change,
    ChangeAction,
    Contact,
    Customer,
    Dictionary,
    DictionaryItem,
    PoolEvent,
    Tag,
    Task,
    TaskStatus,
)

DEMO_USERNAMES = {"admin", "zhangwei", "wangfang", "lina", "liuyang", "chenjing", "zhaomin"}


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", force=True, stdout=out, **options)
    return out.getvalue()


def counts() -> tuple[int, int, int]:
    return Department.objects.count(), Role.objects.count(), User.objects.count()


def user(username: str) -> User:
    return User.objects.select_related("role", "department").get(username=username)


def test_the_demo_company(db):
    seed()

    assert counts() == (4, 4, 7)
    assert set(User.objects.values_list("username", flat=True)) == DEMO_USERNAMES
    assert {(d.name, d.parent.name if d.parent else None) for d in Department.objects.all()} == {
        ("销售部", None),
        ("销售一部", "销售部"),
        ("销售二部", "销售部"),
        ("客服部", None),
    }


def test_the_manager_sees_the_whole_sales_department(db):
    seed()
    manager = user("zhangwei")

    assert manager.department.name == "销售部"
    assert manager.role.data_scope == DataScope.DEPARTMENT_TREE
    team = {u.username for u in access.users_in_scope(manager)}
    assert team == {"zhangwei", "wangfang", "lina", "liuyang", "chenjing"}


def test_reps_sit_in_the_sales_teams_and_see_their_own_records(db):
    seed()
    departments = {
        username: user(username).department.path_display
        for username in ("wangfang", "lina", "liuyang", "chenjing")
    }
    assert departments == {
        "wangfang": "销售部 / 销售一部",
        "lina": "销售部 / 销售一部",
        "liuyang": "销售部 / 销售二部",
        "chenjing": "销售部 / 销售二部",
    }
    rep = user("wangfang")
    assert rep.role.data_scope == DataScope.OWN
    assert access.has_permission(rep, "note", "change")
    assert not access.has_permission(rep, "note", "delete")


def test_the_admin_is_a_superuser_and_customer_service_reads_everything(db):
    seed()
    admin = user("admin")
    assert admin.is_superuser and admin.is_staff
    service = user("zhaomin")
    assert service.role.data_scope == DataScope.ALL
    assert access.has_permission(service, "note", "view")
    assert not access.has_permission(service, "note", "change")


def test_demo_passwords_work_after_the_first_run(client, db):
    output = seed()

    assert all(user(username).check_password(DEMO_PASSWORD) for username in DEMO_USERNAMES)
    assert output.count(DEMO_PASSWORD) == len(DEMO_USERNAMES)
    response = client.post("/accounts/login/", {"username": "zhangwei", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.url == "/"


def test_a_second_run_changes_nothing_and_keeps_changed_passwords(db):
    seed()
    ids_before = sorted(User.objects.values_list("pk", flat=True))
    wangfang = user("wangfang")
    wangfang.set_password("my-own-secret-77")
    wangfang.save(update_fields=["password"])

    output = seed()

    assert counts() == (4, 4, 7)
    assert sorted(User.objects.values_list("pk", flat=True)) == ids_before
    assert "(unchanged)" in output
    assert DEMO_PASSWORD not in output
    assert user("wangfang").check_password("my-own-secret-77")


def test_a_second_run_restores_edited_demo_data(db):
    seed()
    Role.objects.filter(name="销售经理").update(data_scope=DataScope.OWN)
    User.objects.filter(username="lina").update(department=None)

    seed()

    assert Role.objects.get(name="销售经理").data_scope == DataScope.DEPARTMENT_TREE
    assert user("lina").department.name == "销售一部"


def test_reset_passwords_sets_them_back(db):
    seed()
    wangfang = user("wangfang")
    wangfang.set_password("my-own-secret-77")
    wangfang.save(update_fields=["password"])

    output = seed(reset_passwords=True)

    assert user("wangfang").check_password(DEMO_PASSWORD)
    assert "(unchanged)" not in output


def test_without_force_it_refuses_to_run_when_debug_is_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=StringIO())
    assert counts() == (0, 0, 0)


# --- The demo customers -------------------------------------------------------------

REPS = ("wangfang", "lina", "liuyang", "chenjing")


def record_counts() -> dict[str, int]:
    models = (Customer, Contact, Activity, Task, PoolEvent, Change, Tag)
    return {model.__name__: model.objects.count() for model in models}


def local_date(moment):
    return timezone.localtime(moment).date()


def test_a_few_hundred_customers_spread_over_the_reps_and_their_manager(db):
    seed()

    customers = Customer.objects.all()
    assert 200 <= customers.count() <= 500
    owned = Counter(customers.values_list("owner__username", flat=True))
    for rep in REPS:
        assert owned[rep] >= 30, rep
    assert owned["zhangwei"] >= 10
    assert set(owned) <= {*REPS, "zhangwei", None}


def test_about_fifteen_percent_sit_in_the_public_pool_some_returned_with_a_reason(db):
    seed()

    total = Customer.objects.count()
    pool = Customer.objects.filter(owner__isnull=True)
    assert 0.10 <= pool.count() / total <= 0.20
    returned = pool.filter(released_at__isnull=False)
    assert returned.exists()
    for customer in returned:
        event = customer.pool_events.get(action=PoolEvent.Action.RELEASE)
        assert event.user.username in REPS
        assert event.reason
        assert customer.changes.filter(action=ChangeAction.RELEASED, user=event.user).exists()
    claimed = PoolEvent.objects.filter(action=PoolEvent.Action.CLAIM)
    assert claimed.exists()
    assert all(e.customer.owner_id == e.user_id for e in claimed.select_related("customer"))


def test_records_refer_to_items_of_the_right_dictionaries(db):
    seed()

    for field, code in [
        ("type", "customer_type"),
        ("source", "customer_source"),
        ("level", "customer_level"),
        ("industry", "industry"),
    ]:
        codes = set(
            Customer.objects.exclude(**{field: None}).values_list(
                f"{field}__dictionary__code", flat=True
            )
        )
        assert codes == {code}, field
    assert not Customer.objects.filter(type=None).exists()
    assert not Customer.objects.filter(level=None).exists()
    assert set(Activity.objects.values_list("kind__dictionary__code", flat=True)) == {
        "activity_kind"
    }
    assert Tag.objects.filter(customers__isnull=False).distinct().count() >= 4


def test_companies_have_full_chinese_contact_details_and_normalised_phones(db):
    seed()

    companies = Customer.objects.filter(type__code="company")
    assert companies.count() > Customer.objects.filter(type__code="individual").count() > 0
    for customer in companies:
        assert customer.name.endswith("公司")
        assert customer.phone.startswith("+86")
        assert normalize_phone(customer.phone) == customer.phone
        assert "@" in customer.email
        assert "市" in customer.address
    assert companies.exclude(website="").count() > companies.count() // 2
    for mobile in Contact.objects.values_list("mobile", flat=True):
        assert normalize_phone(mobile) == mobile


def test_every_customer_has_one_to_three_contacts_exactly_one_primary(db):
    seed()

    per_customer = Customer.objects.annotate(
        contacts_count=Count("contacts"),
        primary_count=Count("contacts", filter=Q(contacts__is_primary=True)),
    )
    assert {c.contacts_count for c in per_customer} <= {1, 2, 3}
    assert {c.primary_count for c in per_customer} == {1}


def test_activities_of_the_last_90_days_match_the_customers_dates(db):
    seed()
    now = timezone.now()

    assert Activity.objects.count() >= Customer.objects.count()
    assert not Activity.objects.filter(occurred_at__lt=now - timedelta(days=91)).exists()
    assert not Activity.objects.filter(occurred_at__gt=now).exists()
    assert Activity.objects.filter(author__username="zhaomin").exists()
    for customer in Customer.objects.annotate(latest=Max("activities__occurred_at")):
        assert customer.last_activity_at == customer.latest
        open_follow_ups = customer.tasks.filter(status=TaskStatus.OPEN, activity__isnull=False)
        if customer.next_follow_up_at is None:
            assert not open_follow_ups.exists()
        else:
            assert customer.owner is not None
            follow_up = open_follow_ups.get()
            assert follow_up.due_at == customer.next_follow_up_at
            assert follow_up.assignee == customer.owner
            assert follow_up.activity.next_follow_up_at == customer.next_follow_up_at
            assert follow_up.activity.occurred_at == customer.last_activity_at
    stale = Customer.objects.filter(last_activity_at__lt=now - timedelta(days=30))
    assert stale.exists()


def test_every_rep_has_tasks_due_today_overdue_upcoming_and_done(db):
    seed()
    today = timezone.localdate()

    for username in (*REPS, "zhangwei"):
        tasks = list(Task.objects.filter(assignee__username=username))
        open_due = [local_date(t.due_at) for t in tasks if t.status == TaskStatus.OPEN]
        assert sum(d == today for d in open_due) >= 3, username
        assert sum(d < today for d in open_due) >= 3, username
        assert sum(d > today for d in open_due) >= 4, username
        done = [t for t in tasks if t.status == TaskStatus.DONE]
        assert done, username
        assert all(t.completed_at and t.completed_at <= timezone.now() for t in done)


def test_a_rep_sees_own_customers_and_the_pool_but_not_the_other_team(db):
    seed()
    wangfang, liuyang = user("wangfang"), user("liuyang")

    visible = Customer.objects.visible_to(wangfang)
    assert visible.filter(owner=wangfang).count() == Customer.objects.filter(owner=wangfang).count()
    assert visible.filter(owner=None).count() == Customer.objects.filter(owner=None).count()
    assert not visible.filter(owner=liuyang).exists()
    assert not Task.objects.visible_to(wangfang).filter(assignee=liuyang).exists()


def test_roles_may_work_every_record_type(db):
    seed()
    rep, manager, service = user("wangfang"), user("zhangwei"), user("zhaomin")

    for record_type in ("customer", "contact", "activity", "task"):
        assert access.has_permission(rep, record_type, "change")
        assert not access.has_permission(rep, record_type, "delete")
        assert access.has_permission(manager, record_type, "export")
        assert access.has_permission(service, record_type, "view")
    assert access.has_permission(service, "activity", "add")
    assert not access.has_permission(service, "customer", "change")
    assert rep.role.max_customers == 200
    assert manager.role.max_customers is None


def test_a_second_run_adds_no_records(db):
    output = seed()
    before = record_counts()

    again = seed()

    assert record_counts() == before
    assert "customers" in output
    assert "nothing added" in again


def test_a_deleted_demo_customer_comes_back_and_nothing_else_doubles(db):
    seed()
    before = record_counts()
    # One without leads or deals: their records stay with the pipelines seed.
    gone = Customer.objects.filter(
        owner__username="lina", leads__isnull=True, deals__isnull=True
    ).first()
    name = gone.name
    gone.delete()

    seed()

    assert record_counts() == before
    assert Customer.objects.get(name=name).owner.username == "lina"


def test_the_same_customers_are_planned_whatever_the_day(db):
    seed()
    users = {u.username: u for u in User.objects.all()}
    items = seed_demo._dictionary_items()

    def names(days_later: int) -> list[str]:
        rng = random.Random(seed_demo.SEED)
        when = timezone.now() + timedelta(days=days_later)
        return [p.customer.name for p in seed_demo.plan_customers(rng, users, items, when)]

    today = names(0)
    assert all(names(days) == today for days in range(1, 8))
    assert set(today) == set(Customer.objects.values_list("name", flat=True))


def test_missing_default_dictionaries_are_restored_first(db):
    # A live-server test database is flushed between tests: no migration data is left.
    DictionaryItem.objects.all().delete()
    Dictionary.objects.all().delete()

    seed()

    assert Dictionary.objects.filter(code="customer_level").exists()
    assert not Customer.objects.filter(level=None).exists()
    assert not Activity.objects.filter(kind=None).exists()


# --- Demo configuration: custom fields and field permissions (issue 5) -----------------


def test_the_demo_defines_the_custom_fields_a_chinese_b2b_seller_uses(db):
    from crm.fields import types
    from crm.models import CustomField

    seed()
    fields = {cf.key: cf for cf in CustomField.objects.filter(record_type="customer")}
    assert {"credit_code", "annual_revenue", "staff_count", "cooperation_intent"} <= set(fields)
    assert fields["credit_code"].unique and fields["credit_code"].pattern
    assert fields["cooperation_intent"].dictionary.code == "cooperation_intent"
    companies = Customer.objects.filter(type__code="company")
    codes = [c.custom["credit_code"] for c in companies]
    assert len(codes) == len(set(codes)) == companies.count()
    # Every demo value is valid for its field, so editing a demo record never trips on it.
    for customer in Customer.objects.all():
        for key, value in customer.custom.items():
            assert types.clean_value(fields[key], value, required=False) == value, (key, value)


def test_demo_roles_have_field_permissions_and_a_second_run_keeps_an_admins_change(db):
    seed()
    service = Role.objects.get(name="客服")
    assert service.field_permissions["customer"]["cf_commission_rate"] == "hidden"
    assert Role.objects.get(name="销售代表").field_access("customer", "cf_commission_rate") == (
        "readonly"
    )
    service.field_permissions["customer"]["cf_annual_revenue"] = "readonly"
    service.save()
    seed()
    service.refresh_from_db()
    assert service.field_permissions["customer"]["cf_annual_revenue"] == "readonly"
    assert access.field_access(user("zhaomin"), "customer", "cf_commission_rate") == "hidden"


# --- Dated around the day it runs -------------------------------------------------------


@pytest.mark.parametrize(
    "today",
    [
        date(2027, 6, 7),  # the 7th, a Monday: the week began today
        date(2026, 11, 7),  # the 7th, a Saturday
        date(2027, 3, 1),  # the 1st of a month, a Monday: this week is this month
    ],
    ids=["monday-7th", "saturday-7th", "monday-1st"],
)
def test_every_default_period_has_data_whatever_day_the_demo_is_seeded(db, today):
    """Seeded on any day, this week, this month and this quarter (the reports' and the
    manager's figures' default periods) each hold activities, stage moves, won and lost
    deals, new leads and done tasks."""
    from pipelines.models import Deal, DealStatus, Lead, StageHistory
    from reports.periods import period_for

    seed_demo.seed_demo(today=today)
    now = timezone.make_aware(datetime.combine(today, time(15, 0)))
    sales = User.objects.filter(username__in=[*REPS, "zhangwei"])
    team_calls = Q(kind__code__in=["call", "visit", "meeting"], author__in=sales)
    for key in ("week", "month", "quarter"):
        period = period_for(key, today=today)
        start, end = period.start, min(period.end, now)

        def within(field, start=start, end=end):
            return Q(**{f"{field}__gte": start, f"{field}__lt": end})

        assert Activity.objects.filter(within("occurred_at"), team_calls).exists(), key
        assert StageHistory.objects.filter(within("moved_at")).exists(), key
        assert Deal.objects.filter(within("closed_at"), status=DealStatus.WON).exists(), key
        assert Deal.objects.filter(within("closed_at"), status=DealStatus.LOST).exists(), key
        assert Lead.objects.filter(within("created_at")).exists(), key
        assert Task.objects.filter(within("created_at")).exists(), key
        assert Task.objects.filter(within("completed_at")).exists(), key
    # Nothing happens after the moment it was seeded.
    assert not Activity.objects.filter(occurred_at__gt=now).exists()
    assert not StageHistory.objects.filter(moved_at__gt=now).exists()
    assert not Deal.objects.filter(closed_at__gt=now).exists()


def test_every_rep_worked_this_week(db):
    """The manager's team table and the activity report's 本周 show every rep."""
    today = date(2027, 6, 7)
    seed_demo.seed_demo(today=today)
    week = Q(occurred_at__gte=timezone.make_aware(datetime.combine(today, time.min)))
    for username in (*REPS, "zhangwei"):
        assert Activity.objects.filter(week, author__username=username).exists(), username


def test_seeding_on_a_given_day_twice_adds_nothing(db):
    today = date(2027, 6, 7)
    seed_demo.seed_demo(today=today)
    before = record_counts()
    _rows, lines = seed_demo.seed_demo(today=today)
    assert record_counts() == before
    assert "nothing added" in " ".join(lines)
