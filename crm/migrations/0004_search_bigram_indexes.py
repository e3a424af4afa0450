"""PostgreSQL bigram indexes: 2-character searches (王伟, 恒信) without a table scan.

A trigram index cannot serve LIKE '%王伟%' (the pattern has no trigram), so such a query
reads the whole table. crm_bigrams(text) returns the distinct 2-character substrings of
a text; a GIN index on crm_bigrams(UPPER(name)) finds the rows whose name contains a
given pair, and the search (crm.services.search.icontains_q) adds that condition to
its LIKE for 2-character queries on PostgreSQL. The results do not change: the LIKE
still decides. Nothing happens on other databases.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION crm_bigrams(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(value, i, 2)), '{}')
    FROM generate_series(1, char_length(value) - 1) AS i
$$
"""

# (index name, table, column)
INDEXES = [
    ("customer_name_bigram", "crm_customer", "name"),
    ("customer_email_bigram", "crm_customer", "email"),
    ("contact_name_bigram", "crm_contact", "name"),
    ("contact_email_bigram", "crm_contact", "email"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION)
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin (crm_bigrams(UPPER({column})))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    schema_editor.execute("DROP FUNCTION IF EXISTS crm_bigrams(text)")


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_search_trigram_indexes")]

    operations = [migrations.RunPython(create, drop)]
