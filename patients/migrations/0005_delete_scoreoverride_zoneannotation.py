from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("patients", "0004_readings_from_overrides"),
    ]

    operations = [
        migrations.DeleteModel(
            name="ScoreOverride",
        ),
        migrations.DeleteModel(
            name="ZoneAnnotation",
        ),
    ]
