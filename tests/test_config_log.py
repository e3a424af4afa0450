"""The configuration log: every change to a dictionary, its items, a custom field or a
role is logged with who, when, how (admin, import_config, shell) and field-level
old → new values."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from accounts.models import DataScope, Role
from crm.config import log
from crm.config.log import acting_as, readable_changes
from crm.models import ConfigChange, CustomField, Dictionary, DictionaryItem, FieldType

from .admin_forms import admin_page_data
from .factories import NoteFactory, RoleFactory, UserFactory

# --- helpers ---------------------------------------------------------------------------


def page_data(response) -> dict:
    assert response.status_code == 200, response.status_code
    return admin_page_data(response)


def assert_saved(response):
    if response.status_code != 302:
        errors = response.context["adminform"].form.errors if response.context else None
        inline_errors = [
            inline.formset.errors
            for inline in (response.context or {}).get("inline_admin_formsets", [])
        ]
        pytest.fail(f"not saved: {errors} {inline_errors}")


def changes_of(row: ConfigChange) -> dict:
    return {c["field"]: (c["old"], c["new"]) for c in row.changes}


def rows(model: str, action: str | None = None):
    queryset = ConfigChange.objects.filter(model=model).order_by("id")
    return list(queryset.filter(action=action) if action else queryset)


@pytest.fixture
def staff(db):
    return UserFactory(username="boss", name="管理员", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


# --- through the admin -----------------------------------------------------------------


def test_dictionary_and_items_created_and_changed_in_the_admin_are_logged(admin_client, staff):
    add_url = reverse("admin:crm_dictionary_add")
    data = page_data(admin_client.get(add_url))
    data.update(
        {
            "code": "intent",
            "name": "合作意向",
            "items-TOTAL_FORMS": "1",
            "items-0-code": "high",
            "items-0-label": "高",
            "items-0-label_en": "High",
            "items-0-order": "10",
            "items-0-color": "red",
            "items-0-is_active": "on",
        }
    )
    assert_saved(admin_client.post(add_url, data))
    dictionary = Dictionary.objects.get(code="intent")

    [created] = rows("crm.dictionary", "create")
    assert created.user == staff
    assert created.source == "admin"
    assert created.object_id == str(dictionary.pk)
    assert "intent" in created.object_repr
    assert changes_of(created) == {"code": (None, "intent"), "name": (None, "合作意向")}
    [item_created] = rows("crm.dictionaryitem", "create")
    assert item_created.user == staff
    item_changes = changes_of(item_created)
    assert item_changes["dictionary"] == (None, "intent")  # by code, not by id
    assert item_changes["label"] == (None, "高")
    assert item_changes["order"] == (None, 10)

    change_url = reverse("admin:crm_dictionary_change", args=[dictionary.pk])
    data = page_data(admin_client.get(change_url))
    data["name"] = "合作意愿"
    data["items-0-label"] = "很高"
    assert_saved(admin_client.post(change_url, data))

    [updated] = rows("crm.dictionary", "update")
    assert (updated.user, updated.source) == (staff, "admin")
    assert updated.changes == [{"field": "name", "old": "合作意向", "new": "合作意愿"}]
    [item_updated] = rows("crm.dictionaryitem", "update")
    assert item_updated.changes == [{"field": "label", "old": "高", "new": "很高"}]


def test_saving_an_unchanged_page_logs_nothing(admin_client):
    dictionary = Dictionary.objects.get(code="customer_source")
    before = ConfigChange.objects.count()
    url = reverse("admin:crm_dictionary_change", args=[dictionary.pk])
    assert_saved(admin_client.post(url, page_data(admin_client.get(url))))
    assert ConfigChange.objects.count() == before


def test_role_created_changed_and_deleted_in_the_admin_are_logged(admin_client, staff):
    add_url = reverse("admin:accounts_role_add")
    data = page_data(admin_client.get(add_url))
    data.update(
        {
            "name": "客服",
            "data_scope": DataScope.ALL,
            "permissions": ["note.view", "note.change"],
        }
    )
    assert_saved(admin_client.post(add_url, data))
    role = Role.objects.get(name="客服")
    [created] = rows("accounts.role", "create")
    assert (created.user, created.source, created.object_id) == (staff, "admin", str(role.pk))
    assert changes_of(created)["data_scope"] == (None, "all")
    assert sorted(changes_of(created)["permissions"][1]) == ["note.change", "note.view"]

    change_url = reverse("admin:accounts_role_change", args=[role.pk])
    data = page_data(admin_client.get(change_url))
    data["data_scope"] = DataScope.DEPARTMENT
    data["description"] = "只读客户"
    assert_saved(admin_client.post(change_url, data))
    [updated] = rows("accounts.role", "update")
    assert changes_of(updated) == {
        "description": ("", "只读客户"),
        "data_scope": ("all", "department"),
    }

    delete_url = reverse("admin:accounts_role_delete", args=[role.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    [deleted] = rows("accounts.role", "delete")
    assert (deleted.user, deleted.source, deleted.object_repr) == (staff, "admin", "客服")
    assert changes_of(deleted)["name"] == ("客服", None)


def test_role_field_permission_changes_read_per_field(staff):
    role = RoleFactory(name="实习生", field_permissions={"customer": {"phone": "readonly"}})
    with acting_as(staff, "admin"):
        role.field_permissions = {"customer": {"phone": "hidden", "cf_no_such_field": "readonly"}}
        role.permissions = ["customer.view"]
        role.save()
    [updated] = rows("accounts.role", "update")
    with translation.override("en"):
        readable = {label: (old, new) for label, old, new in readable_changes(updated)}
    # Field permissions read per field, by label, with the level's name.
    assert readable["Field permissions: Customer · Phone"] == ("Read-only", "Hidden")
    assert readable["Field permissions: Customer · cf_no_such_field"] == ("—", "Read-only")
    assert readable["Permissions"] == ("—", "+ customer.view")
    assert len(readable) == 3


def custom_field_admin_registered() -> bool:
    return admin.site.is_registered(CustomField)


@pytest.mark.skipif(
    not custom_field_admin_registered(), reason="the custom field admin is not installed yet"
)
def test_custom_field_created_changed_and_deleted_in_the_admin_are_logged(admin_client, staff):
    add_url = reverse("admin:crm_customfield_add")
    data = page_data(admin_client.get(add_url))
    data.update(
        {
            "record_type": "customer",
            "key": "revenue",
            "label": "年营业额",
            "field_type": FieldType.MONEY,
            "min_value": "0",
            "order": "10",
            "is_active": "on",
        }
    )
    assert_saved(admin_client.post(add_url, data))
    cf = CustomField.objects.get(key="revenue")
    [created] = rows("crm.customfield", "create")
    assert (created.user, created.source) == (staff, "admin")
    created_changes = changes_of(created)
    assert created_changes["field_type"] == (None, "money")
    assert created_changes["min_value"] == (None, "0")
    assert "created_at" not in created_changes and "updated_at" not in created_changes

    change_url = reverse("admin:crm_customfield_change", args=[cf.pk])
    data = page_data(admin_client.get(change_url))
    data["label"] = "年营收"
    data["max_value"] = "1000000"
    assert_saved(admin_client.post(change_url, data))
    [updated] = rows("crm.customfield", "update")
    assert changes_of(updated) == {"label": ("年营业额", "年营收"), "max_value": (None, "1000000")}

    delete_url = reverse("admin:crm_customfield_delete", args=[cf.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    [deleted] = rows("crm.customfield", "delete")
    assert deleted.user == staff
    assert changes_of(deleted)["key"] == ("revenue", None)


# --- outside the admin -----------------------------------------------------------------


def test_changes_in_code_are_logged_with_the_acting_user_or_a_default_source(staff):
    dictionary = Dictionary.objects.create(code="grade", name="等级")
    item = DictionaryItem.objects.create(dictionary=dictionary, code="x", label="甲")
    [created] = rows("crm.dictionary", "create")
    assert created.user is None
    assert created.source == "system"  # no request, no command: plain code

    with acting_as(staff, "shell"):
        item.delete()
        cf = CustomField.objects.create(
            record_type="customer", key="level2", label="二级", field_type=FieldType.TEXT
        )
        cf.label = "二级分类"
        cf.save()
    [deleted] = rows("crm.dictionaryitem", "delete")
    assert (deleted.user, deleted.source) == (staff, "shell")
    assert changes_of(deleted)["label"] == ("甲", None)
    assert changes_of(deleted)["dictionary"] == ("grade", None)
    [updated] = rows("crm.customfield", "update")
    # Only what changed: no updated_at.
    assert updated.changes == [{"field": "label", "old": "二级", "new": "二级分类"}]


def test_default_source_names_the_management_command(monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "shell"])
    assert log.default_source() == "manage.py shell"
    monkeypatch.setattr("sys.argv", ["/venv/bin/pytest", "tests"])
    assert log.default_source() == "system"


def test_save_with_update_fields_logs_only_those_fields(staff):
    item = DictionaryItem.objects.of("customer_source").get(code="website")
    item.label = "官网"
    item.order = 999  # changed in memory only: not saved, so not logged
    item.save(update_fields=["label"])
    [updated] = rows("crm.dictionaryitem", "update")
    assert [c["field"] for c in updated.changes] == ["label"]


def test_import_config_logs_its_changes_with_its_source_and_user(tmp_path, staff):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "dictionaries": [{"code": "customer_source", "name": "获客渠道"}],
                "roles": [{"name": "经理", "data_scope": "department_tree"}],
            }
        ),
        encoding="utf-8",
    )
    call_command("import_config", str(path), "--user", staff.username, stdout=None)
    dictionary_row = rows("crm.dictionary", "update")[0]
    assert (dictionary_row.user, dictionary_row.source) == (staff, "import_config")
    assert dictionary_row.changes == [{"field": "name", "old": "客户来源", "new": "获客渠道"}]
    role_row = rows("accounts.role", "create")[0]
    assert (role_row.user, role_row.source) == (staff, "import_config")


def test_a_later_app_registers_its_own_configuration_model(db):
    from tests.testapp.models import Note

    log.register_config_model(Note, key_fields=("title",))
    try:
        note = NoteFactory(title="stage A")
        note.title = "stage B"
        note.save()
        [created, updated] = rows("testapp.note")
        assert created.action == "create"
        assert updated.changes == [{"field": "title", "old": "stage A", "new": "stage B"}]
        owner_change = changes_of(created)["owner"]
        assert owner_change == (None, str(note.owner))  # not configuration: by its text
    finally:
        log.unregister_config_model(Note)
    NoteFactory(title="not logged")
    assert len(rows("testapp.note")) == 2


# --- the log in the admin --------------------------------------------------------------


def test_the_log_in_the_admin_lists_filters_searches_and_shows_a_change(admin_client, staff):
    with acting_as(staff, "admin"):
        role = RoleFactory(name="销售经理")
        role.data_scope = DataScope.ALL
        role.save()
    changelist = reverse("admin:crm_configchange_changelist")
    response = admin_client.get(changelist)
    assert response.status_code == 200
    assert "销售经理" in response.text
    assert reverse("admin:crm_configchange_document") in response.text

    response = admin_client.get(changelist, {"model": "accounts.role", "action": "update"})
    assert list(response.context["cl"].result_list) == rows("accounts.role", "update")
    response = admin_client.get(changelist, {"q": "销售经理"})
    assert len(response.context["cl"].result_list) == 2
    response = admin_client.get(changelist, {"q": "no such thing"})
    assert len(response.context["cl"].result_list) == 0

    row = rows("accounts.role", "update")[0]
    response = admin_client.get(reverse("admin:crm_configchange_change", args=[row.pk]))
    assert response.status_code == 200
    assert 'class="config-changes"' in response.text
    with translation.override(staff.language):
        [(_label, old, new)] = readable_changes(row)
    assert (old, new) == (str(DataScope.OWN.label), str(DataScope.ALL.label))
    assert old in response.text and new in response.text
    # Read-only: no adding, changing or deleting log rows.
    assert admin_client.get(reverse("admin:crm_configchange_add")).status_code == 403
    delete_url = reverse("admin:crm_configchange_delete", args=[row.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ConfigChange.objects.filter(pk=row.pk).exists()
