"""Contact pages: list, detail, create (with duplicate warnings), edit.

The org's reps see their own customers' contacts (scope own); the outsider, a rep of
another department, must not learn anything about them: 404 on every URL, nothing in
the list under any filter or view.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import Change, Contact

from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    crm_permissions,
    give_crm_roles,
)

LIST_URL = reverse("contacts:list")
CREATE_URL = reverse("contacts:create")


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


@pytest.fixture
def customer(crm):
    return CustomerFactory(name="华东精密机械有限公司", owner=crm.owner)


@pytest.fixture
def contact(customer):
    return ContactFactory(
        customer=customer,
        name="张伟",
        title="采购经理",
        mobile="+8613800138000",
        email="zhangwei@huadong.example",
        is_primary=True,
    )


def client_for(client, user):
    client.force_login(user)
    return client


def detail_url(contact):
    return reverse("contacts:detail", args=[contact.pk])


def edit_url(contact):
    return reverse("contacts:edit", args=[contact.pk])


def form_data(customer, **overrides):
    data = {
        "customer": customer.pk,
        "name": "李静",
        "title": "财务总监",
        "mobile": "139 1234 5678",
        "phone": "",
        "email": "lijing@huadong.example",
        "wechat": "lijing_wx",
        "birthday": "1988-05-20",
    }
    data.update(overrides)
    return data


def listed_names(response) -> set[str]:
    return {c.name for c in response.context["object_list"]}


# --- List -----------------------------------------------------------------------------


def test_list_shows_own_contacts_with_customer_phone_and_badges(client, crm, contact):
    ContactFactory(customer=contact.customer, name="王敏", do_not_contact=True)
    response = client_for(client, crm.owner).get(LIST_URL)
    assert response.status_code == 200
    assert listed_names(response) == {"张伟", "王敏"}
    html = response.content.decode()
    assert "华东精密机械有限公司" in html
    assert reverse("customers:detail", args=[contact.customer_id]) in html
    assert "138 0013 8000" in html  # stored E.164, shown as people read it
    assert "采购经理" in html
    assert "bg-blue-lt" in html and "bg-red-lt" in html  # primary, do-not-contact badges


def test_list_needs_sign_in_and_the_view_permission(client, org):
    assert client.get(LIST_URL).status_code == 302
    no_contacts = org.set_scope(org.owner, DataScope.OWN, crm_permissions(types=("customer",)))
    assert client_for(client, no_contacts).get(LIST_URL).status_code == 403


def test_builtin_views_mine_and_primary(client, crm, contact):
    ContactFactory(customer=contact.customer, name="王敏")
    pool_customer = CustomerFactory(owner=None)
    ContactFactory(customer=pool_customer, name="公海联系人", is_primary=True)
    c = client_for(client, crm.owner)
    assert listed_names(c.get(LIST_URL)) == {"张伟", "王敏", "公海联系人"}
    assert listed_names(c.get(LIST_URL + "?owner=me")) == {"张伟", "王敏"}
    assert listed_names(c.get(LIST_URL + "?primary=true")) == {"张伟", "公海联系人"}
    views = c.get(LIST_URL + "?primary=true").context["builtin_views"]
    assert [(v.key, active) for v, active in views] == [("mine", False), ("primary", True)]


def test_search_and_sort(client, crm, customer, contact):
    other = CustomerFactory(name="Alpha 阿里云计算", owner=crm.owner)
    ContactFactory(customer=other, name="陈晨", mobile="+8613911112222")
    c = client_for(client, crm.owner)
    assert listed_names(c.get(LIST_URL + "?q=1391111")) == {"陈晨"}
    assert listed_names(c.get(LIST_URL + "?q=华东")) == {"张伟"}
    by_customer = c.get(LIST_URL + "?sort=customer").context["object_list"]
    assert [x.customer.name for x in by_customer] == ["Alpha 阿里云计算", "华东精密机械有限公司"]
    by_customer_desc = c.get(LIST_URL + "?sort=-customer").context["object_list"]
    assert [x.name for x in by_customer_desc] == ["张伟", "陈晨"]


OUTSIDER_QUERIES = [
    "",
    "?owner=me",
    "?primary=true",
    "?primary=false",
    "?do_not_contact=true",
    "?q=张伟",
    "?q=13800138000",
    "?sort=-created",
    "?sort=customer",
    "?department={team1}",
    "?owner={owner}",
    "?created_min=2000-01-01",
]


def test_outsider_sees_none_of_them_under_any_filter_or_view(client, crm, contact):
    ContactFactory(customer=contact.customer, name="王敏", do_not_contact=True)
    own = ContactFactory(customer=CustomerFactory(owner=crm.outsider), name="外部联系人")
    c = client_for(client, crm.outsider)
    for query in OUTSIDER_QUERIES:
        url = LIST_URL + query.format(team1=crm.team1.pk, owner=crm.owner.pk)
        response = c.get(url)
        assert response.status_code == 200, url
        assert not listed_names(response) & {"张伟", "王敏"}, url
        assert detail_url(contact) not in response.content.decode(), url
    assert listed_names(c.get(LIST_URL)) == {own.name}


def test_a_saved_view_of_the_owner_shows_the_outsider_nothing_of_theirs(client, crm, contact):
    c = client_for(client, crm.owner)
    c.post(LIST_URL, {"save_view": "1", "name": "我的主要", "query": "primary=true", "shared": "1"})
    outsider = client_for(client, crm.outsider)
    response = outsider.get(LIST_URL + "?primary=true")
    assert [v.name for v, _ in response.context["saved_views"]] == ["我的主要"]
    assert listed_names(response) == set()


def test_contacts_of_pool_customers_are_visible_to_every_rep(client, crm):
    ContactFactory(customer=CustomerFactory(owner=None), name="公海联系人")
    assert listed_names(client_for(client, crm.outsider).get(LIST_URL)) == {"公海联系人"}


def test_list_queries_do_not_grow_with_rows(client, crm, customer, django_assert_max_num_queries):
    for i in range(30):
        ContactFactory(customer=CustomerFactory(owner=crm.owner), name=f"联系人{i:02}")
    c = client_for(client, crm.owner)
    with django_assert_max_num_queries(9):
        assert c.get(LIST_URL).status_code == 200


# --- Detail ---------------------------------------------------------------------------


def test_detail_shows_the_contact_its_customer_and_its_activities_newest_first(
    client, crm, contact, django_assert_max_num_queries
):
    now = timezone.now()
    older = ActivityFactory(
        customer=contact.customer,
        contact=contact,
        content="第一次电话",
        occurred_at=now - timedelta(days=400),
    )
    newer = ActivityFactory(
        customer=contact.customer, contact=contact, content="上门拜访", occurred_at=now
    )
    ActivityFactory(customer=contact.customer, content="与别人的通话")
    c = client_for(client, crm.owner)
    with django_assert_max_num_queries(6):
        response = c.get(detail_url(contact))
    assert response.status_code == 200
    assert response.context["activities"] == [newer, older]
    html = response.content.decode()
    assert "张伟" in html and "采购经理" in html and "138 0013 8000" in html
    assert reverse("customers:detail", args=[contact.customer_id]) in html
    assert "与别人的通话" not in html
    assert html.index("上门拜访") < html.index("第一次电话")
    assert edit_url(contact) in html


def test_detail_without_change_permission_has_no_edit_button(client, org, contact):
    viewer = org.set_scope(org.colleague, DataScope.ALL, crm_permissions(("view",)))
    response = client_for(client, viewer).get(detail_url(contact))
    assert response.status_code == 200
    assert edit_url(contact) not in response.content.decode()


def test_detail_escapes_what_users_typed(client, crm, customer):
    evil = ContactFactory(customer=customer, name="<script>alert(1)</script>")
    html = client_for(client, crm.owner).get(detail_url(evil)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Create ---------------------------------------------------------------------------


def test_create_form_preselects_the_customer_and_offers_only_editable_ones(client, crm, customer):
    CustomerFactory(name="别人的客户", owner=crm.outsider)
    CustomerFactory(name="公海客户", owner=None)
    response = client_for(client, crm.owner).get(CREATE_URL + f"?customer={customer.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["customer"] == customer.pk
    offered = {label for value, label in form.fields["customer"].widget.choices if value}
    assert offered == {"华东精密机械有限公司"}


def test_create_saves_normalised_phone_and_returns_to_the_customer(client, crm, customer):
    c = client_for(client, crm.owner)
    response = c.post(CREATE_URL + f"?customer={customer.pk}", form_data(customer))
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    created = Contact.objects.get(name="李静")
    assert created.customer == customer
    assert created.mobile == "+8613912345678"
    assert created.birthday.isoformat() == "1988-05-20"
    assert created.created_by == crm.owner
    assert Change.objects.filter(record_id=created.pk, action="created").exists()


def test_create_from_the_contact_list_goes_to_the_new_contact(client, crm, customer):
    response = client_for(client, crm.owner).post(CREATE_URL, form_data(customer))
    created = Contact.objects.get(name="李静")
    assert response["Location"] == detail_url(created)


def test_create_follows_a_safe_next_only(client, crm, customer):
    c = client_for(client, crm.owner)
    response = c.post(CREATE_URL + "?next=/contacts/%3Fowner%3Dme", form_data(customer))
    assert response["Location"] == "/contacts/?owner=me"
    response = c.post(
        CREATE_URL + "?next=https://evil.example/",
        form_data(customer, name="赵六", mobile="", email=""),
    )
    assert response["Location"] == detail_url(Contact.objects.get(name="赵六"))


def test_bad_phone_names_the_field_and_saves_nothing(client, crm, customer):
    response = client_for(client, crm.owner).post(CREATE_URL, form_data(customer, mobile="12ab"))
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["mobile"]
    assert "12ab" in form.errors["mobile"][0]
    html = response.content.decode()
    assert 'data-testid="form-errors"' in html
    assert f"<strong>{form['mobile'].label}</strong>" in html
    assert not Contact.objects.filter(name="李静").exists()


def test_name_is_required(client, crm, customer):
    response = client_for(client, crm.owner).post(CREATE_URL, form_data(customer, name=""))
    assert "name" in response.context["form"].errors
    assert Contact.objects.count() == 0


def test_cannot_add_a_contact_to_a_customer_one_may_not_change(client, crm):
    foreign = CustomerFactory(owner=crm.outsider)
    pool = CustomerFactory(owner=None)
    c = client_for(client, crm.owner)
    for target in (foreign, pool):
        response = c.post(CREATE_URL, form_data(target))
        assert response.status_code == 200
        assert "customer" in response.context["form"].errors
    assert Contact.objects.count() == 0


def test_create_needs_the_add_permission(client, org, customer):
    viewer = org.set_scope(org.owner, DataScope.OWN, crm_permissions(("view", "change")))
    c = client_for(client, viewer)
    assert c.get(CREATE_URL).status_code == 403
    assert c.post(CREATE_URL, form_data(customer)).status_code == 403
    assert Contact.objects.count() == 0


def test_a_new_primary_contact_takes_over_from_the_old_one(client, crm, customer, contact):
    response = client_for(client, crm.owner).post(CREATE_URL, form_data(customer, is_primary="on"))
    assert response.status_code == 302
    contact.refresh_from_db()
    assert not contact.is_primary
    assert Contact.objects.get(name="李静").is_primary


# --- Duplicates -----------------------------------------------------------------------


def test_duplicate_of_a_visible_contact_warns_with_a_link_and_saves_nothing(
    client, crm, customer, contact
):
    c = client_for(client, crm.owner)
    response = c.post(CREATE_URL, form_data(customer, name="张伟二", mobile="138-0013-8000"))
    assert response.status_code == 200
    assert [d.record for d in response.context["duplicates"]] == [contact]
    html = response.content.decode()
    assert 'data-testid="duplicate-warning"' in html
    assert detail_url(contact) in html
    assert 'name="confirm_duplicate"' in html
    assert not Contact.objects.filter(name="张伟二").exists()

    response = c.post(
        CREATE_URL,
        form_data(customer, name="张伟二", mobile="138-0013-8000", confirm_duplicate="1"),
    )
    assert response.status_code == 302
    assert Contact.objects.filter(name="张伟二", mobile="+8613800138000").exists()


def test_duplicate_the_user_cannot_open_says_only_that_it_exists_and_who_owns_it(
    client, crm, contact
):
    mine = CustomerFactory(name="外部客户", owner=crm.outsider)
    c = client_for(client, crm.outsider)
    response = c.post(CREATE_URL, form_data(mine, name="新人", mobile="13800138000", email=""))
    assert response.status_code == 200
    duplicates = response.context["duplicates"]
    assert [(d.record, d.visible) for d in duplicates] == [(contact, False)]
    html = response.content.decode()
    assert crm.owner.name in html  # who owns it
    assert detail_url(contact) not in html
    assert "华东精密机械有限公司" not in html
    assert not Contact.objects.filter(name="新人").exists()


def test_duplicate_by_email_ignores_case(client, crm, customer, contact):
    response = client_for(client, crm.owner).post(
        CREATE_URL, form_data(customer, name="别名", mobile="", email="ZHANGWEI@huadong.example")
    )
    assert [d.record for d in response.context["duplicates"]] == [contact]


# --- Edit -----------------------------------------------------------------------------


def test_edit_shows_the_phone_as_typed_and_saves_with_history(client, crm, contact):
    c = client_for(client, crm.owner)
    response = c.get(edit_url(contact))
    assert response.status_code == 200
    assert response.context["form"]["mobile"].value() == "138 0013 8000"
    data = form_data(contact.customer, name="张伟", title="总经理", mobile="138 0013 8000")
    response = c.post(edit_url(contact), data)
    assert response.status_code == 302
    assert response["Location"] == detail_url(contact)
    contact.refresh_from_db()
    assert contact.title == "总经理"
    assert contact.mobile == "+8613800138000"
    change = Change.objects.filter(record_id=contact.pk, action="updated").get()
    assert {"field": "title", "old": "采购经理", "new": "总经理"} in change.changes
    assert "mobile" not in {c["field"] for c in change.changes}


def test_edit_with_a_bad_phone_changes_nothing(client, crm, contact):
    c = client_for(client, crm.owner)
    response = c.post(edit_url(contact), form_data(contact.customer, phone="000"))
    assert response.status_code == 200
    assert "phone" in response.context["form"].errors
    contact.refresh_from_db()
    assert contact.name == "张伟"


def test_edit_of_a_visible_but_not_editable_contact_is_forbidden(client, crm):
    pool_contact = ContactFactory(customer=CustomerFactory(owner=None), name="公海联系人")
    c = client_for(client, crm.owner)
    assert c.get(detail_url(pool_contact)).status_code == 200
    assert c.get(edit_url(pool_contact)).status_code == 403
    response = c.post(edit_url(pool_contact), form_data(pool_contact.customer, name="改名"))
    assert response.status_code == 403
    pool_contact.refresh_from_db()
    assert pool_contact.name == "公海联系人"


def test_colleague_with_department_scope_may_edit(client, crm, contact):
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT, crm_permissions())
    c = client_for(client, manager)
    response = c.post(edit_url(contact), form_data(contact.customer, name="张伟", title="副总"))
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.title == "副总"


# --- The outsider on every URL --------------------------------------------------------


def test_outsider_gets_404_on_every_contact_url(client, crm, contact):
    c = client_for(client, crm.outsider)
    assert c.get(detail_url(contact)).status_code == 404
    assert c.get(edit_url(contact)).status_code == 404
    response = c.post(edit_url(contact), form_data(contact.customer, name="被改了"))
    assert response.status_code == 404
    contact.refresh_from_db()
    assert contact.name == "张伟"


def test_unknown_contact_is_404(client, crm):
    c = client_for(client, crm.owner)
    assert c.get("/contacts/999999/").status_code == 404
    assert c.get("/contacts/999999/edit/").status_code == 404


def test_sign_in_required_everywhere(client, contact):
    for url in (LIST_URL, CREATE_URL, detail_url(contact), edit_url(contact)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("accounts:login")), url


def test_the_navigation_links_contacts_for_those_who_may_view_them(client, crm, org):
    html = client_for(client, crm.owner).get("/").content.decode()
    assert f'href="{LIST_URL}"' in html
    nobody = org.set_scope(org.colleague, DataScope.OWN, [])
    client.force_login(nobody)
    assert f'href="{LIST_URL}"' not in client.get("/").content.decode()
