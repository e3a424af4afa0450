"""The product has a name and an icon, and the shared page frame is accessible.

The name is 客道 CRM in Chinese and Kedao CRM in English (settings.CRM_PRODUCT_NAME, a
translated default that a deployment may replace with its own): it is in every page's
title, the header and the footer, on the sign-in page and in the emails' subjects. The
icon is an SVG with an ICO fallback, linked from every page, and /favicon.ico answers
for the pages that link none (the admin's, a file opened on its own).

The frame (templates/layout.html) has a skip link and one main landmark; the user menu
is named by its own words; the customer form's sections are headings in order, and its
box for new tags has a visible label; the deal page's pipeline button says what it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core import mail
from django.templatetags.static import static
from django.urls import reverse

from accounts import services
from accounts.models import DataScope

from .factories import (
    CustomerFactory,
    DealFactory,
    SecurityNoticeFactory,
    TagFactory,
    UserFactory,
    crm_permissions,
)

NAMES = {"zh-hans": "客道 CRM", "en": "Kedao CRM"}
TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


def page(client, url: str, **extra) -> str:
    response = client.get(url, **extra)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.content.decode()


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def brand(html: str) -> str:
    """The words of the header's brand link (the logo is an icon)."""
    link = re.search(r'<a [^>]*class="navbar-brand[^"]*"[^>]*>(.*?)</a>', html, re.S).group(1)
    return re.sub(r"<[^>]+>", "", link).strip()


def footer(html: str) -> str:
    return re.search(r'data-testid="footer">(.*?)</div>', html, re.S).group(1).strip()


def tag(html: str, pattern: str) -> str:
    """The one opening tag matching `pattern` (a regex over the tag's text)."""
    found = re.findall(rf"<[^>]*{pattern}[^>]*>", html)
    assert len(found) == 1, f"{len(found)} tags match {pattern!r}"
    return found[0]


@pytest.fixture
def rep(org):
    rep = org.set_scope(org.owner, DataScope.OWN, crm_permissions(("view", "add", "change"), TYPES))
    return rep


def signed_in(client, user, language: str):
    user.language = language
    user.save(update_fields=["language"])
    client.force_login(user)
    return client


# --- The name -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_names_the_product_in_the_readers_language(client, rep, language):
    name = NAMES[language]
    signed_in(client, rep, language)
    for url in ("/", "/customers/", "/tasks/"):
        html = page(client, url)
        assert title(html).endswith(f" · {name}"), title(html)
        assert brand(html) == name
        assert footer(html) == name


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_sign_in_page_names_the_product(client, db, language):
    html = page(client, reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE=language)
    name = NAMES[language]
    assert title(html).endswith(f" · {name}")
    assert re.search(rf'class="navbar-brand[^"]*app-brand[^"]*">.*?{name}</span>', html, re.S)


