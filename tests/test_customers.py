"""Customer pages: create (with the duplicate warning), detail (timeline, contacts, tasks,
history), edit, the public pool (claim, release), transfer, log a follow-up, merge.

The org's reps own their customers (scope own); the manager sees the whole 销售一部
tree. The outsider, a rep of 销售二部, must learn nothing about the owner's customers:
404 on every URL, whatever the method.
"""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import dateformat, timezone, translation

from accounts.models import DataScope
from crm.models import (
    Activity,
    Change,
    ChangeAction,
    Contact,
    Customer,
    DictionaryItem,
    EventKind,
    PoolEvent,
    Tag,
    Task,
    TaskStatus,
)
from crm.services import customers as services
from crm.services.history import record_change

from .conftest import edit
from .factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    TagFactory,
    TaskFactory,
    UserFactory,
    crm_permissions,
    give_crm_roles,
    item,
)

CREATE_URL = reverse("customers:create")
DUPLICATES_URL = reverse("customers:duplicates")
ALL_ACTIONS = ("view", "add", "change", "delete")


@pytest.fixture
def crm(org):
    """Reps with every action on the CRM records, scope own; a manager over 销售一部."""
    give_crm_roles(org, actions=ALL_ACTIONS)
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions(ALL_ACTIONS))
    return org


@pytest.fixture
def customer(crm):
    return CustomerFactory(
        name="华东精密机械有限公司",
        owner=crm.owner,
        phone="+8613800138000",
        email="info@huadong.example",
        level=item("customer_level", "b"),
    )


@pytest.fixture
def pool_customer(crm):
    return CustomerFactory(name="公海贸易有限公司", owner=None, phone="+8613900139000")


def login(client, user):
    client.force_login(user)
    return client


def url(name: str, customer) -> str:
    return reverse(f"customers:{name}", args=[customer.pk])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_data(**overrides) -> dict:
    data = {
        "name": "江南丝绸有限公司",
        "type": item("customer_type", "company").pk,
        "level": item("customer_level", "a").pk,
        "source": item("customer_source", "website").pk,
        "industry": "",
        "phone": "138 0013 8001",
        "email": "hello@jiangnan.example",
        "address": "杭州市西湖区文三路 1 号",
        "website": "https://jiangnan.example",
        "new_tags": "",
        "owner": "",
    }
    data.update(overrides)
    return data


# --- Create -----------------------------------------------------------------------------


def test_create_form_offers_active_dictionary_items_and_owners_in_scope(client, crm):
    DictionaryItem.objects.filter(dictionary__code="customer_source", code="partner").update(
        is_active=False
    )
    response = login(client, crm.manager).get(CREATE_URL)
    assert response.status_code == 200
    form = response.context["form"]
    sources = set(form.fields["source"].queryset.values_list("code", flat=True))
    assert "partner" not in sources and "website" in sources
    owners = set(form.fields["owner"].queryset.values_list("username", flat=True))
    assert owners == {"manager", "owner", "colleague", "sub_member"}
    assert form.initial["owner"] == crm.manager.pk
    assert form.fields["owner"].required is False  # empty = public pool


def test_create_saves_the_customer_with_picked_and_new_tags_and_history(client, crm):
    vip = TagFactory(name="VIP")
    data = form_data(tags=[vip.pk], new_tags="华东, 年度大单，华东", owner=crm.owner.pk)
    response = login(client, crm.owner).post(CREATE_URL, data)
    customer = Customer.objects.get(name="江南丝绸有限公司")
    assert response.status_code == 302
    assert response["Location"] == url("detail", customer)
    assert customer.owner == crm.owner
    assert customer.created_by == crm.owner
    assert customer.phone == "+8613800138001"
    assert customer.level.code == "a"
    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "华东", "年度大单"]
    change = Change.objects.get(customer=customer)
    assert change.action == ChangeAction.CREATED and change.user == crm.owner


def test_create_with_no_owner_puts_the_customer_in_the_pool(client, crm):
    login(client, crm.owner).post(CREATE_URL, form_data(owner=""))
    assert Customer.objects.get(name="江南丝绸有限公司").owner is None


def test_create_rejects_an_owner_outside_the_scope(client, crm):
    response = login(client, crm.owner).post(CREATE_URL, form_data(owner=crm.outsider.pk))
    assert response.status_code == 200
    assert "owner" in response.context["form"].errors
    assert not Customer.objects.exists()


