"""PostgreSQL trigram and bigram indexes on a contact's WeChat ID.

The contact list's quick search matches the WeChat ID beside the name and email
(crm.filters.ContactFilter); without an index of its own, that one column made every
quick search read all contacts (a rep's 王伟: 240 ms at 200,000 contacts). The same
indexes as the name's (migrations 0003 and 0004); nothing happens on other databases.
"""

from django.db import migrations

INDEXES = [
    ("contact_wechat_trgm", "USING gin ((UPPER(wechat)) gin_trgm_ops)"),
    ("contact_wechat_bigram", "USING gin (crm_bigrams(UPPER(wechat)))"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, method in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON crm_contact {method}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _method in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("crm", "0022_customer_owner_ids")]

    operations = [migrations.RunPython(create, drop)]
