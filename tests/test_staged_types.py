"""Lead or deal is decided in one place (pipelines.kinds): every view, form and service
that needs the model, the pipeline kind, the URL names or a difference of behaviour asks
the staged type, never `isinstance(record, Lead)` on its own."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from crm.models import Customer
from pipelines.kinds import DEAL, LEAD, STAGED_TYPES, staged_type
from pipelines.models import Deal, Lead, Pipeline, PipelineKind

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "of, expected",
    [
        ("lead", LEAD),
        ("deal", DEAL),
        (PipelineKind.LEAD, LEAD),
        (PipelineKind.DEAL, DEAL),
        (Lead, LEAD),
        (Deal, DEAL),
        (Lead(), LEAD),
        (Deal(), DEAL),
        (Pipeline(kind=PipelineKind.DEAL), DEAL),
        (Pipeline(kind=PipelineKind.LEAD), LEAD),
    ],
)
def test_a_key_a_kind_a_model_a_record_or_a_pipeline_names_its_staged_type(of, expected):
    assert staged_type(of) is expected


@pytest.mark.parametrize("of", ["customer", Customer, Customer(), Pipeline(kind="other")])
def test_anything_else_is_a_programming_error(of):
    with pytest.raises(LookupError):
        staged_type(of)


def test_the_key_is_the_record_type_and_the_pipeline_kind():
    for staged in STAGED_TYPES:
        assert staged.model.record_type == staged.key
        assert staged.kind == PipelineKind(staged.key)
    assert {t.key for t in STAGED_TYPES} == set(PipelineKind.values)


def test_the_url_names_are_the_types_pages():
    assert DEAL.url("list") == reverse("deals:list")
    assert LEAD.url("detail", 7) == reverse("leads:detail", args=[7])
    assert LEAD.url_name("convert") == "leads:convert"


def test_what_differs():
    assert DEAL.has_amount and not LEAD.has_amount
    assert LEAD.won_by_conversion and not DEAL.won_by_conversion


def test_pipelines_views_and_forms_do_not_tell_leads_from_deals_themselves():
    pattern = re.compile(r"isinstance\([\w.]+, \(?(Lead|Deal)\b|\bis (Lead|Deal)\b")
    found = []
    paths = [
        *ROOT.glob("pipelines/views*.py"),
        *ROOT.glob("pipelines/views/*.py"),
        *ROOT.glob("pipelines/forms*.py"),
    ]
    for path in sorted(paths):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