def test_a_bad_phone_is_a_clear_error_and_nothing_is_saved(client, crm):
    response = login(client, crm.owner).post(CREATE_URL, form_data(phone="12ab"))
    assert response.status_code == 200
    errors = response.context["form"].errors["phone"]
    assert "12ab" in errors[0]
    assert 'data-testid="error-phone"' in response.text
    assert not Customer.objects.exists()
    assert not Change.objects.exists()


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_name_is_an_error(client, crm, name):
    response = login(client, crm.owner).post(CREATE_URL, form_data(name=name))
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not Customer.objects.exists()


def test_a_tag_name_too_long_is_an_error(client, crm):
    response = login(client, crm.owner).post(CREATE_URL, form_data(new_tags="长" * 51))
    assert "new_tags" in response.context["form"].errors
    assert not Customer.objects.exists() and not Tag.objects.exists()


def test_create_needs_the_add_permission(client, crm):
    viewer = crm.set_scope(crm.colleague, DataScope.OWN, crm_permissions(("view",)))
    client = login(client, viewer)
    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, form_data()).status_code == 403
    assert not Customer.objects.exists()


def test_create_warns_of_a_duplicate_and_saves_only_when_confirmed(client, crm):
    CustomerFactory(name="别人的客户有限公司", owner=crm.outsider, phone="+8613800138001")
    client = login(client, crm.owner)
    response = client.post(CREATE_URL, form_data(owner=crm.owner.pk))
    assert response.status_code == 200
    assert response.context["confirm_needed"]
    assert 'data-testid="duplicate-warning"' in response.text
    assert 'name="confirm_duplicate"' in response.text
    assert not Customer.objects.filter(name="江南丝绸有限公司").exists()

    response = client.post(CREATE_URL, form_data(owner=crm.owner.pk, confirm_duplicate="1"))
    assert response.status_code == 302
    assert Customer.objects.filter(name="江南丝绸有限公司", owner=crm.owner).exists()


def test_create_without_duplicates_needs_no_confirmation(client, crm, customer):
    response = login(client, crm.owner).post(CREATE_URL, form_data(name="全新客户"))
    assert response.status_code == 302


# --- The duplicate warning (htmx) -------------------------------------------------------


def test_duplicates_link_a_visible_customer_with_its_owner(client, crm, customer):
    response = login(client, crm.owner).get(DUPLICATES_URL, {"phone": "138 0013 8000"})
    assert response.status_code == 200
    assert f'href="{url("detail", customer)}"' in response.text
    assert customer.name in response.text
    assert "王芳" in response.text  # the owner


def test_duplicates_name_the_owner_of_an_invisible_customer_and_nothing_more(client, crm, customer):
    response = login(client, crm.outsider).get(
        DUPLICATES_URL, {"name": "华东精密机械有限公司", "email": "", "phone": ""}
    )
    assert response.status_code == 200
    assert 'data-visible="0"' in response.text
    assert "王芳" in response.text
    assert "华东精密机械有限公司" not in response.text
    assert "href" not in response.text
    assert url("detail", customer) not in response.text
    assert "138" not in response.text and "info@huadong.example" not in response.text


def test_duplicates_find_contacts_by_phone_and_email(client, crm, customer):
    contact = ContactFactory(
        customer=customer, name="张伟", mobile="+8613700137000", email="zw@huadong.example"
    )
    client = login(client, crm.owner)
    by_phone = client.get(DUPLICATES_URL, {"phone": "+86 137 0013 7000"})
    assert "张伟" in by_phone.text and 'data-visible="1"' in by_phone.text
    assert reverse("contacts:detail", args=[contact.pk]) in by_phone.text
    by_email = client.get(DUPLICATES_URL, {"email": "ZW@huadong.example"})
    assert "张伟" in by_email.text


def test_an_invisible_contact_is_reported_with_its_owner_only(client, crm, customer):
    ContactFactory(customer=customer, name="张伟", mobile="+8613700137000", email="zw@x.example")
    response = login(client, crm.outsider).get(DUPLICATES_URL, {"mobile": "13700137000"})
    assert 'data-visible="0"' in response.text
    assert "王芳" in response.text
    assert "张伟" not in response.text
    assert customer.name not in response.text
    assert "href" not in response.text and "137" not in response.text
    assert "zw@x.example" not in response.text
    assert 'data-testid="duplicate-warning"' in response.text  # framed as an alert


