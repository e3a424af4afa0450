# Written by hand, 2026-12-06

from django.db import migrations

NUMERIC_TYPES = ("integer", "decimal", "money")
TABLES = {
    "customer": "crm_customer",
    "contact": "crm_contact",
    "lead": "pipelines_lead",
    "deal": "pipelines_deal",
}
PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def rebuild(apps, schema_editor):
    """Numeric custom-field indexes move to the guarded cast the queries now compile to
    (crm.fields.indexes.numeric_sql): a plain ::numeric index would no longer serve them,
    and building one failed on a row version holding text that is not a number."""
    if schema_editor.connection.vendor != "postgresql":
        return
    CustomField = apps.get_model("crm", "CustomField")
    existing = set(schema_editor.connection.introspection.table_names())
    fields = CustomField.objects.filter(field_type__in=NUMERIC_TYPES, is_active=True)
    for cf in fields:
        table = TABLES.get(cf.record_type)
        if not (cf.filterable or cf.show_in_list) or table not in existing:
            continue
        text = f"(custom ->> '{cf.key}')"
        expr = f"(CASE WHEN ({text}) ~ '{PATTERN}' THEN (({text}))::numeric END)"
        ascending = f"cf_{cf.record_type}_{cf.key}_idx"
        descending = f"cf_{cf.record_type}_{cf.key}_desc"
        schema_editor.execute(f"DROP INDEX IF EXISTS {ascending}")
        schema_editor.execute(f"CREATE INDEX {ascending} ON {table} ({expr})")
        schema_editor.execute(f"DROP INDEX IF EXISTS {descending}")
        if cf.show_in_list:
            schema_editor.execute(
                f"CREATE INDEX {descending} ON {table} ({expr} DESC NULLS LAST)"
            )


class Migration(migrations.Migration):
    dependencies = [("crm", "0013_date_range")]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
