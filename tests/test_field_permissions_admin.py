"""The role admin's field-permissions editor: a table of fields per record type, each
editable / read-only / hidden, saved into Role.field_permissions exactly as chosen."""

import pytest
from django.urls import reverse

from accounts import access
from accounts.models import DataScope
from crm.models import CustomField

from .admin_forms import admin_errors, admin_page_data
from .factories import CustomFieldFactory, RoleFactory

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def revenue(db) -> CustomField:
    return CustomFieldFactory(
        key="revenue", label="年营业额", label_en="Revenue", field_type="money"
    )


def role_url(role) -> str:
    return reverse("admin:accounts_role_change", args=[role.pk])


def post_role(client, role, **choices):
    """Post the role page as rendered with `choices` {"customer__phone": "hidden"}."""
    data = admin_page_data(client.get(role_url(role)))
    for name, level in choices.items():
        data[f"fp__{name}"] = level
    return client.post(role_url(role), data)


def test_the_editor_lists_every_field_of_every_record_type(admin_client, org, revenue):
    response = admin_client.get(role_url(org.rep_role))
    assert response.status_code == 200
    html = response.content.decode()
    for record_type in access.field_record_types():
        assert f'id="field-permissions-{record_type}"' in html
        for name, _label in access.field_names(record_type):
            for level in ("editable", "readonly", "hidden"):
                assert f'name="fp__{record_type}__{name}" value="{level}"' in html
    assert "Revenue" in html and "cf_revenue" in html
    # Nothing restricted yet: every field starts editable.
    assert html.count('value="editable" id="id_fp__customer__phone_0" checked') == 1


def test_the_add_page_has_the_editor_too(admin_client, revenue):
    response = admin_client.get(reverse("admin:accounts_role_add"))
    assert response.status_code == 200
    assert 'name="fp__customer__cf_revenue"' in response.content.decode()


def test_saves_exactly_what_was_chosen(admin_client, org, revenue):
    role = org.rep_role
    response = post_role(
        admin_client,
        role,
        customer__phone="readonly",
        customer__cf_revenue="hidden",
        customer__email="editable",
        contact__mobile="hidden",
    )
    assert response.status_code == 302, admin_errors(response)
    role.refresh_from_db()
    assert role.field_permissions == {
        "customer": {"phone": "readonly", "cf_revenue": "hidden"},
        "contact": {"mobile": "hidden"},
    }

    # The page shows the stored choices, and changing one back to editable removes it.
    html = admin_client.get(role_url(role)).content.decode()
    assert 'value="readonly" id="id_fp__customer__phone_1" checked' in html
    response = post_role(admin_client, role, customer__phone="editable", contact__mobile="editable")
    assert response.status_code == 302, admin_errors(response)
    role.refresh_from_db()
    assert role.field_permissions == {"customer": {"cf_revenue": "hidden"}}


def test_the_users_of_the_role_get_the_chosen_access(admin_client, org, revenue):
    post_role(admin_client, org.rep_role, customer__cf_revenue="hidden", customer__phone="readonly")
    owner = type(org.owner).objects.select_related("role").get(pk=org.owner.pk)
    assert access.field_access(owner, "customer", "cf_revenue") == "hidden"
    assert access.field_access(owner, "customer", "phone") == "readonly"
    assert access.field_access(owner, "customer", "email") == "editable"


def test_entries_of_fields_not_listed_are_kept(admin_client, org):
    role = RoleFactory(
        name="客服",
        data_scope=DataScope.ALL,
        field_permissions={
            "customer": {"cf_gone": "hidden", "phone": "hidden"},
            "deal": {"amount": "readonly"},  # a record type not installed here
        },
    )
    response = post_role(admin_client, role, customer__phone="editable", customer__email="readonly")
    assert response.status_code == 302, admin_errors(response)
    role.refresh_from_db()
    assert role.field_permissions == {
        "customer": {"cf_gone": "hidden", "email": "readonly"},
        "deal": {"amount": "readonly"},
    }


def test_an_unknown_level_is_refused(admin_client, org):
    response = post_role(admin_client, org.rep_role, customer__phone="invisible")
    assert response.status_code == 200
    assert "fp__customer__phone" in admin_errors(response)
    org.rep_role.refresh_from_db()
    assert org.rep_role.field_permissions == {}


def test_other_role_settings_still_save(admin_client, org):
    role = org.rep_role
    data = admin_page_data(admin_client.get(role_url(role)))
    data["name"] = "高级销售"
    data["fp__customer__address"] = "hidden"
    response = admin_client.post(role_url(role), data)
    assert response.status_code == 302, admin_errors(response)
    role.refresh_from_db()
    assert role.name == "高级销售"
    assert role.field_permissions == {"customer": {"address": "hidden"}}
    assert role.permissions  # the record permissions were posted back unchanged
