"""PostgreSQL trigram and bigram indexes on the searched text of leads and deals, as
crm/0003 and crm/0004 made for customers and contacts: the global search and the
lists' quick search match `UPPER(col) LIKE UPPER('%q%')` on a lead's company, person,
email and WeChat and a deal's title; without these, each is a sequential scan (38 ms of
a 67 ms search at 50k deals). The bigram indexes serve 2-character queries (a name
such as 王伟), with crm.services.search.HasBigram (pipelines.apps registers the
columns): a trigram index given a 2-character pattern returns every row, slower than
reading the table. Nothing happens on other databases.
"""

from django.db import migrations

# (index name, table, indexed expression)
TRIGRAM = [
    ("lead_company_trgm", "pipelines_lead", "UPPER(company_name)"),
    ("lead_person_trgm", "pipelines_lead", "UPPER(person_name)"),
    ("lead_email_trgm", "pipelines_lead", "UPPER(email)"),
    ("lead_wechat_trgm", "pipelines_lead", "UPPER(wechat)"),
    ("lead_phone_trgm", "pipelines_lead", "phone"),
    ("deal_title_trgm", "pipelines_deal", "UPPER(title)"),
]
# (index name, table, column): crm_bigrams(UPPER(column)), the function of crm/0004.
BIGRAM = [
    ("lead_company_bigram", "pipelines_lead", "company_name"),
    ("lead_person_bigram", "pipelines_lead", "person_name"),
    ("lead_email_bigram", "pipelines_lead", "email"),
    ("lead_wechat_bigram", "pipelines_lead", "wechat"),
    ("deal_title_bigram", "pipelines_deal", "title"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in TRIGRAM:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expression}) gin_trgm_ops)"
        )
    for name, table, column in BIGRAM:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (crm_bigrams(UPPER({column})))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in TRIGRAM + BIGRAM:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0006_date_range"),
        ("crm", "0006_search_bigrams_plpgsql"),
    ]

    operations = [migrations.RunPython(create, drop)]
