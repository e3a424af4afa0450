"""Record types: everything the platform knows of a type of record, registered in one call.

A record type — a customer, a contact, an activity, a task; pipelines' lead and deal;
whatever a later app adds — is one `RecordTypeSpec`, registered once from its app's
`AppConfig.ready()`:

    register_record_type(RecordTypeSpec(key="customer", model=Customer, pool=True, ...))

The spec is the one place that says which registries the type is in; the registries
themselves stay where they are, the mechanism each part uses (ARCHITECTURE.md,
"Adding a record type"):

- data scope and actions: `accounts.access.register` (owner paths, the public pool);
- field permissions and custom fields: `crm.fields.schema.register_record_type`
  (restrictable standard fields, the `custom` JSON and its indexes) and
  `accounts.access.register_fields` (the field list the role admin offers);
- raw values of its fields (imports, the API): `crm.fields.coerce.register_coercer`;
- the one search: `crm.services.search.register`;
- list exports: `crm.exports.register_columns`;
- the main menu: `crm.navigation.register_nav_item`;
- cards on other records' pages (a customer's deals): `crm.record_cards.register_card`;
- configuration: `crm.config.log.register_config_model`,
  `crm.config.transfer.register_section`, `crm.config.document.register_document_section`;
- impact of a custom-field or dictionary change: `crm.fields.impact.register_impact`;
- records that follow a merged customer: `crm.services.customers.register_merge_participant`;
- demo data: `crm.demo_config.register_demo_seeder`.

Every registry is keyed or ignores a second registration of the same thing, so a part
shared by several types (pipelines' configuration serves leads and deals) is named by
each of them and registered once. accounts stays below: it is told about the type, it
never imports crm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import models

from .exports import ExportSpec

if TYPE_CHECKING:
    from accounts.access import FieldProvider

    from .config.document import DocumentSection
    from .config.log import ConfigModel
    from .config.transfer import Section
    from .fields.coerce import CoercerFactory
    from .fields.impact import ImpactProvider
    from .navigation import NavItem
    from .record_cards import RecordCard
    from .services.customers import MergeParticipant
    from .services.search import SearchSource


@dataclass(frozen=True)
class RecordTypeSpec:
    """One record type and every registry it takes part in; `None` or empty: not in it."""

    # The type's key: its access key ("customer"), its permissions ("customer.view"),
    # its field permissions' and custom fields' record type. Set on the model as
    # `Model.record_type`.
    key: str
    # A model whose manager is built from accounts.access.ScopedQuerySet.
    model: type[models.Model]
    # Paths from a record to the user(s) whose data scope decides whether a user sees
    # it, e.g. ("owner",) or ("customer__owner",); in scope if any path is.
    owner: tuple[str, ...] = ("owner",)
    # Records whose first owner path is empty are a public pool everyone who may view
    # the type sees.
    pool: bool = False
    # The standard fields a role's field permissions may hide or make read-only (the
    # record's name and owner always show: they identify it).
    restrictable_fields: tuple[str, ...] = ()
    # Whether the model's `custom` JSON field holds custom-field values: admins may add
    # custom fields to the type (CustomField.record_type must offer the key) and their
    # lookup indexes are kept.
    custom_fields: bool = False
    # [(field name, label)] the role admin offers for field permissions; by default the
    # restrictable fields and the custom fields (crm.fields.schema.field_choices).
    field_provider: FieldProvider | None = None
    # How raw values (an import's cell, the API's JSON) of the standard fields whose
    # model field does not say enough are read, by field name: a phone kept in a
    # CharField, a percentage in an integer, a pipeline by name. Other fields follow
    # their model field's type (crm.fields.coerce).
    coercers: Mapping[str, CoercerFactory] = field(default_factory=dict)
    # The type's group in the one search (/search/).
    search: SearchSource | None = None
    # The list export (CSV and Excel, /<list>/export/): its standard columns.
    export: ExportSpec | None = None
    # The type's list in the main menu (its permission is usually "<key>.view").
    menu: NavItem | None = None
    # Cards the type adds to other records' pages (a deal: the customer's deals).
    cards: tuple[RecordCard, ...] = ()
    # Configuration this type depends on: logged models, sections of the exported
    # configuration file and of the configuration document.
    config_models: tuple[ConfigModel, ...] = ()
    config_sections: tuple[Section, ...] = ()
    document_sections: tuple[DocumentSection, ...] = ()
    # Where a custom field or dictionary item is used by this type's configuration.
    impact: tuple[ImpactProvider, ...] = ()
    # Records of this type that point at a customer and follow it into a merge.
    merge_participants: tuple[MergeParticipant, ...] = ()
    # Makes the type's demo records, run by `seed_demo` after crm's demo customers
    # exist, returning the line it prints (crm's own types are that command's base).
    demo_seeder: Callable[[], str] | None = None


_specs: dict[str, RecordTypeSpec] = {}


def register_record_type(spec: RecordTypeSpec) -> RecordTypeSpec:
    """Put the type into every registry its spec names. Called once per type from its
    app's AppConfig.ready(); the registries keep one entry per key, so registering the
    same spec again changes nothing."""
    from accounts import access

    from . import demo_config, exports, navigation, record_cards
    from .config import document, log, transfer
    from .fields import coerce, impact, schema
    from .services import customers, search

    if not spec.owner:
        raise ValueError(f"record type {spec.key!r} needs at least one owner path")
    access.register(spec.key, owner=spec.owner, pool=spec.pool)(spec.model)
    if spec.restrictable_fields or spec.custom_fields:
        schema.register_record_type(
            spec.key,
            spec.model._meta.app_label,
            spec.model._meta.model_name,
            list(spec.restrictable_fields),
            custom_fields=spec.custom_fields,
        )
    if spec.field_provider is not None:
        access.register_fields(spec.key, spec.field_provider)
    for name, factory in spec.coercers.items():
        coerce.register_coercer(spec.key, name, factory)
    if spec.search is not None:
        search.register(spec.search)
    if spec.export is not None:
        exports.register_columns(spec.key, spec.export)
    if spec.menu is not None:
        navigation.register_nav_item(spec.menu)
    for card in spec.cards:
        record_cards.register_card(card)
    for entry in spec.config_models:
        log.register_config_model(
            entry.model, key_fields=entry.key_fields, exclude=entry.exclude, describe=entry.describe
        )
    for section in spec.config_sections:
        transfer.register_section(section)
    for section in spec.document_sections:
        document.register_document_section(section)
    for provider in spec.impact:
        impact.register_impact(provider)
    for participant in spec.merge_participants:
        customers.register_merge_participant(participant)
    if spec.demo_seeder is not None:
        demo_config.register_demo_seeder(spec.demo_seeder)
    _specs[spec.key] = spec
    return spec


def record_type_specs() -> list[RecordTypeSpec]:
    """The registered specs, in registration order (crm's types, then the higher apps')."""
    return list(_specs.values())


def record_type_spec(key: str) -> RecordTypeSpec:
    """The spec of a registered type; LookupError for an unknown key."""
    try:
        return _specs[key]
    except KeyError:
        raise LookupError(f"{key!r} is not a registered record type") from None
