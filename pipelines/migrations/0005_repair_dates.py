# Written by hand, 2026-12-06

import datetime
from django.db import migrations, models
from django.db.models import Q


def repair_dates(apps, schema_editor):
    """An expected close date nobody could have meant (year 1, year 9999), stored before
    dates were bounded, is cleared."""
    Deal = apps.get_model("pipelines", "Deal")
    Deal.objects.filter(
        Q(expected_close_date__lt=datetime.date(1900, 1, 1))
        | Q(expected_close_date__gt=datetime.date(2099, 12, 31))
    ).update(expected_close_date=None)


class Migration(migrations.Migration):
    """Repairs rows out of the date range before 0006_date_range adds the constraints (in a
    migration of its own: PostgreSQL will not ALTER a table with pending trigger events
    from the updates in the same transaction)."""

    dependencies = [
        ('pipelines', '0004_stage_history_report_indexes'),
        ('crm', '0012_repair_dates'),
    ]

    operations = [
        migrations.RunPython(repair_dates, migrations.RunPython.noop),
    ]
