"""The lead board's columns read in order: an open column by (stage, status, newest), a
closed one by (stage, latest closed); and statistics that tell PostgreSQL a stage
decides a lead's status (open stages hold open leads).

Without them PostgreSQL guessed 955 open leads in the first stage (4,656: it multiplied
the two conditions' shares) and sorted a rep's 2,365 to show 20 cards rather than walk
the index. The statistics are PostgreSQL's own (CREATE STATISTICS); nothing happens on
other databases.
"""

from django.db import migrations, models

STATISTICS = "lead_stage_status"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (dependencies, mcv) "
            "ON stage_id, status FROM pipelines_lead"
        )
        schema_editor.execute("ANALYZE pipelines_lead")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0008_board_totals_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="lead", name="lead_stage"),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["stage", "status", "-created_at", "-id"], name="lead_stage"),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["stage", "-closed_at"], name="lead_stage_closed"),
        ),
        migrations.RunPython(create_statistics, drop_statistics),
    ]
