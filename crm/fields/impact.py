"""Where a custom field or a dictionary item is used, so an admin sees what a change
would touch before deactivating it (issue 5, "impact before change").

`usages_of_field(cf)` and `usages_of_item(item)` return the usages grouped under a
heading (saved views, role field permissions, records holding a value, fields using an
item as their default, ...), each a readable line with a link where there is a page.
Apps above crm (pipelines' stage required fields, automation rules, import templates)
add theirs with `register_impact(provider)`: `provider(obj)` receives the custom field
or the dictionary item and returns an iterable of `Usage` (nothing when it does not
apply), so crm never imports them (DESIGN: dependencies point one way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from django.apps import apps
from django.db import connection, models
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from ..models import CustomField, CustomFieldRecordType, DictionaryItem, FieldType, SavedView
from .indexes import model_for

# Suffixes a list filter adds to a field's name for ranges (django-filter's RangeFilter
# and DateFromToRangeFilter widgets) — "cf_revenue_min" still filters on cf_revenue.
PARAM_SUFFIXES = ("min", "max", "after", "before", "from", "to", "0", "1")
SORT_PARAMS = ("sort",)
CHOICE_TYPES = (FieldType.CHOICE, FieldType.MULTI_CHOICE)


@dataclass(frozen=True)
class Usage:
    """One thing that uses the field or item: `group` is its heading ("Saved views"),
    `text` the readable line, `url` a page to look at it (may be empty)."""

    group: str
    text: str
    url: str = ""
    count: int | None = None


@dataclass
class UsageGroup:
    title: str
    usages: list[Usage] = field(default_factory=list)


Target = CustomField | DictionaryItem
ImpactProvider = Callable[[Target], Iterable[Usage]]
_providers: list[ImpactProvider] = []


def register_impact(provider: ImpactProvider) -> ImpactProvider:
    """Add a source of usages (also usable as a decorator); registering twice is a no-op."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


