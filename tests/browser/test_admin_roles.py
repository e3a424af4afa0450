"""An admin sets a role's permissions on the grid of record types x actions: the "all"
box of a column ticks that action for every record type (and "view", which export
needs), the "all" box of a row unticks a record type, and saving keeps exactly that."""

import re

import pytest
from playwright.sync_api import expect

from accounts import access
from accounts.demo import seed_organisation
from accounts.models import Role

from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_an_admin_ticks_a_column_and_unticks_a_row_of_the_permission_grid(page):
    seed_organisation(reset_passwords=True)
    role = Role.objects.get(name="销售代表")
    keys = [rt.key for rt in access.record_types()]
    assert "customer" in keys and "customer.view" in role.permissions

    sign_in(page, "admin")
    page.goto(f"/admin/accounts/role/{role.pk}/change/")
    grid = page.get_by_test_id("permission-grid")
    expect(grid).to_be_visible()
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    # Export for every record type: the column's "all" box; view comes with it.
    grid.locator("[data-toggle-column=export]").check()
    for key in keys:
        expect(grid.locator(f"input[value='{key}.export']")).to_be_checked()
        expect(grid.locator(f"input[value='{key}.view']")).to_be_checked()
    # Nothing on customers: the row's "all" box, ticked then unticked.
    row_toggle = grid.locator("[data-toggle-row=customer]")
    row_toggle.check()
    row_toggle.uncheck()
    for action in access.ACTIONS:
        expect(grid.locator(f"input[value='customer.{action}']")).not_to_be_checked()
    expect(grid.locator("[data-toggle-column=export]")).not_to_be_checked()
    screenshot(page, "admin-roles-grid")

    ticked = grid.locator("input[name=permissions]:checked")
    chosen = sorted(ticked.nth(i).get_attribute("value") for i in range(ticked.count()))
    with loads(page, re.compile(r"/admin/accounts/role/$")):
        page.locator("input[name=_save]").click()
    role.refresh_from_db()
    assert role.permissions == chosen
    assert not [p for p in role.permissions if p.startswith("customer.")]
    assert {f"{key}.export" for key in keys if key != "customer"} <= set(role.permissions)
