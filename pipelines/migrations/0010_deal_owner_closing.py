from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0009_lead_board_order")]

    operations = [
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                fields=["owner", "status", "expected_close_date", "id"], name="deal_owner_closing"
            ),
        ),
    ]