def test_duplicates_leave_out_the_record_being_edited(client, crm, customer):
    response = login(client, crm.owner).get(
        DUPLICATES_URL, {"name": customer.name, "exclude_customer": customer.pk}
    )
    assert response.context["duplicates"] == []


def test_duplicates_with_nothing_typed_say_nothing(client, crm, customer):
    response = login(client, crm.owner).get(DUPLICATES_URL)
    assert response.status_code == 200 and response.text.strip() == ""


def test_duplicates_need_sign_in_and_a_role_that_adds_or_changes(client, crm):
    assert client.get(DUPLICATES_URL).status_code == 302
    viewer = crm.set_scope(crm.colleague, DataScope.OWN, crm_permissions(("view",)))
    assert login(client, viewer).get(DUPLICATES_URL, {"name": "x"}).status_code == 403


# --- Detail -----------------------------------------------------------------------------


def test_detail_shows_header_facts_contacts_tasks_timeline_and_history(client, crm, customer):
    customer.tags.add(TagFactory(name="重点"))
    primary = ContactFactory(customer=customer, name="张伟", is_primary=True)
    ContactFactory(customer=customer, name="李雷", do_not_contact=True, mobile="+8613700137000")
    now = timezone.now()
    ActivityFactory(customer=customer, content="第一次电话", occurred_at=now - timedelta(days=2))
    ActivityFactory(
        customer=customer,
        contact=primary,
        content="拜访张伟",
        occurred_at=now - timedelta(days=1),
        kind=item("activity_kind", "visit"),
        next_follow_up_at=now + timedelta(days=3),
    )
    TaskFactory(customer=customer, assignee=crm.owner, title="寄样品")
    TaskFactory(customer=customer, assignee=crm.owner, title="已完成", status=TaskStatus.DONE)
    record_change(
        customer,
        by=crm.owner,
        changes=edit("level", "C 一般客户", "B 普通客户"),
    )

    response = login(client, crm.owner).get(url("detail", customer))
    assert response.status_code == 200
    html = response.text
    assert "华东精密机械有限公司" in html and "重点" in html
    assert "138 0013 8000" in html and 'href="tel:+8613800138000"' in html
    assert "info@huadong.example" in html
    assert 'data-testid="primary"' in html and 'data-testid="do-not-contact"' in html
    assert "137 0013 7000" in html
    assert "寄样品" in html and "已完成" not in html
    assert reverse("tasks:complete", args=[Task.objects.get(title="寄样品").pk]) in html
    assert f"{reverse('contacts:create')}?customer={customer.pk}" in html
    assert html.index("拜访张伟") < html.index("第一次电话")  # newest first
    assert [a.content for a in response.context["activities"]] == ["拜访张伟", "第一次电话"]
    # The history tab loads its first page when opened.
    assert f'hx-get="{url("history", customer)}"' in html
    history = client.get(url("history", customer))
    entry = history.context["history"][0]
    with translation.override("zh-hans"):
        level = str(Customer._meta.get_field("level").verbose_name)
    assert entry["fields"] == [{"label": level, "old": "C 一般客户", "new": "B 普通客户"}]
    assert "C 一般客户" in history.text and "B 普通客户" in history.text
    assert 'data-testid="edit"' in html and 'data-testid="claim"' not in html


def test_the_timeline_shows_kind_contact_author_and_local_times(client, crm, customer):
    primary = ContactFactory(customer=customer, name="张伟", is_primary=True)
    when = timezone.now().replace(microsecond=0) - timedelta(days=1)
    ActivityFactory(
        customer=customer,
        contact=primary,
        author=crm.owner,
        content="拜访张伟",
        occurred_at=when,
        kind=item("activity_kind", "visit"),
        next_follow_up_at=when + timedelta(days=3, minutes=5),
    )
    with translation.override("zh-hans"):
        response = login(client, crm.owner).get(url("detail", customer))
        html = response.text
        visit = str(item("activity_kind", "visit"))
    local = timezone.localtime(when)
    # The same text as Django's |date:"c" and |date:"Y-m-d H:i" in the local time zone.
    assert f'datetime="{dateformat.format(local, "c")}">{local:%Y-%m-%d %H:%M}</time>' in html
    later = timezone.localtime(when + timedelta(days=3, minutes=5))
    assert f": {later:%Y-%m-%d %H:%M}</div>" in html
    assert f'<span class="fw-medium">{visit}</span>' in html
    assert "张伟" in html and "王芳" in html


