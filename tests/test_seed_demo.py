"""`manage.py seed_demo`: the demo company, and running it again converges."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts import access
from accounts.demo import DEMO_PASSWORD
from accounts.models import DataScope, Department, Role, User

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
