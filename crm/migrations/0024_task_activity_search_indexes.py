"""PostgreSQL trigram and bigram indexes on a task's title and a follow-up's content.

The task list's quick search matches the title (and the customer's name), the follow-up
list's the content (and the customer's name); without an index of their own, every
search read all tasks or all follow-ups and worked out the bigrams of each (a rep's
/activities/?q=上海: 1.6 s at 580,000 follow-ups). The same indexes as a customer's
name (migrations 0003 and 0004); nothing happens on other databases.
"""

from django.db import migrations

INDEXES = [
    ("crm_task", "task_title_trgm", "USING gin ((UPPER(title)) gin_trgm_ops)"),
    ("crm_task", "task_title_bigram", "USING gin (crm_bigrams(UPPER(title)))"),
    ("crm_activity", "activity_content_trgm", "USING gin ((UPPER(content)) gin_trgm_ops)"),
    ("crm_activity", "activity_content_bigram", "USING gin (crm_bigrams(UPPER(content)))"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, method in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {method}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for _table, name, _method in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("crm", "0023_contact_wechat_search_indexes")]

    operations = [migrations.RunPython(create, drop)]
