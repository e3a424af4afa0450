"""Database indexes behind custom fields, created and dropped as admins change them.

- unique → a unique expression index on the key's text value, so the database refuses
  a duplicate even when two saves race (PostgreSQL and SQLite alike);
- filterable or shown in lists → an expression index the list's filter and sort use on
  PostgreSQL (text as `custom ->> 'key'`, numbers cast to numeric where they look like
  one: numeric_sql; multiple choice uses the table's one GIN `jsonb_path_ops` index via
  `@>`). See FACTS.md.

Keys are validated as [a-z][a-z0-9_]*, so they are safe to write into the DDL.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection, models
from django.db.models.fields.json import KT
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from ..models import CustomField, FieldType

NUMERIC_TYPES = frozenset({FieldType.INTEGER, FieldType.DECIMAL, FieldType.MONEY})

# record type → model of the types with custom fields, from their RecordTypeSpec
# (crm.records, through schema.register_record_type).
_models: dict[str, tuple[str, str]] = {}


def register_model(record_type: str, app_label: str, model_name: str) -> None:
    _models[record_type] = (app_label, model_name)


def model_for(record_type: str) -> type[models.Model] | None:
    target = _models.get(record_type)
    return apps.get_model(*target) if target else None


def unique_index_name(cf: CustomField) -> str:
    return f"cf_{cf.record_type}_{cf.key}_uniq"


def lookup_index_name(cf: CustomField) -> str:
    return f"cf_{cf.record_type}_{cf.key}_idx"


def descending_index_name(cf: CustomField) -> str:
    return f"cf_{cf.record_type}_{cf.key}_desc"


def gin_index_name(table: str) -> str:
    return f"{table}_custom_gin"


def _text_expr(key: str) -> str:
    if connection.vendor == "postgresql":
        return f"(custom ->> '{key}')"
    return f"json_extract(custom, '$.\"{key}\"')"


# What a stored number looks like (crm.fields.types.to_storage: an int, or fixed-point
# text). The numeric expression casts only text of that shape: a cast of anything else
# would fail the whole statement, and CREATE INDEX also evaluates row versions that an
# older transaction may still see (a type change's pre-conversion "1,200").
NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def numeric_sql(text_sql: str) -> str:
    """PostgreSQL: the number in `text_sql`, NULL when it holds none. Queries compile to
    this same expression (crm.fields.query.Numeric) so the index serves them."""
    return f"(CASE WHEN ({text_sql}) ~ '{NUMBER_PATTERN}' THEN (({text_sql}))::numeric END)"


def _lookup_expr(cf: CustomField) -> str:
    text = _text_expr(cf.key)
    if connection.vendor == "postgresql" and cf.field_type in NUMERIC_TYPES:
        return numeric_sql(text)
    return text


def duplicate_values(cf: CustomField, *, limit: int = 20) -> list[str]:
    """Values more than one record holds (a unique constraint cannot be added then)."""
    model = model_for(cf.record_type)
    if model is None:
        return []
    rows = (
        (
            model._default_manager.annotate(_v=KT(f"custom__{cf.key}"))
            .exclude(_v__isnull=True)
            .values("_v")
            .annotate(_n=models.Count("pk"))
            .filter(_n__gt=1)
            .values_list("_v", flat=True)[:limit]
        )
        if connection.vendor == "postgresql"
        else _sqlite_duplicates(model, cf, limit)
    )
    return [str(v) for v in rows]


def _sqlite_duplicates(model, cf: CustomField, limit: int) -> list[str]:
    table = model._meta.db_table
    expr = _text_expr(cf.key)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {expr} FROM {table} WHERE {expr} IS NOT NULL "  # noqa: S608 - key validated
            f"GROUP BY {expr} HAVING COUNT(*) > 1 LIMIT %s",
            [limit],
        )
        return [row[0] for row in cursor.fetchall()]


def sync(cf: CustomField, *, type_changed: bool = False) -> None:
    """Make the indexes match the field's current definition (idempotent; an existing
    lookup index is rebuilt only when the type, and so its expression, changed)."""
    model = model_for(cf.record_type)
    if model is None:
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # PostgreSQL will not index a table with pending trigger events (the deferred
            # foreign-key checks of rows this transaction wrote): run those checks now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        name = unique_index_name(cf)
        if cf.unique and cf.is_active:
            cursor.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({_text_expr(cf.key)})"
            )
        else:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        # Lists sort empty values last in both directions: the ascending index serves
        # filters and ascending sorts; a column shown in lists (sortable) also gets a
        # descending one on PostgreSQL (one index read backwards would put them first).
        plain = (
            cf.is_active
            and (cf.filterable or cf.show_in_list)
            and cf.field_type != FieldType.MULTI_CHOICE
        )
        descending = plain and cf.show_in_list and connection.vendor == "postgresql"
        for name, wanted, order in (
            (lookup_index_name(cf), plain, ""),
            (descending_index_name(cf), descending, " DESC NULLS LAST"),
        ):
            if type_changed or not wanted:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
            if not wanted:
                continue
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({_lookup_expr(cf)}{order})"
            )
        if (
            connection.vendor == "postgresql"
            and cf.field_type == FieldType.MULTI_CHOICE
            and cf.filterable
        ):
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {gin_index_name(table)} ON {table} "
                "USING gin (custom jsonb_path_ops)"
            )


def drop(cf: CustomField) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {unique_index_name(cf)}")
        cursor.execute(f"DROP INDEX IF EXISTS {lookup_index_name(cf)}")
        cursor.execute(f"DROP INDEX IF EXISTS {descending_index_name(cf)}")


def sync_all() -> None:
    """Re-create every custom field's indexes (after a database restore or a test DB)."""
    for cf in CustomField.objects.all():
        sync(cf)


@receiver(pre_save, sender=CustomField)
def _remember_type(sender, instance: CustomField, raw=False, **kwargs) -> None:
    previous = None
    if instance.pk:
        previous = (
            CustomField.objects.filter(pk=instance.pk).values_list("field_type", flat=True).first()
        )
    instance._previous_type = previous


@receiver(post_save, sender=CustomField)
def _sync_after_save(sender, instance: CustomField, raw=False, **kwargs) -> None:
    if raw:
        return
    previous = getattr(instance, "_previous_type", None)
    sync(instance, type_changed=previous is not None and previous != instance.field_type)


@receiver(post_delete, sender=CustomField)
def _drop_after_delete(sender, instance: CustomField, **kwargs) -> None:
    drop(instance)