def test_activity_content_is_escaped_with_its_line_breaks(client, crm, customer):
    ActivityFactory(customer=customer, content="<script>alert(1)</script>\n第二行")
    html = login(client, crm.owner).get(url("detail", customer)).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>第二行" in html


def test_a_pool_customer_offers_claim_but_no_edit_to_a_rep(client, crm, pool_customer):
    html = login(client, crm.owner).get(url("detail", pool_customer)).text
    assert 'data-testid="pool-badge"' in html
    assert 'data-testid="claim"' in html
    assert 'data-testid="edit"' not in html and 'data-testid="open-release"' not in html


def test_the_manager_may_transfer_release_and_merge(client, crm, customer):
    html = login(client, crm.manager).get(url("detail", customer)).text
    for action in ("open-transfer", "open-release", "merge-link", "edit"):
        assert f'data-testid="{action}"' in html
    # The owner picker loads when the transfer dialog opens, not with the page.
    assert f'hx-get="{url("transfer_owners", customer)}"' in html
    assert "李娜" not in html
    response = client.get(url("transfer_owners", customer))
    assert response.status_code == 200
    owners = [u.username for u in response.context["owners"]]
    assert "owner" not in owners and "colleague" in owners and "outsider" not in owners
    assert f'<option value="{crm.colleague.pk}">李娜' in response.text
    assert "王芳" not in response.text


def test_a_rep_has_no_one_to_transfer_her_own_customer_to(client, crm, customer):
    # Scope own: nobody else is in her scope, so the page offers no transfer at all.
    html = login(client, crm.owner).get(url("detail", customer)).text
    assert 'data-testid="edit"' in html and 'data-testid="open-transfer"' not in html


def test_the_owner_picker_needs_the_right_to_change_the_customer(client, crm, pool_customer):
    # The rep sees the pool customer but may not change (nor transfer) it: 403, as the
    # transfer itself; it must be a GET.
    client = login(client, crm.owner)
    assert client.get(url("transfer_owners", pool_customer)).status_code == 403
    assert client.post(url("transfer_owners", pool_customer)).status_code == 405


def test_detail_queries_do_not_grow_with_activities_contacts_tasks_and_history(
    client, crm, customer, django_assert_max_num_queries
):
    client = login(client, crm.manager)

    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get(url("detail", customer)).status_code == 200
        return len(captured)

    ContactFactory(customer=customer)
    ActivityFactory(customer=customer)
    TaskFactory(customer=customer, assignee=crm.owner)
    record_change(customer, by=crm.owner, changes=edit("name", "a", "b"))
    count_queries()  # warm: the first request also fills the department-tree cache
    few = count_queries()

    contacts = ContactFactory.create_batch(12, customer=customer)
    for n in range(40):
        ActivityFactory(customer=customer, contact=contacts[n % 12], author=crm.colleague)
    TaskFactory.create_batch(15, customer=customer, assignee=crm.owner)
    TaskFactory.create_batch(5, customer=customer, assignee=crm.colleague)
    for contact in contacts:
        record_change(contact, by=crm.owner, changes=edit("title", "", "经理"))
    for n in range(40):
        record_change(customer, by=crm.sub_member, changes=edit("name", "", n))
    many = count_queries()
    assert many == few
    with django_assert_max_num_queries(15):
        client.get(url("detail", customer))


def test_the_timeline_shows_twenty_and_loads_more(client, crm, customer):
    start = timezone.now() - timedelta(days=30)
    for n in range(25):
        ActivityFactory(
            customer=customer, content=f"记录{n:02d}", occurred_at=start + timedelta(hours=n)
        )
    client = login(client, crm.owner)
    response = client.get(url("detail", customer))
    assert len(response.context["activities"]) == 20
    assert response.context["timeline_next"] == 2
    assert 'data-testid="timeline-more"' in response.text
    more = client.get(url("timeline", customer), {"page": 2}, HTTP_HX_REQUEST="true")
    assert [a.content for a in more.context["activities"]] == [
        f"记录{n:02d}" for n in range(4, -1, -1)
    ]
    assert 'data-testid="timeline-more"' not in more.text


def test_a_customer_without_history_says_so(client, crm, customer):
    Change.objects.filter(customer=customer).delete()
    html = login(client, crm.owner).get(url("history", customer)).text
    assert 'class="empty' in html


