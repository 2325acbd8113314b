"""The rules run by themselves once the work commits: an exam scored (the real pipeline), a
clinician's reading, a sign-off, a blood gas entered or changed; each alert raised is pushed to
the members' pages and e-mailed to the study's clinicians and admins when its rule says so."""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail

from patients.alerts.evaluate import SOURCE_AI, SOURCE_CLINICIAN
from patients.alerts.live import user_group
from patients.alerts.models import Alert, AlertKind
from patients.alerts.rules import alert_rules_update
from patients.alerts.selectors import member_open_counts
from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.ingest import clip_ingest
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import exam_sign, reading_create
from patients.records.services import blood_gas_create, blood_gas_update
from scoring import pipeline, services
from tests.patients.alerts.cohort import T0, cohort

pytestmark = pytest.mark.django_db


def test_a_clinician_s_reading_raises_the_alert_once_it_commits(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort()
    c.exam(day=0, read={"R1": 0})
    second = c.exam(day=1, ai={"R1": 1})
    with django_capture_on_commit_callbacks(execute=True):
        reading_create(clip=second.clips.get(zone="R1"), by=c.clinician, score=2)
    [alert] = Alert.objects.filter(exam=second)
    assert (alert.kind, alert.source, alert.details["score"]) == (AlertKind.ZONE_WORSENED, SOURCE_CLINICIAN, 2)


def test_the_e_mail_goes_to_clinicians_and_admins_with_the_code_rule_and_link(
        django_capture_on_commit_callbacks: Callable[..., Any], settings: Any) -> None:
    settings.SITE_URL = "https://lus.hospital.test"
    c = cohort(name="mail")
    c.exam(day=0, read={"L3": 1})
    second = c.exam(day=1, ai={"L3": 1})
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        reading_create(clip=second.clips.get(zone="L3"), by=c.clinician, score=3)
    alerts = {a.kind: a for a in Alert.objects.filter(exam=second)}
    assert set(alerts) == {AlertKind.ZONE_WORSENED, AlertKind.NEW_CONSOLIDATION}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        ["mail-clinician@hospital.test", "mail-study_admin@hospital.test"] * 2)  # never the researcher
    assert all(len(m.to) == 1 for m in mail.outbox)
    message = next(m for m in mail.outbox if "worsened" in m.subject)
    assert message.subject == "[LUSWeb] Alert: MAIL-01: A zone worsened by N points since the previous exam"
    assert "Patient MAIL-01" in message.body and "Zone L3 rose from 1 to 3 (+2 points)" in message.body
    assert f"https://lus.hospital.test/exams/{second.pk}/" in message.body
    assert c.patient.name not in message.body and c.patient.hospital_number not in message.body


def test_no_e_mail_when_the_rule_says_so(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort()
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "pf_ratio", "email": False}])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        gas = blood_gas_create(patient=c.patient, by=c.clinician, sampled_at=T0, pao2=60.0, fio2=0.4)
    assert Alert.objects.filter(blood_gas=gas, kind=AlertKind.PF_RATIO).count() == 1
    assert mail.outbox == []


def test_a_gas_entered_or_changed_checks_the_p_f_rule(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort()
    with django_capture_on_commit_callbacks(execute=True):
        gas = blood_gas_create(patient=c.patient, by=c.clinician, sampled_at=T0, pao2=105.0, fio2=0.3)  # 350
    assert not Alert.objects.filter(blood_gas=gas).exists()
    with django_capture_on_commit_callbacks(execute=True):
        blood_gas_update(gas=gas, by=c.clinician, sampled_at=T0, pao2=75.0, fio2=0.3)  # 250
    [alert] = Alert.objects.filter(blood_gas=gas)
    assert alert.message == "P/F 250 mmHg, below 300"


def test_signing_an_exam_checks_its_rules(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort()
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "global_score", "enabled": False}])
    scores = {"R1": 2, "R2": 2, "R3": 2, "R4": 2, "L1": 2, "L2": 2, "L3": 2, "L4": 1}  # LUSS 15/24
    exam = c.exam(day=0, read=scores)  # its readings' hooks never ran (no commit in this test)
    assert not Alert.objects.exists()
    alert_rules_update(study=c.study, by=c.admin, rules=[{"kind": "global_score", "enabled": True}])
    with django_capture_on_commit_callbacks(execute=True):
        exam_sign(exam=exam, by=c.clinician)
    [alert] = Alert.objects.filter(exam=exam)
    assert (alert.kind, alert.details["luss"], alert.source) == (AlertKind.GLOBAL_SCORE, 15, SOURCE_CLINICIAN)


def test_an_alert_is_pushed_to_every_member_with_their_open_count(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort(name="push")
    other = cohort(name="other")  # the researcher there is no member here: told nothing
    layer = get_channel_layer()
    users = {"clinician": c.clinician, "researcher": c.researcher, "outsider": other.researcher}
    channels = {name: async_to_sync(layer.new_channel)() for name in users}
    for name, user in users.items():
        async_to_sync(layer.group_add)(user_group(user.pk), channels[name])
    with django_capture_on_commit_callbacks(execute=True):
        gas = blood_gas_create(patient=c.patient, by=c.clinician, sampled_at=T0, pao2=50.0, fio2=0.5)  # 100
    alert = Alert.objects.get(blood_gas=gas)
    for name in ("clinician", "researcher"):
        message = async_to_sync(layer.receive)(channels[name])
        assert message["type"] == "alert.message"
        assert message["message"] == {"type": "alert", "event": "raised", "study": c.study.pk, "alert": alert.pk,
                                      "kind": "pf_ratio", "count": 1}
    assert member_open_counts(c.study.pk) == {c.clinician.pk: 1, c.researcher.pk: 1, c.admin.pk: 1}
    assert other.researcher.pk not in member_open_counts(c.study.pk)  # never told
    for name, user in users.items():
        async_to_sync(layer.group_discard)(user_group(user.pk), channels[name])


def test_the_scoring_pipeline_checks_the_exam_on_the_ai_s_record(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    c = cohort()
    version = services.model_version_register(activate=True)
    c.exam(day=0, read={"R1": 0, "L1": 0})
    exam = c.exam(day=1)
    with django_capture_on_commit_callbacks(execute=False):
        for zone, score in (("R1", 3), ("L1", 0)):
            buffer = io.BytesIO()
            write_dicom(phantom_cohort_clip(score, seed=7, n_frames=4, rows=96, columns=96), buffer)
            buffer.seek(0)
            clip_ingest(exam=exam, upload=buffer, zone=zone, by=c.clinician, filename=f"{zone}.dcm")
        job = services.scoring_job_request(exam=exam, reason="test", model_version=version)
    assert not Alert.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    ai = dict(ZoneReading.objects.filter(clip__exam=exam, source=ReadingSource.AI).values_list("clip__zone", "score"))
    worsened = {a.details["zone"]: a for a in Alert.objects.filter(exam=exam, kind=AlertKind.ZONE_WORSENED)}
    assert sorted(worsened) == sorted(z for z, s in ai.items() if s >= 2)
    assert ai["R1"] >= 2, ai  # the phantom of a score-3 zone: the AI reads it worse than 0
    assert worsened["R1"].source == SOURCE_AI and worsened["R1"].details["score"] == ai["R1"]
