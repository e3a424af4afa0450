"""PostgreSQL: a covering index for the customer list's default order.

The list pages through ids ordered by created_at DESC, id DESC, filtered by the data
scope (owner_id). With owner_id included, PostgreSQL answers any page, even page 500,
from the index alone (an index-only scan) instead of reading every skipped row.
Other databases keep the plain created_at index.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS customer_created_list ON crm_customer "
            "(created_at DESC, id DESC) INCLUDE (owner_id)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS customer_created_list")


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_search_bigram_indexes")]

    operations = [migrations.RunPython(create, drop)]
