"""The data dictionary admin: item codes fixed once saved, items in use not deletable,
usage counts, one default, deactivation after seeing the impact; renamed items read
with their new label everywhere, deactivated ones stay on old records but are not
offered for new input."""

import pytest
from django.urls import reverse
from django.utils import translation

from crm.fields import types
from crm.forms import CustomerForm
from crm.models import Dictionary, DictionaryItem

from .admin_forms import admin_errors, admin_page_data
from .factories import (
    ContactFactory,
    CustomerFactory,
    CustomFieldFactory,
    SavedViewFactory,
)

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def level(db) -> Dictionary:
    return Dictionary.objects.get(code="customer_level")


def dictionary_url(dictionary) -> str:
    return reverse("admin:crm_dictionary_change", args=[dictionary.pk])


def item_url(item) -> str:
    return reverse("admin:crm_dictionaryitem_change", args=[item.pk])


def row_prefix(response, item) -> str:
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    for form in formset.forms:
        if form.instance.pk == item.pk:
            return form.prefix
    raise AssertionError(f"no row for {item}")


def post_dictionary(client, dictionary, rows=None, **changes):
    """Post the dictionary page as rendered; `rows` maps an item to its changed fields
    (False unticks a box)."""
    response = client.get(dictionary_url(dictionary))
    data = admin_page_data(response)
    for item, fields in (rows or {}).items():
        prefix = row_prefix(response, item)
        for name, value in fields.items():
            key = f"{prefix}-{name}"
            if value is False:
                data.pop(key, None)
            else:
                data[key] = "on" if value is True else value
    for name, value in changes.items():
        data[name] = "on" if value is True else value
    return client.post(dictionary_url(dictionary), data)


# --- The dictionary page -------------------------------------------------------------------


def test_dictionary_pages_render(admin_client, level):
    assert admin_client.get(reverse("admin:crm_dictionary_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:crm_dictionary_add")).status_code == 200
    response = admin_client.get(dictionary_url(level))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="code"' not in html  # the dictionary's code is fixed
    assert "column-in_use" in html


def test_existing_item_codes_are_read_only_new_rows_editable(admin_client, level):
    item = level.items.get(code="a")
    response = admin_client.get(dictionary_url(level))
    prefix = row_prefix(response, item)
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    assert formset.forms[0].fields["code"].disabled
    assert not formset.empty_form.fields["code"].disabled

    data = admin_page_data(response)
    data[f"{prefix}-code"] = "changed"
    total = int(data["items-TOTAL_FORMS"])
    data.update(
        {
            "items-TOTAL_FORMS": str(total + 1),
            f"items-{total}-code": "vip",
            f"items-{total}-label": "VIP",
            f"items-{total}-order": "9",
            f"items-{total}-is_active": "on",
            "code": "renamed",
        }
    )
    response = admin_client.post(dictionary_url(level), data)
    assert response.status_code == 302, admin_errors(response)
    item.refresh_from_db()
    level.refresh_from_db()
    assert item.code == "a"
    assert level.code == "customer_level"
    assert level.items.filter(code="vip", label="VIP").exists()


def test_items_show_how_many_records_use_them(admin_client, level):
    a, b = level.items.get(code="a"), level.items.get(code="b")
    CustomerFactory.create_batch(2, level=a)
    CustomFieldFactory(key="lvl", label="级别2", field_type="choice", dictionary=level)
    CustomerFactory(custom={"lvl": "b"})
    response = admin_client.get(dictionary_url(level))
    inline = response.context["inline_admin_formsets"][0].opts
    assert inline.in_use(a) == 2
    assert inline.in_use(b) == 1
    assert inline.in_use(level.items.get(code="c")) == 0


def test_unused_items_may_be_deleted_used_ones_not(admin_client, level):
    used, unused = level.items.get(code="a"), level.items.get(code="c")
    CustomerFactory(level=used)
    response = admin_client.get(dictionary_url(level))
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    deletion = {f.instance.code: f.fields["DELETE"].disabled for f in formset.forms}
    assert deletion["a"] and not deletion["c"]

    response = post_dictionary(
        admin_client, level, {used: {"DELETE": True}, unused: {"DELETE": True}}
    )
    assert response.status_code == 302, admin_errors(response)
    assert DictionaryItem.objects.filter(pk=used.pk).exists()
    assert not DictionaryItem.objects.filter(pk=unused.pk).exists()


def test_an_item_used_only_in_custom_values_is_not_deletable_either(admin_client, level):
    item = level.items.get(code="c")
    CustomFieldFactory(
        record_type="contact", key="lvl", label="级别", field_type="multi_choice", dictionary=level
    )
    ContactFactory(name="张三", custom={"lvl": ["c"]})
    post_dictionary(admin_client, level, {item: {"DELETE": True}})
    assert DictionaryItem.objects.filter(pk=item.pk).exists()


def test_only_one_default_item(admin_client, level):
    a, b = level.items.get(code="a"), level.items.get(code="b")
    response = post_dictionary(
        admin_client, level, {a: {"is_default": True}, b: {"is_default": True}}
    )
    assert response.status_code == 200
    (message,) = admin_errors(response)["inlines"]
    assert message.startswith("Only one item may be the default")
    response = post_dictionary(admin_client, level, {a: {"is_default": True}})
    assert response.status_code == 302, admin_errors(response)
    assert list(level.items.filter(is_default=True)) == [a]