def test_the_history_loads_more(client, crm, customer):
    for n in range(35):
        record_change(customer, by=crm.owner, changes=edit("address", "", n))
    client = login(client, crm.owner)
    assert client.get(url("history", customer)).context["history_next"] == 2
    more = client.get(url("history", customer), {"page": 2})
    assert len(more.context["history"]) == 5 and more.context["history_next"] is None


def test_history_names_the_contact_a_change_was_about(client, crm, customer):
    contact = ContactFactory(customer=customer, name="张伟")
    record_change(contact, by=crm.owner, changes=edit("title", "", "总监"))
    entry = login(client, crm.owner).get(url("history", customer)).context["history"][0]
    assert "张伟" in str(entry["about"])
    assert entry["fields"][0]["label"] == str(Contact._meta.get_field("title").verbose_name)


# --- Edit -------------------------------------------------------------------------------


def test_edit_saves_and_records_each_field_old_to_new(client, crm, customer):
    client = login(client, crm.owner)
    form = client.get(url("edit", customer)).context["form"]
    assert "owner" not in form.fields  # a transfer is its own action
    assert form.initial["phone"] == "138 0013 8000"
    data = form_data(
        name=customer.name,
        phone="13800138999",
        email=customer.email,
        level=item("customer_level", "a").pk,
    )
    response = client.post(url("edit", customer), data)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.phone == "+8613800138999" and customer.level.code == "a"
    change = Change.objects.get(customer=customer, action=ChangeAction.UPDATED)
    fields = {c["field"]: (c["old"], c["new"]) for c in change.changes}
    assert fields["level"] == ("B 普通客户", "A 重点客户")
    assert fields["phone"] == ("+8613800138000", "+8613800138999")
    html = client.get(url("history", customer)).text
    assert "B 普通客户" in html and "A 重点客户" in html


def test_edit_keeps_showing_an_inactive_item_the_record_uses(client, crm, customer):
    DictionaryItem.objects.filter(pk=customer.level_id).update(is_active=False)
    form = login(client, crm.owner).get(url("edit", customer)).context["form"]
    levels = set(form.fields["level"].queryset.values_list("code", flat=True))
    assert "b" in levels  # the record's own, though inactive
    new_form = client.get(CREATE_URL).context["form"]
    assert "b" not in set(new_form.fields["level"].queryset.values_list("code", flat=True))


def test_edit_with_a_bad_phone_changes_nothing(client, crm, customer):
    response = login(client, crm.owner).post(
        url("edit", customer), form_data(name=customer.name, phone="电话")
    )
    assert response.status_code == 200 and "phone" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.phone == "+8613800138000"
    assert not Change.objects.filter(customer=customer).exists()


def test_editing_a_visible_but_not_changeable_customer_is_forbidden(client, crm, pool_customer):
    client = login(client, crm.owner)
    assert client.get(url("edit", pool_customer)).status_code == 403
    assert client.post(url("edit", pool_customer), form_data()).status_code == 403


# --- Logging a follow-up ----------------------------------------------------------------


def activity_data(**overrides) -> dict:
    data = {
        "kind": item("activity_kind", "call").pk,
        "contact": "",
        "content": "电话沟通报价，客户需要内部讨论。",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "next_follow_up_at": "",
    }
    data.update(overrides)
    return data


def test_log_a_follow_up_without_htmx_redirects_back(client, crm, customer):
    contact = ContactFactory(customer=customer)
    follow_up = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = login(client, crm.owner).post(
        url("log_activity", customer),
        activity_data(contact=contact.pk, next_follow_up_at=follow_up),
    )
    assert response.status_code == 302 and response["Location"] == url("detail", customer)
    activity = Activity.objects.get(customer=customer)
    assert activity.author == crm.owner and activity.contact == contact
    assert activity.kind.code == "call"
    customer.refresh_from_db()
    assert customer.last_activity_at == activity.occurred_at
    assert customer.next_follow_up_at == activity.next_follow_up_at
    assert Task.objects.get(customer=customer).assignee == crm.owner