def test_a_deployment_may_name_the_product_once_for_every_language(client, rep, settings):
    settings.CRM_PRODUCT_NAME = "恒信销售云"
    for language in ("zh-hans", "en"):
        html = page(signed_in(client, rep, language), "/")
        assert title(html).endswith(" · 恒信销售云") and brand(html) == "恒信销售云"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "Kedao CRM"),
        ({"CRM_PRODUCT_NAME": "恒信销售云"}, "恒信销售云"),
        ({"CRM_SITE_NAME": "老名字 CRM"}, "老名字 CRM"),  # the variable's older name
    ],
)
def test_the_name_comes_from_the_environment_or_the_translated_default(environment, expected):
    env = {k: v for k, v in os.environ.items() if k not in {"CRM_PRODUCT_NAME", "CRM_SITE_NAME"}}
    env.update(environment, DJANGO_SETTINGS_MODULE="crm.settings", DEBUG="1")
    script = (
        "import django; django.setup(); from django.conf import settings;"
        "from django.utils import translation; translation.activate('en');"
        "print(settings.CRM_PRODUCT_NAME, settings.CRM_SITE_NAME, "
        "settings.EMAIL_SUBJECT_PREFIX, sep='|')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.rstrip("\n").split("|") == [expected, expected, f"[{expected}] "]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_emails_carry_the_name_in_the_readers_language(db, language):
    notice = SecurityNoticeFactory(user=UserFactory(language=language))

    services.deliver_security_notice(notice.pk)

    [message] = mail.outbox
    opening = {"zh-hans": "【客道 CRM】", "en": "[Kedao CRM] "}[language]
    assert message.subject.startswith(opening)
    assert message.body.rstrip().endswith(f"— {NAMES[language]}")


# --- The icon -------------------------------------------------------------------------


def test_every_page_links_the_icon_and_the_icons_are_there(client, rep):
    html = page(signed_in(client, rep, "zh-hans"), "/")
    svg = tag(html, r'rel="icon"[^>]*type="image/svg\+xml"')
    assert f'href="{static("crm/img/favicon.svg")}"' in svg
    assert f'href="{static("crm/img/favicon.ico")}"' in tag(html, r'rel="icon" href="[^"]*\.ico"')
    touch = tag(html, 'rel="apple-touch-icon"')
    assert f'href="{static("crm/img/apple-touch-icon.png")}"' in touch

    assert Path(finders.find("crm/img/favicon.svg")).read_text().startswith("<svg ")
    ico = Path(finders.find("crm/img/favicon.ico")).read_bytes()
    assert ico[:4] == b"\x00\x00\x01\x00" and ico[4] >= 2  # an icon file of several sizes
    png = Path(finders.find("crm/img/apple-touch-icon.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_favicon_ico_answers_without_signing_in(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("crm/img/favicon.ico")
    assert "max-age=86400" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 302
    assert client.post("/favicon.ico").status_code == 405


# --- The frame ------------------------------------------------------------------------


def test_the_frame_has_a_skip_link_one_main_landmark_and_named_controls(client, rep):
    html = page(signed_in(client, rep, "en"), "/customers/")
    body = html[html.index("<body") :]
    # The first thing a keyboard reaches is the way past the header to the page itself.
    first_link = re.search(r"<a [^>]*>", body).group(0)
    assert 'href="#main"' in first_link and "visually-hidden-focusable" in first_link
    assert "Skip to main content" in body
    assert len(re.findall(r"<main\b", html)) == 1 and '<main id="main"' in html
    # Two search forms (the header's, the list's): the header's has its own name.
    assert 'aria-label="Site search"' in tag(html, 'data-testid="nav-search"')
    # The user menu is named by its words, not by a label that differs from them.
    menu = tag(html, 'data-testid="user-menu"')
    assert "aria-label" not in menu
    assert re.search(r'data-testid="user-menu">\s*<span [^>]*aria-hidden="true">', html)
    assert '<span class="visually-hidden">User menu</span>' in html


def test_the_customer_forms_sections_follow_its_title_and_every_box_has_a_label(client, rep):
    TagFactory(name="华东")
    html = page(signed_in(client, rep, "en"), reverse("customers:create"))
    headings = re.findall(r"<h([1-6])\b", html[html.index('<main id="main"') :])
    assert headings[0] == "1" and set(headings[1:]) == {"2"}, headings
    fieldset = html[html.index('data-testid="tags-field"') :]
    fieldset = fieldset[: fieldset.index("</fieldset>")]
    assert re.search(r"<legend [^>]*>Tags", fieldset)
    assert '<label class="form-label fw-normal small mb-1" for="id_new_tags">New tags</label>' in (
        fieldset
    )
    assert 'id="id_new_tags_helptext"' in fieldset  # what the box's aria-describedby names


def test_the_deal_pages_pipeline_button_says_what_it_does(client, rep):
    deal = DealFactory.created_by(rep, customer=CustomerFactory(owner=rep), title="数控机床采购")
    html = page(signed_in(client, rep, "en"), reverse("deals:detail", args=[deal.pk]))
    button = re.search(r'<button [^>]*data-testid="open-pipeline"[^>]*>(.*?)</button>', html, re.S)
    assert button, "no pipeline button on the deal page"
    assert re.sub(r"<[^>]+>", "", button.group(1)).strip() == "Change pipeline"
    assert "title=" not in button.group(0) and "aria-label" not in button.group(0)
