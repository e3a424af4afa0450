"""One registration per record type (crm.records): each type's spec is the one place that
says which registries it is in, and the registries hold exactly what the specs name.
crm names no page of pipelines or reports: those come from the registries they fill."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accounts import access
from crm import demo_config, exports, navigation, record_cards
from crm.config import document, log, transfer
from crm.fields import coerce, impact, indexes, schema
from crm.records import RecordTypeSpec, record_type_spec, record_type_specs, register_record_type
from crm.services import customers, search

ROOT = Path(__file__).resolve().parent.parent
SPEC_KEYS = ["customer", "contact", "activity", "task", "lead", "deal"]


def test_every_record_type_of_the_apps_is_one_spec_in_registration_order():
    assert [spec.key for spec in record_type_specs()] == SPEC_KEYS
    apps_types = [rt.key for rt in access.record_types() if rt.model._meta.app_label != "testapp"]
    assert apps_types == SPEC_KEYS


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_the_registries_hold_what_the_spec_names(key):
    spec = record_type_spec(key)
    record_type = access.record_type_for(spec.model)
    assert record_type.key == key == spec.model.record_type
    assert record_type.owner_paths == spec.owner
    assert record_type.pool == spec.pool
    if spec.restrictable_fields or spec.custom_fields:
        assert schema.standard_field_names(key) == list(spec.restrictable_fields)
        assert key in access.field_record_types()
    else:
        assert key not in access.field_record_types()
    assert (indexes.model_for(key) is spec.model) == spec.custom_fields
    for name, factory in spec.coercers.items():
        assert coerce._overrides[(key, name)] is factory
    if spec.search is not None:
        assert spec.search in search.sources()
    assert (key in exports.exportable_types()) == (spec.export is not None)
    if spec.menu is not None:
        assert spec.menu in navigation.nav_items()
    for section in spec.config_sections:
        assert section in transfer.sections()
    for section in spec.document_sections:
        assert section in document._sections
    for model_entry in spec.config_models:
        assert log.config_model(model_entry.model) is not None
    for provider in spec.impact:
        assert provider in impact._providers
    for participant in spec.merge_participants:
        assert customers._merge_participants[participant.key] is participant
    if spec.demo_seeder is not None:
        assert spec.demo_seeder in demo_config.demo_seeders()


def test_search_groups_exports_and_menu_follow_the_specs():
    assert [s.key for s in search.sources()] == ["customers", "contacts", "leads", "deals"]
    assert exports.exportable_types() == ["customer", "contact", "activity", "task", "lead", "deal"]
    assert [item.url_name for item in navigation.nav_items()] == [
        "dashboard",
        "customers:list",
        "contacts:list",
        "leads:list",
        "deals:list",
        "board:index",
        "tasks:list",
        "reports:index",
        "imports:index",
        "admin:index",
    ]


def test_a_part_two_types_share_is_registered_once():
    """Pipelines' configuration serves leads and deals: both specs name it."""
    lead, deal = record_type_spec("lead"), record_type_spec("deal")
    assert lead.config_sections == deal.config_sections
    assert [s.key for s in transfer.sections()].count("pipelines") == 1
    assert impact._providers.count(deal.impact[0]) == 1
    assert demo_config.demo_seeders().count(deal.demo_seeder) == 1


def test_the_customer_page_cards_come_from_the_deal_spec():
    (card,) = record_type_spec("deal").cards
    assert card.page == "customer"
    assert record_cards._cards[("customer", card.key)] is card


def test_an_unknown_key_is_a_lookup_error():
    with pytest.raises(LookupError):
        record_type_spec("invoice")


def test_a_spec_needs_an_owner_path():
    from tests.testapp.models import Note

    with pytest.raises(ValueError, match="owner path"):
        register_record_type(RecordTypeSpec(key="note", model=Note, owner=()))


def test_crm_names_no_page_of_pipelines_or_reports():
    """Menu entries, the deal card and report links come from registries the higher
    apps fill; only the URLconf's includes (project wiring) name those apps."""
    higher = re.compile(r"""["'](deals|leads|board|reports):""")
    offenders = []
    for folder, pattern in ((ROOT / "crm", "*.py"), (ROOT / "templates" / "crm", "*.html")):
        for path in folder.rglob(pattern):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if higher.search(line) or "hidden.deal" in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
