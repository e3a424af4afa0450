"""PostgreSQL trigram indexes for the search and the lists' quick search.

`icontains` compiles to UPPER(col::text) LIKE UPPER('%q%') and `contains` to
col::text LIKE '%q%'; GIN indexes with gin_trgm_ops on exactly those expressions let
PostgreSQL answer them without reading the whole table (for 3+ characters: a 2-character
Chinese query has no trigram and still scans). Nothing happens on other databases
(SQLite searches by scanning, which is fine at its sizes).

pg_trgm needs a database with a UTF-8 ctype to index Chinese (see FACTS.md); it is a
trusted extension, so the database owner may create it.
"""

from django.db import migrations

# (index name, table, indexed expression)
INDEXES = [
    ("customer_name_trgm", "crm_customer", "UPPER(name)"),
    ("customer_email_trgm", "crm_customer", "UPPER(email)"),
    ("customer_phone_trgm", "crm_customer", "phone"),
    ("contact_name_trgm", "crm_contact", "UPPER(name)"),
    ("contact_email_trgm", "crm_contact", "UPPER(email)"),
    ("contact_mobile_trgm", "crm_contact", "mobile"),
    ("contact_phone_trgm", "crm_contact", "phone"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expression}) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    # The extension stays: other objects may use it, and it costs nothing.


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_default_dictionaries")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
