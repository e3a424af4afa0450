"""A rule's conditions: which fields they may name, how a condition is checked when a
rule is saved, and how conditions become one database filter.

Conditions are stored as

    {"match": "all" | "any", "conditions": [leaf | group, ...]}
    leaf:  {"field": "cf_level", "op": "ne", "value": "vip"}
    group: {"match": "any", "conditions": [leaf, ...]}   (one level deep)

and name fields by their key ("level", "cf_credit") and dictionary items by code, so a
renamed label never breaks a rule. Values are kept in stored form (item codes, user
names, ISO dates, decimal strings), parsed when the rule is saved through the one
coercion path (crm.fields.coerce), so "level is not VIP" with a typo is refused when it
is typed, not discovered when coupons went out.

The same Q serves the match preview (how many records match now), the check of one
record when a rule fires (`matches`), and the trace of each condition (`trace`): a
condition means one thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    In,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from accounts.models import User
from crm.fields import coerce, schema, types
from crm.fields.query import Numeric
from crm.models import CustomField, DictionaryItem, FieldType

from .records import automated_type

# Operators, and the field kinds each applies to.
OPERATORS = {
    "eq": gettext_lazy("equals"),
    "ne": gettext_lazy("does not equal"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "empty": gettext_lazy("is empty"),
    "not_empty": gettext_lazy("is not empty"),
    "gt": gettext_lazy("greater than"),
    "lt": gettext_lazy("less than"),
    "within_next": gettext_lazy("within the next N days"),
    "within_last": gettext_lazy("within the last N days"),
}
NO_VALUE = {"empty", "not_empty"}
LIST_OPS = {"in", "not_in"}
DAY_OPS = {"within_next", "within_last"}

TEXT, NUMBER, DATE, DATETIME, BOOL, CHOICE, ITEM, USER, MULTI, TAGS = (
    "text",
    "number",
    "date",
    "datetime",
    "bool",
    "choice",
    "item",
    "user",
    "multi",
    "tags",
)
OPS_BY_KIND = {
    TEXT: {"eq", "ne", "in", "not_in", "contains", "empty", "not_empty"},
    NUMBER: {"eq", "ne", "in", "not_in", "gt", "lt", "empty", "not_empty"},
    DATE: {"eq", "ne", "gt", "lt", "within_next", "within_last", "empty", "not_empty"},
    DATETIME: {"gt", "lt", "within_next", "within_last", "empty", "not_empty"},
    BOOL: {"eq", "ne", "empty", "not_empty"},
    CHOICE: {"eq", "ne", "in", "not_in", "empty", "not_empty"},
    ITEM: {"eq", "ne", "in", "not_in", "empty", "not_empty"},
    USER: {"eq", "ne", "in", "not_in", "empty", "not_empty"},
    MULTI: {"contains", "in", "not_in", "empty", "not_empty"},
    TAGS: {"contains", "in", "not_in", "empty", "not_empty"},
}
CUSTOM_KINDS = {
    FieldType.TEXT: TEXT,
    FieldType.LONG_TEXT: TEXT,
    FieldType.EMAIL: TEXT,
    FieldType.PHONE: TEXT,
    FieldType.URL: TEXT,
    FieldType.INTEGER: NUMBER,
    FieldType.DECIMAL: NUMBER,
    FieldType.MONEY: NUMBER,
    FieldType.DATE: DATE,
    FieldType.DATETIME: DATETIME,
    FieldType.BOOLEAN: BOOL,
    FieldType.CHOICE: CHOICE,
    FieldType.MULTI_CHOICE: MULTI,
    FieldType.USER: USER,
}
# Standard fields conditions do not name: internal, or the rule's own scope.
SKIPPED = {"id", "custom", "pipeline", "stage", "created_by", "subject_type", "subject_id"}


@dataclass(frozen=True)
class FieldRef:
    name: str
    label: str
    kind: str
    model_field: models.Field | None = None
    custom: CustomField | None = None
    dictionary: str = ""  # a dictionary field's dictionary code


def _standard_kind(field: models.Field) -> tuple[str, str] | None:
    if field.many_to_many:
        return (TAGS, "") if field.name == "tags" else None
    if field.is_relation:
        target = field.related_model
        if target is DictionaryItem:
            return ITEM, (field.remote_field.limit_choices_to or {}).get("dictionary__code", "")
        if target is User:
            return USER, ""
        return None
    if field.choices:
        return CHOICE, ""
    if isinstance(field, models.BooleanField):
        return BOOL, ""
    if isinstance(field, models.DateTimeField):
        return DATETIME, ""
    if isinstance(field, models.DateField):
        return DATE, ""
    if isinstance(field, (models.IntegerField, models.DecimalField, models.FloatField)):
        return NUMBER, ""
    if isinstance(field, (models.CharField, models.TextField)):
        return TEXT, ""
    return None


# (record type, language) -> (the definitions they were made from, the refs)
_refs: dict[tuple[str, str | None], tuple[list, list[FieldRef]]] = {}


def fields_of(record_type: str) -> list[FieldRef]:
    """Every field a condition of `record_type` may name: standard, then custom. Kept
    per record type and language while the custom field definitions are the same (each
    condition, trace line and placeholder asks)."""
    definitions = schema.all_custom_fields()
    key = (record_type, get_language())
    held = _refs.get(key)
    if held is None or held[0] is not definitions:
        held = _refs[key] = (definitions, _fields_of(record_type))
    return held[1]


def _fields_of(record_type: str) -> list[FieldRef]:
    model = automated_type(record_type).model
    refs = []
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False) or field.name in SKIPPED or field.auto_created:
            continue
        kind = _standard_kind(field)
        if kind is None:
            continue
        refs.append(
            FieldRef(field.name, str(capfirst(field.verbose_name)), kind[0], field, None, kind[1])
        )
    if record_type in ("customer", "contact", "lead", "deal"):
        for cf in schema.custom_fields(record_type, active=False):
            refs.append(FieldRef(cf.name, cf.display_label, CUSTOM_KINDS[cf.field_type], None, cf))
    return refs


def field_ref(record_type: str, name: str) -> FieldRef | None:
    return next((ref for ref in fields_of(record_type) if ref.name == name), None)


# --- Checking a rule's conditions ----------------------------------------------------


def stored_value(ref: FieldRef, record_type: str, raw: Any) -> Any:
    """One value of a condition (or a trigger's, or a set-field action's) in stored
    form: item codes, user names, ISO dates, decimal strings; labels are read too."""
    if ref.kind == TAGS:
        return coerce.to_text(raw, max_length=50)
    if ref.kind == ITEM:
        item = coerce.DictionaryOptions(ref.dictionary).match(raw)
        return item.code
    if ref.kind == USER:
        return _user(raw).username
    if ref.kind == MULTI:
        codes = coerce.coerce_value(record_type, ref.name, raw, user=None)
        return codes[0] if isinstance(codes, list) and len(codes) == 1 else codes
    value = coerce.coerce_value(record_type, ref.name, raw, user=None)
    if ref.kind == CHOICE and ref.custom is None:
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _user(raw: Any) -> User:
    text = coerce.to_text(raw)
    user = User.objects.filter(Q(username=text) | Q(name=text)).order_by("-is_active").first()
    if user is None:
        raise ValidationError(_("No user “%(value)s”.") % {"value": text}, code="user")
    return user


def clean_leaf(record_type: str, leaf: Any) -> dict:
    """A leaf with its value in stored form, or a ValidationError saying what is wrong."""
    if not isinstance(leaf, dict):
        raise ValidationError(_("A condition is a field, an operator and a value."))
    name, op = leaf.get("field"), leaf.get("op")
    ref = field_ref(record_type, name) if isinstance(name, str) else None
    if ref is None:
        raise ValidationError(_("Unknown field “%(field)s”.") % {"field": name})
    if op not in OPS_BY_KIND[ref.kind]:
        raise ValidationError(
            _("“%(op)s” does not apply to %(field)s.")
            % {"op": OPERATORS.get(op, op), "field": ref.label}
        )
    if op in NO_VALUE:
        return {"field": name, "op": op}
    raw = leaf.get("value")
    try:
        if op in DAY_OPS:
            days = coerce.to_integer(raw)
            if days is None or not 0 <= days <= 36500:
                raise ValidationError(_("Give a number of days (0 to 36500)."))
            value: Any = days
        elif op in LIST_OPS or (op == "contains" and ref.kind == MULTI and isinstance(raw, list)):
            items = raw if isinstance(raw, list) else [p for p in _split(raw) if p]
            if not items:
                raise ValidationError(_("Give at least one value."))
            value = []
            for item in items:
                stored = stored_value(ref, record_type, item)
                value.extend(stored if isinstance(stored, list) else [stored])
        else:
            if coerce.is_empty(raw):
                raise ValidationError(_("Give a value, or use “is empty”."))
            value = stored_value(ref, record_type, raw)
    except ValidationError as exc:
        raise ValidationError(
            _("%(field)s: %(error)s") % {"field": ref.label, "error": " ".join(exc.messages)}
        ) from None
    return {"field": name, "op": op, "value": value}


def _split(raw: Any) -> list[str]:
    return (
        [part.strip() for part in types.LIST_SEPARATORS.split(coerce.to_text(raw))] if raw else []
    )


def clean_conditions(record_type: str, conditions: Any) -> dict:
    """The conditions with every value checked and in stored form; a ValidationError
    lists every condition that is wrong."""
    if conditions in (None, "", {}, []):
        return {"match": "all", "conditions": []}
    if isinstance(conditions, list):
        conditions = {"match": "all", "conditions": conditions}
    if not isinstance(conditions, dict) or conditions.get("match", "all") not in ("all", "any"):
        raise ValidationError(_("Conditions are grouped with “all” or “any”."))
    errors: list[str] = []
    cleaned = []
    for entry in conditions.get("conditions") or []:
        if isinstance(entry, dict) and "conditions" in entry:
            if entry.get("match", "all") not in ("all", "any"):
                errors.append(_("Conditions are grouped with “all” or “any”."))
                continue
            leaves = []
            for leaf in entry.get("conditions") or []:
                if isinstance(leaf, dict) and "conditions" in leaf:
                    errors.append(_("Groups nest one level deep."))
                    continue
                try:
                    leaves.append(clean_leaf(record_type, leaf))
                except ValidationError as exc:
                    errors.extend(exc.messages)
            cleaned.append({"match": entry.get("match", "all"), "conditions": leaves})
        else:
            try:
                cleaned.append(clean_leaf(record_type, entry))
            except ValidationError as exc:
                errors.extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    return {"match": conditions.get("match", "all"), "conditions": cleaned}


def leaves(conditions: dict) -> list[dict]:
    """Every leaf, groups flattened (for the impact view)."""
    found = []
    for entry in (conditions or {}).get("conditions") or []:
        if "conditions" in entry:
            found.extend(entry["conditions"])
        else:
            found.append(entry)
    return found


# --- Conditions as one filter --------------------------------------------------------


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _values(leaf: dict) -> list:
    value = leaf.get("value")
    return value if isinstance(value, list) else [value]


def _day_bounds(leaf: dict, kind: str) -> tuple[Any, Any]:
    today = timezone.localdate()
    days = int(leaf["value"])
    low, high = (
        (today, today + timedelta(days=days))
        if leaf["op"] == "within_next"
        else (
            today - timedelta(days=days),
            today,
        )
    )
    if kind == DATETIME:
        low = timezone.make_aware(datetime.combine(low, time.min))
        high = timezone.make_aware(datetime.combine(high, time.max))
    return low, high


def _standard_q(ref: FieldRef, leaf: dict) -> Q:
    name, op, kind = ref.name, leaf["op"], ref.kind
    field = ref.model_field
    if kind == TAGS:
        through = field.remote_field.through
        source = field.m2m_field_name()
        target = field.m2m_reverse_field_name()
        tagged = through.objects.filter(**{source: OuterRef("pk")})
        if op in ("empty", "not_empty"):
            q = Q(Exists(tagged))
            return ~q if op == "empty" else q
        names = _values(leaf)
        q = Q(Exists(tagged.filter(**{f"{target}__name__in": names})))
        return ~q if op == "not_in" else q
    if op in ("empty", "not_empty"):
        if field.null:
            empty = Q(**{f"{name}__isnull": True})
        else:
            empty = Q(**{name: ""}) if kind == TEXT else Q(pk__in=[])
        return empty if op == "empty" else ~empty
    lookup = name
    if kind == ITEM:
        lookup = f"{name}__code"
    elif kind == USER:
        lookup = f"{name}__username"
    values = _values(leaf)
    if kind == NUMBER:
        values = [Decimal(str(v)) for v in values]
    elif kind == DATE:
        values = [date.fromisoformat(v) if isinstance(v, str) else v for v in values]
    if op in DAY_OPS:
        low, high = _day_bounds(leaf, kind)
        return Q(**{f"{name}__gte": low, f"{name}__lte": high})
    if op == "gt":
        if kind == DATETIME:
            return Q(**{f"{name}__gt": datetime.fromisoformat(values[0])})
        return Q(**{f"{name}__gt": values[0]})
    if op == "lt":
        if kind == DATETIME:
            return Q(**{f"{name}__lt": datetime.fromisoformat(values[0])})
        return Q(**{f"{name}__lt": values[0]})
    if op == "contains":
        return Q(**{f"{name}__icontains": values[0]})
    if kind == TEXT:
        positive = (
            Q(**{f"{name}__iexact": values[0]})
            if op in ("eq", "ne")
            else Q(**{f"{name}__in": values})
        )
    else:
        positive = (
            Q(**{lookup: values[0]}) if op in ("eq", "ne") else Q(**{f"{lookup}__in": values})
        )
    if op in ("eq", "in"):
        return positive
    # "Level is not VIP" holds for a customer with no level too.
    blank = Q(**{f"{name}__isnull": True}) if field.null else Q(pk__in=[])
    return blank | ~positive


# The conditions `in_python` checks on the record in hand: standard number, choice and
# text columns, where the comparison means the same in Python as in SQL — for text,
# when the values have no upper or lower case (Chinese, digits: SQL's UPPER() leaves
# them as they are, so "contains" is a plain substring). Other text, dates (time zones),
# relations and custom fields are checked in SQL.
PYTHON_OPS = {"eq", "ne", "in", "not_in", "gt", "lt", "empty", "not_empty", "contains"}


def _caseless(text: str) -> bool:
    return all(c.upper() == c == c.lower() for c in text)


def in_python(record_type: str, leaf: dict, record) -> bool | None:
    """The condition on the loaded record, exactly as `leaf_q` filters it (NULL: "does
    not equal" and "is none of" hold, the rest do not); None when it is one to check in
    the database."""
    ref = field_ref(record_type, leaf.get("field", ""))
    op = leaf.get("op")
    if ref is None or ref.custom is not None or op not in PYTHON_OPS:
        return None
    field = ref.model_field
    text = ref.kind == TEXT and isinstance(field, (models.CharField, models.TextField))
    if ref.kind == NUMBER and isinstance(field, (models.DecimalField, models.IntegerField)):
        parse = _decimal
    elif (ref.kind == CHOICE and isinstance(field, models.CharField)) or text:
        parse = str
    else:
        return None
    value = getattr(record, field.attname)
    if op in ("empty", "not_empty"):
        empty = value is None or (text and not field.null and value == "")
        return empty == (op == "empty")
    try:
        wanted = [parse(v) for v in _values(leaf)]
    except (ArithmeticError, TypeError, ValueError):
        return None
    if text and op in ("eq", "ne", "contains") and not _caseless(wanted[0]):
        return None  # case-insensitive in SQL: UPPER() of letters is the database's
    if op == "contains":
        return value is not None and wanted[0] in value if text else None
    if op in ("gt", "lt"):
        if value is None:
            return False
        return value > wanted[0] if op == "gt" else value < wanted[0]
    found = value is not None and value in (wanted[:1] if op in ("eq", "ne") else wanted)
    return found if op in ("eq", "in") else not found


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _custom_q(ref: FieldRef, leaf: dict) -> Q:
    cf, op, kind = ref.custom, leaf["op"], ref.kind
    key = cf.key
    present = Q(**{f"custom__{key}__isnull": False})
    if op in ("empty", "not_empty"):
        return ~present if op == "empty" else present
    text = KT(f"custom__{key}")
    values = _values(leaf)
    if kind == MULTI:

        def has(code):
            if _postgres():
                return Q(custom__contains={key: [code]})
            return Q(**{f"custom__{key}__icontains": f'"{code}"'})

        any_of = Q(pk__in=[])
        for code in values:
            any_of |= has(code)
        # "None of" holds for a record with no value too (a NULL never negates to true).
        return (~present | ~any_of) if op == "not_in" else any_of
    if kind in (BOOL, USER):
        if kind == USER:
            ids = list(User.objects.filter(username__in=values).values_list("pk", flat=True))
            positive = Q(pk__in=[])
            for pk in ids:
                positive |= Q(**{f"custom__{key}": pk})
        else:
            positive = Q(**{f"custom__{key}": bool(values[0])})
        return positive if op in ("eq", "in") else (~present | ~positive)
    if kind == NUMBER:
        number = Numeric(text)
        decimals = [Decimal(str(v)) for v in values]
        if op == "gt":
            return Q(GreaterThan(number, decimals[0]))
        if op == "lt":
            return Q(LessThan(number, decimals[0]))
        positive = Q(In(number, decimals))
        return positive if op in ("eq", "in") else (~present | ~positive)
    if kind in (DATE, DATETIME):
        if op in DAY_OPS:
            low, high = _day_bounds(leaf, kind)
            if kind == DATETIME:
                low, high = types.to_storage(cf, low), types.to_storage(cf, high)
            else:
                low, high = low.isoformat(), high.isoformat()
            return Q(GreaterThanOrEqual(text, low)) & Q(LessThanOrEqual(text, high))
        if op == "gt":
            return Q(GreaterThan(text, str(values[0])))
        if op == "lt":
            return Q(LessThan(text, str(values[0])))
        positive = Q(Exact(text, str(values[0])))
        return positive if op == "eq" else (~present | ~positive)
    if op == "contains":
        return Q(IContains(text, str(values[0])))
    if kind == TEXT and op in ("eq", "ne"):
        positive = Q(**{f"custom__{key}__iexact": values[0]})
    else:
        positive = Q(In(text, [str(v) for v in values]))
    return positive if op in ("eq", "in") else (~present | ~positive)


def leaf_q(record_type: str, leaf: dict) -> Q:
    ref = field_ref(record_type, leaf["field"])
    if ref is None:
        # A field deleted since the rule was saved: the condition cannot hold.
        return Q(pk__in=[])
    return _custom_q(ref, leaf) if ref.custom is not None else _standard_q(ref, leaf)


def _combine(qs: list[Q], match: str) -> Q:
    if not qs:
        return Q()
    combined = qs[0]
    for q in qs[1:]:
        combined = (combined | q) if match == "any" else (combined & q)
    return combined


def conditions_q(record_type: str, conditions: dict) -> Q:
    parts = []
    for entry in (conditions or {}).get("conditions") or []:
        if "conditions" in entry:
            parts.append(
                _combine(
                    [leaf_q(record_type, leaf) for leaf in entry["conditions"]],
                    entry.get("match", "all"),
                )
            )
        else:
            parts.append(leaf_q(record_type, entry))
    return _combine(parts, (conditions or {}).get("match", "all"))


# --- Reading a value for the trace -------------------------------------------------


def actual_value(record, ref: FieldRef) -> str:
    """The record's value of a field as people read it, for the trace."""
    from crm.services.history import display_value

    if ref.custom is not None:
        stored = (record.custom or {}).get(ref.custom.key)
        if stored is None:
            return ""
        return str(types.display_value(ref.custom, stored))
    if ref.kind == TAGS:
        return "、".join(tag.name for tag in record.tags.all())
    value = getattr(record, ref.name, None)
    if ref.kind == CHOICE:
        return str(getattr(record, f"get_{ref.name}_display")())
    return display_value(value)


# "Within the next N days" with its number, as a whole sentence for the translators.
DAY_TEXTS = {
    "within_next": gettext_lazy("%(field)s within the next %(n)s days"),
    "within_last": gettext_lazy("%(field)s within the last %(n)s days"),
}


def describe_leaf(record_type: str, leaf: dict) -> str:
    """ "级别 不等于 VIP" — a condition in words, labels looked up now."""
    ref = field_ref(record_type, leaf.get("field", ""))
    label = ref.label if ref else leaf.get("field", "?")
    op = leaf.get("op")
    if op in DAY_OPS:
        return str(DAY_TEXTS[op]) % {"field": label, "n": leaf.get("value")}
    if op in NO_VALUE:
        return f"{label} {OPERATORS[op]}"
    shown = "、".join(value_label(ref, v) for v in _values(leaf))
    return f"{label} {OPERATORS.get(op, op)} {shown}"


def value_label(ref: FieldRef | None, value: Any) -> str:
    """A value in stored form as people read it: an item's label, a person's name."""
    if ref is None:
        return str(value)
    if ref.kind == ITEM:
        item = DictionaryItem.objects.filter(dictionary__code=ref.dictionary, code=value).first()
        return str(item) if item else str(value)
    if ref.kind in (CHOICE, MULTI) and ref.custom is not None:
        item = DictionaryItem.objects.filter(
            dictionary_id=ref.custom.dictionary_id, code=value
        ).first()
        return str(item) if item else str(value)
    if ref.kind == CHOICE and ref.model_field is not None:
        return str(dict(ref.model_field.choices).get(value, value))
    if ref.kind == BOOL:
        return _("yes") if value else _("no")
    if ref.kind == USER:
        user = User.objects.filter(username=value).first()
        return str(user) if user else str(value)
    return str(value)