def unregister_impact(provider: ImpactProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def group_usages(usages: Iterable[Usage]) -> list[UsageGroup]:
    """Usages under their headings, headings in the order they first appear."""
    groups: dict[str, UsageGroup] = {}
    for usage in usages:
        groups.setdefault(usage.group, UsageGroup(usage.group)).usages.append(usage)
    return list(groups.values())


def describe(groups: list[UsageGroup]) -> list[str]:
    """One line per usage, "heading: text", for validation messages."""
    return [f"{group.title}: {usage.text}" for group in groups for usage in group.usages]


def usages_of_field(cf: CustomField) -> list[UsageGroup]:
    usages: list[Usage] = []
    if cf.pk:
        usages += _field_saved_views(cf)
        usages += _field_permissions(cf)
        usages += _field_records(cf)
        usages += _from_providers(cf)
    return group_usages(usages)


def usages_of_item(item: DictionaryItem) -> list[UsageGroup]:
    usages: list[Usage] = []
    if item.pk:
        usages += _item_references(item)
        usages += _item_custom_values(item)
        usages += _item_defaults(item)
        usages += _item_saved_views(item)
        usages += _from_providers(item)
    return group_usages(usages)


def _from_providers(obj: Target) -> list[Usage]:
    found: list[Usage] = []
    for provider in list(_providers):
        found += list(provider(obj) or ())
    return found


# --- Helpers ---------------------------------------------------------------------------


def admin_url(obj: models.Model) -> str:
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def record_type_label(record_type: str) -> str:
    try:
        return str(CustomFieldRecordType(record_type).label)
    except ValueError:
        return record_type


def plural_name(model: type[models.Model]) -> str:
    return str(capfirst(model._meta.verbose_name_plural))


def _params(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query or "", keep_blank_values=False)


def _names_field(param: str, name: str) -> bool:
    if param == name:
        return True
    if param.startswith(name + "_"):
        return param[len(name) + 1 :] in PARAM_SUFFIXES
    return False


def saved_view_uses_field(query: str, name: str) -> bool:
    """Whether a saved view's query string filters or sorts by the field `name`."""
    for param, value in _params(query):
        if _names_field(param, name):
            return True
        if param in SORT_PARAMS and value.lstrip("-") == name:
            return True
    return False


def _view_text(view: SavedView) -> str:
    owner = view.owner.get_full_name() or view.owner.get_username()
    text = _("“%(name)s” (%(record_type)s, by %(owner)s)") % {
        "name": view.name,
        "record_type": record_type_label(view.record_type),
        "owner": owner,
    }
    if view.shared:
        text += " · " + _("shared with everyone")
    return text


def dictionary_fk_fields(dictionary_code: str) -> list[tuple[type[models.Model], models.Field]]:
    """Every foreign key (in any installed app) that points at items of the dictionary
    `dictionary_code` — customer type/source/level/industry, activity kind, and later
    lead source or lost reason — found from the models, so new ones count without
    changes here."""
    found = []
    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            if not (
                getattr(model_field, "many_to_one", False)
                and model_field.concrete
                and model_field.related_model is DictionaryItem
            ):
                continue
            limit = model_field.remote_field.limit_choices_to
            code = limit.get("dictionary__code") if isinstance(limit, dict) else None
            if code is None or code == dictionary_code:
                found.append((model, model_field))
    return found


def custom_value_counts(cf: CustomField) -> Counter:
    """How many records hold each stored value of a choice field (a multiple choice
    counts each of its codes), in one grouped query."""
    model = model_for(cf.record_type)
    if model is None:
        return Counter()
    table = connection.ops.quote_name(model._meta.db_table)
    key = cf.key  # validated [a-z][a-z0-9_]*
    if connection.vendor == "postgresql":
        if cf.field_type == FieldType.MULTI_CHOICE:
            sql = (
                f"SELECT e.value, COUNT(DISTINCT t.id) FROM {table} t, "  # noqa: S608
                f"jsonb_array_elements_text(CASE WHEN jsonb_typeof(t.custom -> '{key}') = "
                f"'array' THEN t.custom -> '{key}' ELSE '[]'::jsonb END) AS e(value) "
                "GROUP BY e.value"
            )
        else:
            sql = (
                f"SELECT t.custom ->> '{key}', COUNT(*) FROM {table} t "  # noqa: S608
                f"WHERE t.custom ->> '{key}' IS NOT NULL GROUP BY 1"
            )
    else:
        sql = (
            f"SELECT j.value, COUNT(DISTINCT t.id) FROM {table} t, "  # noqa: S608
            f"json_each(t.custom, '$.\"{key}\"') AS j WHERE j.value IS NOT NULL "
            "GROUP BY j.value"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return Counter({str(value): count for value, count in cursor.fetchall()})


def default_codes(cf: CustomField) -> set[str]:
    from .types import LIST_SEPARATORS

    text = (cf.default or "").strip()
    if not text:
        return set()
    if cf.field_type == FieldType.MULTI_CHOICE:
        return {part for part in LIST_SEPARATORS.split(text) if part}
    return {text}


def _choice_fields(dictionary_id: int) -> list[CustomField]:
    return list(
        CustomField.objects.filter(
            dictionary_id=dictionary_id, field_type__in=CHOICE_TYPES
        ).order_by("record_type", "order", "id")
    )


# --- A custom field's usages -------------------------------------------------------------


def _field_saved_views(cf: CustomField) -> list[Usage]:
    views = SavedView.objects.filter(
        record_type=cf.record_type, query__contains=cf.name
    ).select_related("owner")
    title = _("Saved views")
    return [
        Usage(title, _view_text(view), admin_url(view))
        for view in views
        if saved_view_uses_field(view.query, cf.name)
    ]


def _field_permissions(cf: CustomField) -> list[Usage]:
    from accounts.models import FieldAccess, Role

    title = _("Role field permissions")
    found = []
    for role in Role.objects.order_by("name"):
        level = ((role.field_permissions or {}).get(cf.record_type) or {}).get(cf.name)
        if level is None:
            continue
        try:
            level_label = FieldAccess(level).label
        except ValueError:
            level_label = level
        text = _("%(role)s: %(access)s") % {"role": role.name, "access": level_label}
        found.append(Usage(title, text, admin_url(role)))
    return found


def _field_records(cf: CustomField) -> list[Usage]:
    model = model_for(cf.record_type)
    if model is None:
        return []
    count = model._default_manager.filter(custom__has_key=cf.key).count()
    if not count:
        return []
    text = _("%(records)s holding a value: %(count)d") % {
        "records": plural_name(model),
        "count": count,
    }
    return [Usage(_("Records"), text, count=count)]


# --- A dictionary item's usages ----------------------------------------------------------


def item_reference_counts(dictionary) -> Counter:
    """Records pointing at each item of `dictionary` by a foreign key, per item id."""
    counts: Counter = Counter()
    for model, fk in dictionary_fk_fields(dictionary.code):
        rows = (
            model._default_manager.filter(**{f"{fk.name}__dictionary": dictionary})
            .order_by()
            .values_list(fk.attname)
            .annotate(n=models.Count("pk"))
        )
        for item_id, n in rows:
            counts[item_id] += n
    return counts


def item_usage_counts(dictionary) -> Counter:
    """How many records (foreign keys and custom choice values) and field defaults use
    each item of `dictionary`, by item id: the "in use" of the dictionary page, where an
    item in use cannot be deleted."""
    counts = item_reference_counts(dictionary)
    ids_by_code = dict(dictionary.items.values_list("code", "pk"))
    for cf in _choice_fields(dictionary.pk):
        for code, n in custom_value_counts(cf).items():
            if code in ids_by_code:
                counts[ids_by_code[code]] += n
        for code in default_codes(cf):
            if code in ids_by_code:
                counts[ids_by_code[code]] += 1
    return counts


def _item_references(item: DictionaryItem) -> list[Usage]:
    found = []
    for model, fk in dictionary_fk_fields(item.dictionary.code):
        count = model._default_manager.filter(**{fk.name: item}).count()
        if count:
            text = _("%(records)s with it as %(field)s: %(count)d") % {
                "records": plural_name(model),
                "field": fk.verbose_name,
                "count": count,
            }
            found.append(Usage(_("Records"), text, count=count))
    return found


def _item_custom_values(item: DictionaryItem) -> list[Usage]:
    found = []
    for cf in _choice_fields(item.dictionary_id):
        model = model_for(cf.record_type)
        count = custom_value_counts(cf).get(item.code, 0)
        if model is None or not count:
            continue
        text = _("%(records)s with it in %(field)s: %(count)d") % {
            "records": plural_name(model),
            "field": cf.display_label,
            "count": count,
        }
        found.append(Usage(_("Records"), text, admin_url(cf), count=count))
    return found


def _item_defaults(item: DictionaryItem) -> list[Usage]:
    title = _("Custom fields using it as their default")
    return [
        Usage(title, str(cf), admin_url(cf))
        for cf in _choice_fields(item.dictionary_id)
        if item.code in default_codes(cf)
    ]


def _item_params(item: DictionaryItem) -> dict[str, dict[str, str]]:
    """Per record type: query parameter → the value that selects this item."""
    params: dict[str, dict[str, str]] = {}
    fks = dictionary_fk_fields(item.dictionary.code)
    for record_type in CustomFieldRecordType.values:
        model = model_for(record_type)
        if model is None:
            continue
        wanted = {fk.name: str(item.pk) for m, fk in fks if m is model}
        params[record_type] = wanted
    for cf in _choice_fields(item.dictionary_id):
        params.setdefault(cf.record_type, {})[cf.name] = item.code
    return params


def _item_saved_views(item: DictionaryItem) -> list[Usage]:
    from .types import LIST_SEPARATORS

    title = _("Saved views")
    found = []
    for record_type, wanted in _item_params(item).items():
        if not wanted:
            continue
        views = SavedView.objects.filter(record_type=record_type).select_related("owner")
        for view in views:
            for param, value in _params(view.query):
                if param in wanted and wanted[param] in LIST_SEPARATORS.split(value.strip()):
                    found.append(Usage(title, _view_text(view), admin_url(view)))
                    break
    return found
