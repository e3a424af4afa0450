# Written by hand, 2026-12-06

import datetime
from django.db import migrations, models
from django.db.models import Max, OuterRef, Q, Subquery

EARLIEST = datetime.datetime(1899, 12, 31, tzinfo=datetime.timezone.utc)
LATEST = datetime.datetime(2100, 1, 2, tzinfo=datetime.timezone.utc)


def _outside(field):
    return Q(**{f"{field}__lt": EARLIEST}) | Q(**{f"{field}__gte": LATEST})


def repair_dates(apps, schema_editor):
    """Rows stored before dates were bounded, with a moment PostgreSQL keeps but Python
    cannot read back (year 1 in Asia/Shanghai is year 0 in UTC): they broke every page
    showing them. A follow-up keeps the time it was logged; a planned time, a due time
    or a birthday nobody could have meant is cleared; a customer's last activity is
    worked out again from its follow-ups."""
    Activity = apps.get_model("crm", "Activity")
    Contact = apps.get_model("crm", "Contact")
    Customer = apps.get_model("crm", "Customer")
    Task = apps.get_model("crm", "Task")
    Activity.objects.filter(_outside("occurred_at")).update(occurred_at=models.F("created_at"))
    Activity.objects.filter(_outside("next_follow_up_at")).update(next_follow_up_at=None)
    Task.objects.filter(_outside("due_at")).update(due_at=None)
    Customer.objects.filter(_outside("next_follow_up_at")).update(next_follow_up_at=None)
    latest = (
        Activity.objects.filter(customer=OuterRef("pk"))
        .values("customer")
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    Customer.objects.filter(_outside("last_activity_at")).update(
        last_activity_at=Subquery(latest)
    )
    Contact.objects.filter(
        Q(birthday__lt=datetime.date(1900, 1, 1)) | Q(birthday__gt=datetime.date(2099, 12, 31))
    ).update(birthday=None)


class Migration(migrations.Migration):
    """Repairs rows out of the date range before 0013_date_range adds the constraints (in a
    migration of its own: PostgreSQL will not ALTER a table with pending trigger events
    from the updates in the same transaction)."""

    dependencies = [
        ('crm', '0011_activity_kind_time_index'),
    ]

    operations = [
        migrations.RunPython(repair_dates, migrations.RunPython.noop),
    ]
