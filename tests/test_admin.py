"""The admin for users, departments, roles and security notices, used as a superuser."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import DataScope, Department, Role, User

from .admin_forms import admin_page_data
from .factories import RoleFactory, SecurityNoticeFactory


@pytest.fixture
def admin_client(client, org):
    client.force_login(org.admin)
    return client


def has_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def errors_in_chinese(response, field) -> list[str]:
    with translation.override("zh-hans"):
        return [str(e) for e in response.context["adminform"].form.errors[field]]


def change_url(obj) -> str:
    return reverse(f"admin:accounts_{obj._meta.model_name}_change", args=[obj.pk])


# --- Lists ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["user", "department", "role", "securitynotice"])
def test_the_changelists_render(admin_client, org, model):
    SecurityNoticeFactory(user=org.owner)
    response = admin_client.get(reverse(f"admin:accounts_{model}_changelist"))
    assert response.status_code == 200


def test_the_department_list_shows_each_tree_path(admin_client, org):
    response = admin_client.get(reverse("admin:accounts_department_changelist"))
    assert "销售部 / 销售一部 / 销售一部-华东" in response.content.decode()


def test_the_admin_is_in_the_users_language(admin_client, org):
    response = admin_client.get(reverse("admin:index"))
    assert response.headers["Content-Language"] == "zh-hans"
    assert "注销" in response.content.decode()  # "Log out", from Django's catalogue


def test_the_change_pages_render(admin_client, org):
    notice = SecurityNoticeFactory(user=org.owner)
    for obj in (org.owner, org.team1, org.rep_role, notice):
        assert admin_client.get(change_url(obj)).status_code == 200


def test_security_notices_cannot_be_added_or_edited(admin_client, org):
    notice = SecurityNoticeFactory(user=org.owner)
    assert admin_client.get(reverse("admin:accounts_securitynotice_add")).status_code == 403
    response = admin_client.post(change_url(notice), {"result": "tampered"})
    assert response.status_code == 403
    notice.refresh_from_db()
    assert notice.result == ""


def test_someone_who_is_not_staff_is_sent_to_the_admin_sign_in(client, org):
    client.force_login(org.owner)
    for url in (reverse("admin:index"), reverse("admin:accounts_role_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(f"{reverse('admin:login')}?next=")


# --- Roles ---------------------------------------------------------------------------


def test_the_role_form_groups_permissions_by_record_type(admin_client, org):
    response = admin_client.get(reverse("admin:accounts_role_add"))
    assert response.status_code == 200
    choices = dict(response.context["adminform"].form.fields["permissions"].choices)
    assert [value for value, _label in choices["notes"]] == [
        "note.view",
        "note.add",
        "note.change",
        "note.delete",
        "note.export",
        "note.import",
    ]
    html = response.content.decode()
    assert 'type="checkbox" name="permissions" value="note.view"' in html
    assert 'value="pooled.change"' in html


def test_creating_a_role_stores_the_ticked_permissions_sorted(admin_client, org):
    response = admin_client.post(
        reverse("admin:accounts_role_add"),
        {
            "name": "销售主管",
            "description": "",
            "data_scope": DataScope.DEPARTMENT,
            "permissions": ["note.view", "note.change"],
        },
    )
    assert response.status_code == 302
    role = Role.objects.get(name="销售主管")
    assert role.permissions == ["note.change", "note.view"]
    assert role.data_scope == DataScope.DEPARTMENT


def test_a_role_that_may_change_but_not_view_is_refused_with_a_clear_message(admin_client, org):
    response = admin_client.post(
        reverse("admin:accounts_role_add"),
        {
            "name": "只改不看",
            "description": "",
            "data_scope": DataScope.OWN,
            "permissions": ["note.change", "pooled.view", "pooled.export"],
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["permissions"]
    assert errors == ["修改、删除或导出也需要“查看”权限：notes。"]
    assert not Role.objects.filter(name="只改不看").exists()


def test_a_role_with_an_unknown_permission_is_refused(admin_client, org):
    response = admin_client.post(
        reverse("admin:accounts_role_add"),
        {"name": "坏角色", "data_scope": DataScope.OWN, "permissions": ["note.fly"]},
    )
    assert response.status_code == 200
    assert "permissions" in response.context["adminform"].form.errors
    assert not Role.objects.filter(name="坏角色").exists()


def test_a_permission_for_a_record_type_not_installed_here_survives_saving(admin_client, org):
    role = RoleFactory(name="合同管理", permissions=["contract.view", "note.view"])
    page = admin_client.get(change_url(role))
    form = page.context["adminform"].form
    assert form["permissions"].value() == ["note.view"]

    data = admin_page_data(page)
    data["permissions"] = ["note.view", "note.change"]
    response = admin_client.post(change_url(role), data)

    assert response.status_code == 302
    role.refresh_from_db()
    assert role.permissions == ["contract.view", "note.change", "note.view"]


# --- Departments ---------------------------------------------------------------------


def test_a_department_cannot_be_moved_under_its_own_descendant(admin_client, org):
    page = admin_client.get(change_url(org.sales))
    data = admin_page_data(page)
    data["parent"] = str(org.team1_east.pk)

    response = admin_client.post(change_url(org.sales), data)

    assert response.status_code == 200
    [error] = errors_in_chinese(response, "parent")
    assert has_chinese(error)
    assert error in response.content.decode()
    org.sales.refresh_from_db()
    assert org.sales.parent is None


def test_a_department_cannot_be_its_own_parent(admin_client, org):
    page = admin_client.get(change_url(org.team1))
    data = admin_page_data(page)
    data["parent"] = str(org.team1.pk)

    response = admin_client.post(change_url(org.team1), data)

    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    org.team1.refresh_from_db()
    assert org.team1.parent == org.sales


def test_a_department_with_members_can_be_moved(admin_client, org):
    page = admin_client.get(change_url(org.team1_east))
    data = admin_page_data(page)
    data["parent"] = str(org.team2.pk)

    response = admin_client.post(change_url(org.team1_east), data)

    assert response.status_code == 302
    org.team1_east.refresh_from_db()
    assert org.team1_east.parent == org.team2
    assert list(org.team1_east.members.all()) == [org.sub_member]


def test_adding_a_department(admin_client, org):
    page = admin_client.get(reverse("admin:accounts_department_add"))
    data = admin_page_data(page)
    data.update({"name": "销售三部", "parent": str(org.sales.pk), "sort_order": "30"})
    response = admin_client.post(reverse("admin:accounts_department_add"), data)
    assert response.status_code == 302
    assert Department.objects.get(name="销售三部").parent == org.sales


# --- Users ---------------------------------------------------------------------------


def _post_user_change(admin_client, user: User, **changes):
    page = admin_client.get(change_url(user))
    data = admin_page_data(page)
    data.update(changes)
    return admin_client.post(change_url(user), data)


def test_a_phone_number_is_stored_in_international_form(admin_client, org):
    response = _post_user_change(admin_client, org.owner, phone="138 0013 8000")
    assert response.status_code == 302
    org.owner.refresh_from_db()
    assert org.owner.phone == "+8613800138000"


def test_a_bad_phone_number_is_a_form_error(admin_client, org):
    response = _post_user_change(admin_client, org.owner, phone="abc")
    assert response.status_code == 200
    [error] = errors_in_chinese(response, "phone")
    assert has_chinese(error)
    assert "“abc”" in error
    org.owner.refresh_from_db()
    assert org.owner.phone == ""


def test_saving_a_user_unchanged_keeps_everything(admin_client, org):
    before = User.objects.values().get(pk=org.owner.pk)
    response = _post_user_change(admin_client, org.owner)
    assert response.status_code == 302
    assert User.objects.values().get(pk=org.owner.pk) == before


def test_adding_a_user_with_department_and_role(admin_client, org):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "newrep",
            "name": "新人",
            "email": "newrep@example.com",
            "department": str(org.team2.pk),
            "role": str(org.rep_role.pk),
            "password1": "a-much-better-passphrase-42",
            "password2": "a-much-better-passphrase-42",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="newrep")
    assert (user.department, user.role) == (org.team2, org.rep_role)
    assert user.check_password("a-much-better-passphrase-42")