def test_log_a_follow_up_with_htmx_returns_the_refreshed_timeline(client, crm, customer):
    follow_up = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client = login(client, crm.owner)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            url("log_activity", customer),
            activity_data(next_follow_up_at=follow_up),
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    html = response.text
    assert 'id="activity-section"' in html and "电话沟通报价" in html
    assert "<html" not in html
    assert 'id="customer-tasks" data-testid="tasks-card" hx-swap-oob="true"' in html
    assert "Follow up with" in html or "跟进" in html  # the new follow-up task
    assert 'data-testid="info-card"' in html
    # What the response does not show is not read: the deals card, rule runs and tags.
    read = " ".join(query["sql"] for query in queries.captured_queries if "SELECT" in query["sql"])
    for table in ("pipelines_deal", "automation_rulerun", "crm_customer_tags"):
        assert f'"{table}"' not in read


def test_a_follow_up_without_content_is_an_error_and_saves_nothing(client, crm, customer):
    client = login(client, crm.owner)
    response = client.post(
        url("log_activity", customer), activity_data(content=" "), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and 'data-testid="error-content"' in response.text
    response = client.post(url("log_activity", customer), activity_data(content=""))
    assert response.status_code == 200 and 'data-testid="error-content"' in response.text
    assert "<html" in response.text  # the whole page, with the form and its error
    assert not Activity.objects.exists()


def test_a_follow_up_with_another_customers_contact_is_refused(client, crm, customer):
    elsewhere = ContactFactory(customer=CustomerFactory(owner=crm.owner))
    response = login(client, crm.owner).post(
        url("log_activity", customer), activity_data(contact=elsewhere.pk)
    )
    assert "contact" in response.context["activity_form"].errors
    assert not Activity.objects.exists()


def test_the_next_follow_up_must_come_after_the_follow_up(client, crm, customer):
    earlier = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = login(client, crm.owner).post(
        url("log_activity", customer), activity_data(next_follow_up_at=earlier)
    )
    assert "next_follow_up_at" in response.context["activity_form"].errors
    assert not Activity.objects.exists()


def test_a_rep_may_log_a_follow_up_on_a_pool_customer(client, crm, pool_customer):
    response = login(client, crm.owner).post(url("log_activity", pool_customer), activity_data())
    assert response.status_code == 302
    assert Activity.objects.filter(customer=pool_customer, author=crm.owner).exists()


def test_logging_needs_a_post(client, crm, customer):
    assert login(client, crm.owner).get(url("log_activity", customer)).status_code == 405


# --- The public pool --------------------------------------------------------------------


def test_claim_a_pool_customer(client, crm, pool_customer):
    response = login(client, crm.owner).post(url("claim", pool_customer))
    assert response.status_code == 302 and response["Location"] == url("detail", pool_customer)
    pool_customer.refresh_from_db()
    assert pool_customer.owner == crm.owner
    event = PoolEvent.objects.get(customer=pool_customer)
    assert event.action == PoolEvent.Action.CLAIM and event.user == crm.owner
    assert Change.objects.filter(customer=pool_customer, action=ChangeAction.CLAIMED).exists()


def test_claim_within_and_over_the_role_limit(client, crm, pool_customer):
    crm.owner.role.max_customers = 2
    crm.owner.role.save()
    CustomerFactory(owner=crm.owner)
    client = login(client, crm.owner)
    client.post(url("claim", pool_customer))
    pool_customer.refresh_from_db()
    assert pool_customer.owner == crm.owner  # 2 of 2

    another = CustomerFactory(owner=None)
    response = client.post(url("claim", another), follow=True)
    another.refresh_from_db()
    assert another.owner is None
    assert any("2" in text for text in texts(response))
    assert "alert-danger" in response.text
    assert PoolEvent.objects.filter(customer=another).count() == 0


def test_claiming_a_customer_someone_has_just_claimed(client, crm, pool_customer):
    # The manager opened the pool customer; the colleague claims it first.
    services.claim_customer(customer_id=pool_customer.pk, by=crm.colleague)
    response = login(client, crm.manager).post(url("claim", pool_customer), follow=True)
    pool_customer.refresh_from_db()
    assert pool_customer.owner == crm.colleague
    assert len(texts(response)) == 1 and "alert-danger" in response.text
    assert PoolEvent.objects.filter(customer=pool_customer).count() == 1
    # A rep who may not see the colleague's customers just finds it gone.
    assert login(client, crm.owner).post(url("claim", pool_customer)).status_code == 404


def test_release_with_a_reason_records_a_pool_event(client, crm, customer):
    response = login(client, crm.owner).post(url("release", customer), {"reason": "联系不上"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.owner is None and customer.released_at is not None
    event = PoolEvent.objects.get(customer=customer)
    assert (event.action, event.user, event.reason) == ("release", crm.owner, "联系不上")
    change = Change.objects.get(customer=customer, action=ChangeAction.RELEASED)
    assert change.note == "联系不上"
    assert 'data-testid="pool-badge"' in client.get(url("detail", customer)).text
    assert "联系不上" in client.get(url("history", customer)).text


def test_release_of_a_pool_customer_is_refused_to_a_rep(client, crm, pool_customer):
    assert login(client, crm.owner).post(url("release", pool_customer)).status_code == 403
    assert not PoolEvent.objects.exists()


def test_pool_actions_need_a_post(client, crm, customer):
    client = login(client, crm.owner)
    for name in ("claim", "release", "transfer"):
        assert client.get(url(name, customer)).status_code == 405


# --- Transfer ---------------------------------------------------------------------------


def test_transfer_moves_the_customer_and_its_open_tasks(client, crm, customer):
    open_task = TaskFactory(customer=customer, assignee=crm.owner)
    done_task = TaskFactory(customer=customer, assignee=crm.owner, status=TaskStatus.DONE)
    others_task = TaskFactory(customer=customer, assignee=crm.sub_member)
    response = login(client, crm.manager).post(
        url("transfer", customer), {"to_owner": crm.colleague.pk}
    )
    assert response.status_code == 302 and response["Location"] == url("detail", customer)
    customer.refresh_from_db()
    assert customer.owner == crm.colleague
    assert Task.objects.get(pk=open_task.pk).assignee == crm.colleague
    assert Task.objects.get(pk=done_task.pk).assignee == crm.owner
    assert Task.objects.get(pk=others_task.pk).assignee == crm.sub_member
    change = Change.objects.get(customer=customer, action=ChangeAction.TRANSFERRED)
    assert change.changes == [{"field": "owner", "old": "王芳", "new": "李娜"}]


def test_transfer_to_someone_outside_the_scope_changes_nothing(client, crm, customer):
    client = login(client, crm.manager)
    response = client.post(url("transfer", customer), {"to_owner": crm.outsider.pk}, follow=True)
    assert len(texts(response)) == 1
    client.post(url("transfer", customer), {"to_owner": ""})
    customer.refresh_from_db()
    assert customer.owner == crm.owner
    assert not Change.objects.filter(action=ChangeAction.TRANSFERRED).exists()


# --- Merge ------------------------------------------------------------------------------


def test_merge_search_offers_only_customers_the_user_may_change(client, crm, customer):
    twin = CustomerFactory(name="华东精密机械有限公司", owner=crm.owner)
    CustomerFactory(name="华东精密机械有限公司", owner=crm.outsider)
    CustomerFactory(name="华东精密机械有限公司", owner=None)  # pool: not changeable by a rep
    by_phone = CustomerFactory(name="华东精密（上海）", owner=crm.owner, phone="+8613612345678")
    client = login(client, crm.owner)
    response = client.get(url("merge", customer))
    assert response.status_code == 200
    assert [c.pk for c in response.context["candidates"]] == [twin.pk]  # look-alikes
    found = client.get(url("merge", customer), {"q": "1234 5678"}).context["candidates"]
    assert [c.pk for c in found] == [by_phone.pk]
    found = client.get(url("merge", customer), {"q": "华东"}).context["candidates"]
    assert {c.pk for c in found} == {twin.pk, by_phone.pk}


def test_merge_comparison_defaults_to_this_records_values_or_the_others_if_empty(
    client, crm, customer
):
    other = CustomerFactory(
        name="华东精密", owner=crm.owner, phone="+8613700000000", address="苏州工业园区"
    )
    ContactFactory.create_batch(2, customer=other)
    ActivityFactory.create_batch(3, customer=other)
    TaskFactory(customer=other, assignee=crm.owner)
    response = login(client, crm.owner).get(url("merge", customer), {"other": other.pk})
    rows = {row["field"]: row for row in response.context["rows"]}
    assert rows["name"]["take"] == customer.pk
    assert rows["phone"]["take"] == customer.pk
    assert rows["address"]["take"] == other.pk  # ours is empty
    assert rows["website"]["same"]
    assert response.context["moving"] == {"contacts": 2, "activities": 3, "tasks": 1}
    assert 'data-testid="merge-table"' in response.text


def test_merge_moves_everything_keeps_picked_values_and_deletes_the_other(client, crm, customer):
    other = CustomerFactory(
        name="华东精密", owner=crm.owner, phone="+8613700000000", address="苏州工业园区"
    )
    contact = ContactFactory(customer=other)
    activity = ActivityFactory(customer=other)
    task = TaskFactory(customer=other, assignee=crm.owner)
    record_change(other, by=crm.owner, kind=EventKind.CREATED)
    data = {"other": other.pk, "take_phone": other.pk, "take_address": other.pk}
    data.update({f"take_{f}": customer.pk for f in ("name", "email", "level")})
    response = login(client, crm.owner).post(url("merge", customer), data)
    assert response.status_code == 302 and response["Location"] == url("detail", customer)
    customer.refresh_from_db()
    assert customer.name == "华东精密机械有限公司"
    assert customer.phone == "+8613700000000" and customer.address == "苏州工业园区"
    assert customer.email == "info@huadong.example"
    assert not Customer.objects.filter(pk=other.pk).exists()
    for record in (contact, activity, task):
        assert type(record).objects.get(pk=record.pk).customer_id == customer.pk
    assert Change.objects.filter(customer=customer, action=ChangeAction.CREATED).count() == 1
    merged = Change.objects.get(customer=customer, action=ChangeAction.MERGED)
    assert {c["field"] for c in merged.changes} >= {"phone", "address"}


def test_merge_of_a_customer_the_user_may_not_change_is_a_404(client, crm, customer):
    theirs = CustomerFactory(owner=crm.outsider)
    pool = CustomerFactory(owner=None)
    client = login(client, crm.owner)
    for other in (theirs, pool):
        assert client.get(url("merge", customer), {"other": other.pk}).status_code == 404
        assert client.post(url("merge", customer), {"other": other.pk}).status_code == 404
        assert Customer.objects.filter(pk=other.pk).exists()


def test_merge_needs_the_delete_permission(client, crm, customer):
    rep = crm.set_scope(crm.owner, DataScope.OWN, crm_permissions(("view", "add", "change")))
    twin = CustomerFactory(name=customer.name, owner=rep)
    client = login(client, rep)
    response = client.get(url("merge", customer))
    assert response.status_code == 200 and not response.context["may_delete"]
    assert 'data-testid="merge-link"' not in client.get(url("detail", customer)).text
    assert client.post(url("merge", customer), {"other": twin.pk}).status_code == 404
    assert Customer.objects.filter(pk=twin.pk).exists()


def test_merging_into_a_customer_one_may_not_change_is_forbidden(client, crm, pool_customer):
    assert login(client, crm.owner).get(url("merge", pool_customer)).status_code == 403


# --- The outsider -----------------------------------------------------------------------

RECORD_URLS = [
    ("get", "detail"),
    ("get", "edit"),
    ("post", "edit"),
    ("post", "claim"),
    ("post", "release"),
    ("post", "transfer"),
    ("get", "merge"),
    ("post", "merge"),
    ("post", "log_activity"),
    ("get", "timeline"),
    ("get", "history"),
    ("get", "transfer_owners"),
]


@pytest.mark.parametrize(("method", "name"), RECORD_URLS)
def test_the_outsider_gets_404_on_every_customer_url(client, crm, customer, method, name):
    ContactFactory(customer=customer)
    data = {
        "edit": form_data(),
        "release": {"reason": "x"},
        "transfer": {"to_owner": crm.outsider.pk},
        "log_activity": activity_data(),
        "merge": {"other": CustomerFactory(owner=crm.outsider).pk},
    }.get(name, {})
    client = login(client, crm.outsider)
    response = getattr(client, method)(url(name, customer), data)
    assert response.status_code == 404
    customer.refresh_from_db()
    assert customer.owner == crm.owner and customer.name == "华东精密机械有限公司"
    assert not Activity.objects.exists()
    assert not PoolEvent.objects.exists()
    assert not Change.objects.exists()


@pytest.mark.parametrize(("method", "name"), RECORD_URLS)
def test_anonymous_users_are_sent_to_sign_in(client, crm, customer, method, name):
    response = getattr(client, method)(url(name, customer))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_colleague_with_scope_own_cannot_open_the_owners_customer(client, crm, customer):
    assert login(client, crm.colleague).get(url("detail", customer)).status_code == 404
