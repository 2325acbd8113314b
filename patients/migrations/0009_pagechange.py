"""The page cache's change log and the triggers that fill it (patients.dashboards.pagechanges)."""
from typing import Any

from django.db import migrations, models


def _install(apps: Any, schema_editor: Any) -> None:
    from patients.dashboards.pagechanges import install  # lazy: the triggers' SQL follows the models

    install(schema_editor.connection)


def _uninstall(apps: Any, schema_editor: Any) -> None:
    from patients.dashboards.pagechanges import uninstall  # lazy: as above

    uninstall(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0008_dicom_inbox_alerts'),
        ('scoring', '0004_site_models'),  # the triggers watch the scoring tables too
    ]

    operations = [
        migrations.CreateModel(
            name='PageChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(max_length=1)),
                ('key', models.BigIntegerField()),
                ('xact', models.BigIntegerField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('scope', 'key', 'xact'), name='pagechange_once_per_transaction')],
            },
        ),
        migrations.RunPython(_install, _uninstall),
    ]
