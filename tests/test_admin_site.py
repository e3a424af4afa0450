"""The admin is part of the product: its index grouped by what an administrator does,
every registered model once, in the user's language; no Django groups beside roles; the
app's look (our stylesheet) on every admin page."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from crm.admin_site import SECTIONS, THIRD_PARTY_MSGIDS
from pipelines.models import DealStatus, LeadStatus, StageKind


@pytest.fixture
def chinese_admin(client, org):
    org.admin.language = "zh-hans"
    org.admin.save(update_fields=["language"])
    client.force_login(org.admin)
    return client


def index_sections(response) -> list[tuple[str, list[str]]]:
    return [
        (str(app["name"]), [m["object_name"] for m in app["models"]])
        for app in response.context["app_list"]
    ]


def test_the_index_is_grouped_by_what_an_admin_does(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    sections = index_sections(response)
    assert [name for name, _models in sections] == [
        "Organisation and permissions",
        "Fields and dictionaries",
        "Sales process",
        "Automation",
        "Integrations",
        "Security",
    ]
    assert dict(sections)["Organisation and permissions"] == ["Department", "User", "Role"]
    assert dict(sections)["Sales process"] == ["Pipeline", "Lead", "Deal"]
    assert dict(sections)["Integrations"] == [
        "WebForm",
        "WebFormSubmission",
        "WebhookSubscription",
        "WebhookDelivery",
        "ApiToken",
    ]
    assert "AccessAttempt" in dict(sections)["Security"]


def test_every_registered_model_is_on_the_index_exactly_once(admin_client):
    response = admin_client.get(reverse("admin:index"))
    shown = [
        model["model"]._meta.label
        for app in response.context["app_list"]
        for model in app["models"]
    ]
    assert len(shown) == len(set(shown))
    assert set(shown) == {model._meta.label for model in admin.site._registry}


def test_sections_name_only_registered_models_and_each_once():
    named = [label for section in SECTIONS for label in section.models]
    assert len(named) == len(set(named))
    registered = {model._meta.label for model in admin.site._registry}
    assert set(named) == registered


def test_a_section_heading_is_not_a_link_to_a_missing_page(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert '<span class="section">Sales process</span>' in html
    assert 'href=""' not in html


def test_an_apps_own_page_still_lists_its_models(admin_client):
    response = admin_client.get(reverse("admin:app_list", args=["crm"]))
    assert response.status_code == 200
    assert [m["object_name"] for m in response.context["app_list"][0]["models"]]


def test_groups_are_gone_roles_say_what_people_may_do(admin_client, org):
    assert not admin.site.is_registered(Group)
    with pytest.raises(NoReverseMatch):
        reverse("admin:auth_group_changelist")
    html = admin_client.get(reverse("admin:accounts_user_change", args=[org.owner.pk])).content
    assert b'name="groups"' not in html


def test_recent_actions_say_what_will_show_when_there_are_none(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "None available" not in html
    assert "Nothing yet: what you add, change or delete here is listed, newest first." in html


def wears_our_stylesheet(html: str) -> bool:
    linked = re.search(r'<link rel="stylesheet" href="/static/crm/css/admin\.css[^"]*">', html)
    # After Django's own stylesheets, so its variables win.
    return bool(linked) and html.index("crm/css/admin.css") > html.index("admin/css/base.css")


@pytest.mark.parametrize(
    "name", ["admin:index", "admin:accounts_role_changelist", "admin:pipelines_pipeline_add"]
)
def test_every_admin_page_wears_the_apps_stylesheet(admin_client, name):
    assert wears_our_stylesheet(admin_client.get(reverse(name)).content.decode())


def test_the_admin_sign_in_page_wears_it_too(client, db):
    assert wears_our_stylesheet(client.get(reverse("admin:login")).content.decode())


def test_third_party_model_names_go_through_our_catalogue():
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    with translation.override("en"):
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            assert str(model._meta.verbose_name) in THIRD_PARTY_MSGIDS
            assert str(model._meta.verbose_name_plural) in THIRD_PARTY_MSGIDS


# --- In Chinese (these need the zh-Hans catalogue with this task's translations) -------


def test_the_index_is_in_chinese(chinese_admin):
    response = chinese_admin.get(reverse("admin:index"))
    sections = [str(app["name"]) for app in response.context["app_list"]]
    assert sections == ["组织与权限", "字段与字典", "销售流程", "自动化", "集成", "安全"]
    names = [str(m["name"]) for app in response.context["app_list"] for m in app["models"]]
    # "API" and "Webhook" are how Chinese software says it (API 令牌, Webhook 推送).
    terms = re.compile(r"\b(API|Webhook)\b")
    english = [name for name in names if re.search(r"[A-Za-z]{3,}", terms.sub("", name))]
    assert english == []
    assert "登录尝试" in names


def test_open_stages_leads_and_deals_are_one_word():
    with translation.override("zh-hans"):
        assert str(StageKind.OPEN.label) == "进行中"
        assert str(DealStatus.OPEN.label) == str(LeadStatus.OPEN.label) == "进行中"
    with translation.override("en"):
        assert str(StageKind.OPEN.label) == "Open"


def test_a_users_permissions_are_named_in_the_users_language(admin_client, org):
    response = admin_client.get(reverse("admin:accounts_user_change", args=[org.owner.pk]))
    field = response.context["adminform"].form.fields["user_permissions"]
    labels = [label for _value, label in field.choices]
    assert "department · Add" in labels
    assert not [label for label in labels if label.startswith("Can ") or " | " in label]
