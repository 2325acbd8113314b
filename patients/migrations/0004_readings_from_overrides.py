"""Clinicians' score overrides become clinician readings (the reason is the comment) and raters'
annotations become imported readings. Audit events are left untouched: their history stays."""

from django.db import migrations


def forward(apps, schema_editor):
    ScoreOverride = apps.get_model("patients", "ScoreOverride")
    ZoneAnnotation = apps.get_model("patients", "ZoneAnnotation")
    ZoneReading = apps.get_model("patients", "ZoneReading")
    batch = []
    for o in ScoreOverride.objects.select_related("by").order_by("pk").iterator(chunk_size=1000):
        batch.append(ZoneReading(clip_id=o.clip_id, source="clinician", rater_id=o.by_id,
                                 rater_name=(o.by.username if o.by is not None else "")[:64], score=o.score,
                                 findings={}, comment=o.reason, created_at=o.at))
    for a in ZoneAnnotation.objects.order_by("pk").iterator(chunk_size=1000):
        batch.append(ZoneReading(clip_id=a.clip_id, source="imported", rater_name=a.rater, score=a.score,
                                 findings=a.findings or {}, comment=a.comment, created_at=a.at))
    ZoneReading.objects.bulk_create(batch, batch_size=1000)


def backward(apps, schema_editor):
    ScoreOverride = apps.get_model("patients", "ScoreOverride")
    ZoneAnnotation = apps.get_model("patients", "ZoneAnnotation")
    ZoneReading = apps.get_model("patients", "ZoneReading")
    overrides, annotations = [], []
    for r in ZoneReading.objects.order_by("pk").iterator(chunk_size=1000):
        if r.source in ("clinician", "adjudication") and r.score is not None:
            overrides.append(ScoreOverride(clip_id=r.clip_id, score=r.score, reason=r.comment or r.source,
                                           by_id=r.rater_id))
            overrides[-1]._at = r.created_at
        elif r.source == "imported":
            annotations.append(ZoneAnnotation(clip_id=r.clip_id, rater=r.rater_name, score=r.score,
                                              findings=r.findings or {}, comment=r.comment))
            annotations[-1]._at = r.created_at
    # ``at`` is auto_now_add: give the rows their readings' times after creating them.
    for model, rows in ((ScoreOverride, overrides), (ZoneAnnotation, annotations)):
        for row in rows:
            row.save()
            model.objects.filter(pk=row.pk).update(at=row._at)
    ZoneReading.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("patients", "0003_readings"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
