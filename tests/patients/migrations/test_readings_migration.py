"""The readings migration, run back and forth with Django's MigrationExecutor: clinicians' score
overrides become clinician readings (reason -> comment, author, time), raters' annotations become
imported readings, existing AI scores become AI readings, and the audit trail is left as it was."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("patients", "0002_admin_audit_deid"), ("scoring", "0002_severity")]
AT = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] in ("patients", "scoring")]


def _old_world(apps: Any) -> dict[str, Any]:
    user = apps.get_model("auth", "User").objects.create(username="dr-old")
    study = apps.get_model("patients", "Study").objects.create(name="Old ward", protocol="12-zone", secret="s" * 64)
    patient = apps.get_model("patients", "Patient").objects.create(study=study, code="OLD-1")
    exam = apps.get_model("patients", "Exam").objects.create(patient=patient, acquired_at=AT, protocol="12-zone")
    clip_model = apps.get_model("patients", "ZoneClip")
    clips = {z: clip_model.objects.create(exam=exam, zone=z, file=f"t/{z}", frames=f"t/{z}.npz", sha256=z,
                                          size_bytes=1, format="png", frame_count=1, rows=1, columns=1)
             for z in ("R1", "R2", "R3")}
    override = apps.get_model("patients", "ScoreOverride")
    first = override.objects.create(clip=clips["R1"], score=1, reason="first look", by=user)
    second = override.objects.create(clip=clips["R1"], score=2, reason="B-lines partly confluent", by=user)
    override.objects.filter(pk=first.pk).update(at=AT)
    override.objects.filter(pk=second.pk).update(at=AT + dt.timedelta(hours=1))
    apps.get_model("patients", "ZoneAnnotation").objects.create(clip=clips["R2"], rater="expert", score=3,
                                                                 findings={"b_lines": True}, comment="expert view")
    apps.get_model("patients", "AuditEvent").objects.create(
        at=AT, actor=user, actor_username="dr-old", study=study, action="override", object_type="zoneclip",
        object_id=str(clips["R1"].pk), changes={"score": {"old": 3, "new": 1}})
    _old_scores(apps, exam, clips)
    return {"user": user, "clips": clips}


def _old_scores(apps: Any, exam: Any, clips: dict[str, Any]) -> None:
    """R1-R2 scored by the active model (R1 twice) and an old one; R3 only by the old one."""
    mv = apps.get_model("scoring", "ModelVersion")
    old, active = mv.objects.create(version="old", weights="o"), mv.objects.create(version="new", weights="n",
                                                                                      is_active=True)
    job_model, score_model = apps.get_model("scoring", "ScoringJob"), apps.get_model("scoring", "ClipScore")
    for version, zones in ((old, {"R1": 0, "R2": 0, "R3": 1}), (active, {"R1": 3, "R2": 2}), (active, {"R1": 2})):
        job = job_model.objects.create(exam=exam, model_version=version, status="succeeded")
        for zone, score in zones.items():
            probs = [0.1, 0.1, 0.1, 0.1]
            probs[score] = 0.7
            score_model.objects.create(job=job, clip=clips[zone], zone=zone, model_version=version, score=score,
                                       probs=probs, findings={"b_lines": 0.8, "a_lines": 0.2}, aggregator="mean",
                                       frame_count=1, frame_probs_f16=b"\x00" * 8,
                                       extra={"domain": {"in_domain": False}})


def test_overrides_and_annotations_become_readings_and_back() -> None:
    world = _old_world(_migrate(BEFORE))
    apps = _migrate(_latest())
    reading = apps.get_model("patients", "ZoneReading")
    clips = world["clips"]
    clinician = list(reading.objects.filter(source="clinician").order_by("created_at")
                     .values_list("clip_id", "rater_id", "rater_name", "score", "comment", "created_at"))
    assert clinician == [
        (clips["R1"].pk, world["user"].pk, "dr-old", 1, "first look", AT),
        (clips["R1"].pk, world["user"].pk, "dr-old", 2, "B-lines partly confluent", AT + dt.timedelta(hours=1)),
    ]
    imported = reading.objects.get(source="imported")
    assert (imported.clip_id, imported.rater_name, imported.score, imported.findings, imported.comment) == (
        clips["R2"].pk, "expert", 3, {"b_lines": True}, "expert view")
    # AI readings: every score of the active model; R3, never scored by it, gets the old model's.
    ai = sorted(reading.objects.filter(source="ai").values_list("clip_id", "rater_name", "score"))
    assert ai == sorted([(clips["R1"].pk, "model:new", 3), (clips["R1"].pk, "model:new", 2),
                         (clips["R2"].pk, "model:new", 2), (clips["R3"].pk, "model:old", 1)])
    r3 = reading.objects.get(source="ai", clip_id=clips["R3"].pk)
    assert (r3.confidence, r3.in_domain, r3.findings) == (0.7, False, {"b_lines": True, "a_lines": False})
    event = apps.get_model("patients", "AuditEvent").objects.get(action="override")
    assert (event.object_type, event.changes) == ("zoneclip", {"score": {"old": 3, "new": 1}})
    assert apps.get_model("scoring", "SeverityPrediction")._meta.get_field("input_source").default == "ai"
    # Back: the clinician readings are overrides again, with their reasons and times.
    old = _migrate(BEFORE)
    overrides = list(old.get_model("patients", "ScoreOverride").objects.order_by("at")
                     .values_list("clip_id", "score", "reason", "by_id", "at"))
    assert overrides == [(clips["R1"].pk, 1, "first look", world["user"].pk, AT),
                         (clips["R1"].pk, 2, "B-lines partly confluent", world["user"].pk, AT + dt.timedelta(hours=1))]
    assert list(old.get_model("patients", "ZoneAnnotation").objects.values_list("rater", "score")) == [("expert", 3)]
    # And forward again: the same readings.
    again = _migrate(_latest()).get_model("patients", "ZoneReading")
    assert again.objects.filter(source="clinician").count() == 2 and again.objects.filter(source="ai").count() == 4
