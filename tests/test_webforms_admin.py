"""Web forms in Django admin: an admin designs a form (its fields offered from the lead's
standard and custom fields), its change page shows the snippet to paste into the company's
site and the JSON endpoint, a new public key retires the old address, and a form whose
stage needs fields the form does not ask for is flagged when saved."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from integrations.webforms.models import Assignment, WebForm, WebFormField

from .factories import custom_field, item, stage


def management(prefix: str = "fields", total: int = 0, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def posted_form(**values) -> dict:
    data = {
        "name": "官网表单",
        "title": "",
        "intro": "",
        "is_active": "on",
        "pipeline": "",
        "stage": "",
        "source": str(item("lead_source", "website_form").pk),
        "assignment": Assignment.POOL,
        "owner": "",
        "department": "",
        "thank_you": "",
        "redirect_url": "",
        "allowed_origins": "",
    }
    data.update(values)
    return data


def test_an_admin_adds_a_form_with_standard_and_custom_fields(admin_client):
    custom_field("budget", "money", record_type="lead", label="预算", label_en="Budget")
    add = admin_client.get(reverse("admin:webforms_webform_add"))
    assert add.status_code == 200
    offered = dict(add.context["inline_admin_formsets"][0].formset.forms[0].fields["name"].choices)
    assert {"person_name", "phone", "email", "cf_budget"} <= set(offered)
    assert "owner" not in offered and "stage" not in offered
    # The source starts as 官网表单.
    assert add.context["adminform"].form.initial["source"] == item("lead_source", "website_form").pk

    data = posted_form(**management(total=2))
    data.update({"fields-0-name": "phone", "fields-0-required": "on", "fields-0-order": "0"})
    data.update({"fields-1-name": "cf_budget", "fields-1-label": "预算范围", "fields-1-order": "1"})
    response = admin_client.post(reverse("admin:webforms_webform_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    form = WebForm.objects.get()
    assert [(f.name, f.required, f.display_label) for f in form.fields.all()] == [
        ("phone", True, "Phone"),
        ("cf_budget", False, "预算范围"),
    ]


def test_the_form_needs_the_person_or_department_its_assignment_names(admin_client):
    data = posted_form(assignment=Assignment.ROUND_ROBIN, **management())
    response = admin_client.post(reverse("admin:webforms_webform_add"), data)
    assert response.status_code == 200
    assert "department" in response.context["adminform"].form.errors


def test_the_change_page_shows_the_snippet_and_the_json_endpoint(admin_client):
    form = WebForm.objects.create(name="官网表单")
    WebFormField.objects.create(form=form, name="phone", required=True)

    response = admin_client.get(reverse("admin:webforms_webform_change", args=[form.pk]))

    page = response.content.decode()
    snippet = response.context["webform_embed"]["snippet"]
    assert f'action="http://testserver/forms/{form.key}/submit/"' in snippet
    assert f'src="http://testserver/forms/{form.key}/embed.js"' in snippet
    assert 'name="phone"' in snippet and 'name="_wf_hp"' in snippet  # the honeypot
    assert 'data-testid="webform-snippet"' in page
    assert f"http://testserver/api/forms/{form.key}/" in page


def test_ticking_new_public_key_gives_the_form_a_new_address(admin_client):
    form = WebForm.objects.create(name="官网表单")
    old = form.key
    data = posted_form(regenerate="on", **management())

    admin_client.post(reverse("admin:webforms_webform_change", args=[form.pk]), data)

    form.refresh_from_db()
    assert form.key != old


@pytest.mark.parametrize("required", [False, True])
def test_a_stage_requiring_fields_the_form_does_not_require_is_flagged(admin_client, required):
    needs_company = stage("线索", "联系决策人")  # requires the company name
    data = posted_form(
        pipeline=str(needs_company.pipeline_id), stage=str(needs_company.pk), **management(total=1)
    )
    data.update({"fields-0-name": "company_name", "fields-0-order": "0"})
    if required:
        data["fields-0-required"] = "on"

    response = admin_client.post(reverse("admin:webforms_webform_add"), data)

    warnings = [str(m) for m in get_messages(response.wsgi_request)]
    flagged = any("requires" in w for w in warnings)
    assert flagged is not required


def test_submissions_are_a_read_only_log(admin_client):
    assert (
        admin_client.get(reverse("admin:webforms_webformsubmission_changelist")).status_code == 200
    )
    assert admin_client.get(reverse("admin:webforms_webformsubmission_add")).status_code == 403


def test_changes_of_a_form_are_in_the_configuration_log(admin_client):
    from crm.models import ConfigChange

    data = posted_form(**management(total=1))
    data.update({"fields-0-name": "phone", "fields-0-order": "0"})
    admin_client.post(reverse("admin:webforms_webform_add"), data)

    logged = set(ConfigChange.objects.values_list("model", flat=True))
    assert {"webforms.webform", "webforms.webformfield"} <= logged