def test_deactivating_a_used_item_needs_the_confirmation(admin_client, org, level):
    item = level.items.get(code="a")
    CustomerFactory(level=item)
    SavedViewFactory(name="A级客户", owner=org.owner, query=f"level={item.pk}")
    response = post_dictionary(admin_client, level, {item: {"is_active": False}})
    assert response.status_code == 200
    errors = admin_errors(response)["inlines"]
    assert "Saved views: “A级客户” (Customer, by 王芳)" in errors
    item.refresh_from_db()
    assert item.is_active

    response = post_dictionary(
        admin_client, level, {item: {"is_active": False}}, confirm_impact=True
    )
    assert response.status_code == 302, admin_errors(response)
    item.refresh_from_db()
    assert not item.is_active


def test_renaming_and_reordering_a_used_item_is_free(admin_client, level):
    item = level.items.get(code="a")
    CustomerFactory(level=item)
    response = post_dictionary(admin_client, level, {item: {"label": "战略客户", "order": "50"}})
    assert response.status_code == 302, admin_errors(response)
    item.refresh_from_db()
    assert (item.label, item.order) == ("战略客户", 50)


# --- Renamed and deactivated items on records -------------------------------------------------


def test_records_show_the_renamed_label(admin_client, org, level):
    item = level.items.get(code="a")
    customer = CustomerFactory(owner=org.owner, level=item, custom={"lvl": "a"})
    cf = CustomFieldFactory(key="lvl", label="复核级别", field_type="choice", dictionary=level)
    post_dictionary(admin_client, level, {item: {"label": "战略客户", "label_en": "Strategic"}})
    customer.refresh_from_db()
    with translation.override("zh-hans"):
        assert str(customer.level) == "战略客户"
    assert str(customer.level) == "Strategic"
    items = {(level.pk, i.code): i for i in level.items.all()}
    with translation.override("zh-hans"):
        assert types.display_value(cf, customer.custom["lvl"], items=items) == "战略客户"
    response = admin_client.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200
    assert "Strategic" in response.content.decode()


def test_deactivated_items_are_not_offered_for_new_customers_but_stay_on_old_ones(org, level):
    item = level.items.get(code="a")
    customer = CustomerFactory(owner=org.owner, level=item)
    item.is_active = False
    item.save()

    new_form = CustomerForm(user=org.owner)
    assert item not in new_form.fields["level"].queryset
    assert level.items.get(code="b") in new_form.fields["level"].queryset

    edit_form = CustomerForm(instance=customer, user=org.owner)
    assert item in edit_form.fields["level"].queryset
    other = CustomerFactory(owner=org.owner, level=level.items.get(code="b"))
    assert item not in CustomerForm(instance=other, user=org.owner).fields["level"].queryset


def test_deactivated_items_stay_readable_on_the_detail_page(admin_client, org, level):
    item = level.items.get(code="a")
    customer = CustomerFactory(owner=org.owner, level=item)
    item.is_active = False
    item.save()
    html = admin_client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert item.label_en in html


# --- The dictionary item admin ------------------------------------------------------------------


def test_item_pages_render_with_where_used(admin_client, org, level):
    item = level.items.get(code="a")
    CustomerFactory(level=item)
    assert admin_client.get(reverse("admin:crm_dictionaryitem_changelist")).status_code == 200
    response = admin_client.get(item_url(item))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Where this is used" in html
    assert "Customers with it as level: 1" in html
    form = response.context["adminform"].form
    assert form.fields["code"].disabled and form.fields["dictionary"].disabled


def test_item_admin_refuses_a_second_default(admin_client, level):
    a, b = level.items.get(code="a"), level.items.get(code="b")
    a.is_default = True
    a.save()
    data = admin_page_data(admin_client.get(item_url(b)))
    data["is_default"] = "on"
    response = admin_client.post(item_url(b), data)
    (message,) = admin_errors(response)["is_default"]
    assert message == f"Only one item may be the default; “{a.label}” is already."


def test_item_admin_unticking_active_needs_the_confirmation(admin_client, level):
    item = level.items.get(code="a")
    CustomerFactory(level=item)
    data = admin_page_data(admin_client.get(item_url(item)))
    data.pop("is_active")
    response = admin_client.post(item_url(item), data)
    assert "Records: Customers with it as level: 1" in admin_errors(response)["confirm_impact"]
    data["confirm_impact"] = "on"
    assert admin_client.post(item_url(item), data).status_code == 302
    item.refresh_from_db()
    assert not item.is_active


def test_item_deactivate_action_lists_the_impact_then_deactivates(admin_client, level):
    used, unused = level.items.get(code="a"), level.items.get(code="c")
    CustomerFactory(level=used)
    changelist = reverse("admin:crm_dictionaryitem_changelist")
    selection = {"action": "deactivate_selected", "_selected_action": [used.pk, unused.pk]}
    response = admin_client.post(changelist, selection)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Customers with it as level: 1" in html and "Nothing uses it." in html
    assert DictionaryItem.objects.filter(pk__in=[used.pk, unused.pk], is_active=True).count() == 2
    response = admin_client.post(changelist, {**selection, "post": "yes"})
    assert response.status_code == 302
    assert DictionaryItem.objects.filter(pk__in=[used.pk, unused.pk], is_active=True).count() == 0


def test_item_admin_delete_only_when_unused(admin_client, level):
    used, unused = level.items.get(code="a"), level.items.get(code="c")
    CustomerFactory(level=used)
    assert (
        admin_client.get(reverse("admin:crm_dictionaryitem_delete", args=[used.pk])).status_code
        == 403
    )
    response = admin_client.post(
        reverse("admin:crm_dictionaryitem_delete", args=[unused.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not DictionaryItem.objects.filter(pk=unused.pk).exists()
    actions = (
        admin_client.get(reverse("admin:crm_dictionaryitem_changelist"))
        .context["action_form"]
        .fields["action"]
        .choices
    )
    assert "delete_selected" not in [name for name, _label in actions]
