"""A role's permissions as a grid of record types x actions with "all" boxes per row and
column, saved as exactly the boxes ticked; the role's field permissions name fields by
their label, never by an internal key such as cf_credit_code."""

import re
from html import unescape

import pytest
from django.urls import reverse

from accounts import access
from accounts.models import Role

from .admin_forms import admin_page_data
from .factories import CustomFieldFactory, RoleFactory

pytestmark = pytest.mark.usefixtures("english")


def change_url(role: Role) -> str:
    return reverse("admin:accounts_role_change", args=[role.pk])


def grid_of(html: str) -> str:
    start = html.index("data-permission-grid")
    return html[start : html.index("</table>", start)]


def test_permissions_are_a_grid_of_record_types_by_actions(admin_client, org):
    html = admin_client.get(change_url(org.rep_role)).content.decode()
    grid = grid_of(html)

    columns = re.findall(r'<th scope="col" data-action="(\w+)"', grid)
    assert columns == list(access.ACTIONS)
    rows = re.findall(r'<tr data-record-type="(\w+)"', grid)
    assert rows == [rt.key for rt in access.record_types()]
    for key in rows:
        row = grid[grid.index(f'data-record-type="{key}"') :].split("</tr>")[0]
        values = re.findall(r'name="permissions" value="([\w.]+)"', row)
        assert values == [f"{key}.{action}" for action in access.ACTIONS]
        assert f'data-toggle-row="{key}"' in row
    # The "all" boxes are for the hand only: never posted.
    toggles = re.findall(r"<input [^>]*data-toggle-(?:row|column)[^>]*>", grid)
    assert len(toggles) == len(rows) + len(columns)
    assert not any("name=" in toggle for toggle in toggles)
    # The rep's note permissions are ticked where they belong.
    assert re.search(r'value="note\.view"[^>]*checked', grid)
    assert not re.search(r'value="pooled\.view"[^>]*checked', grid)


def test_saving_the_grid_keeps_exactly_the_ticked_permissions(admin_client, org):
    role = RoleFactory(name="客服", permissions=["note.view", "note.change", "note.export"])
    page = admin_client.get(change_url(role))
    data = admin_page_data(page)
    # A whole column (view) and one more box ticked, the rest unticked.
    chosen = [f"{rt.key}.view" for rt in access.record_types()] + ["pooled.add"]
    data["permissions"] = chosen

    response = admin_client.post(change_url(role), data)

    assert response.status_code == 302
    role.refresh_from_db()
    assert role.permissions == sorted(chosen)


def test_unticking_every_box_leaves_no_permission(admin_client, org):
    role = RoleFactory(name="只读", permissions=["note.view"])
    data = admin_page_data(admin_client.get(change_url(role)))
    data.pop("permissions", None)

    assert admin_client.post(change_url(role), data).status_code == 302
    role.refresh_from_db()
    assert role.permissions == []


def test_field_permissions_name_a_custom_field_by_its_label(admin_client, org):
    CustomFieldFactory(key="credit_code", field_type="text", label="统一社会信用代码")
    html = admin_client.get(change_url(org.rep_role)).content.decode()

    text = unescape(re.sub(r"<[^>]+>", " ", html))
    assert "统一社会信用代码" in text
    assert "cf_credit_code" not in text
    assert "Internal name" not in text


def test_the_grids_columns_are_the_apps_words_in_chinese(client, org):
    org.admin.language = "zh-hans"
    org.admin.save(update_fields=["language"])
    client.force_login(org.admin)
    grid = grid_of(client.get(change_url(org.rep_role)).content.decode())
    headings = re.findall(r'<th scope="col" data-action="\w+">\s*([^<\s]+)', grid)
    assert headings == ["查看", "新建", "编辑", "删除", "导出", "导入"]
