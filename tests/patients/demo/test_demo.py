"""`make demo`'s data: three users who can log in with the printed passwords, and a cohort."""
from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from patients.demo.seed import DEMO_PATIENT_TASK, DEMO_QUEUE, DEMO_STUDY, DEMO_USERS, PHANTOM_RATER
from patients.imaging.models import ZoneClip
from patients.readings.models import ExamSignature, ReadingSource, ZoneReading
from patients.readings.selectors import record_scores, review_states
from patients.records.models import BloodGas, ClinicalInfo, Exam
from patients.studies.models import Membership, Study

pytestmark = pytest.mark.django_db


def test_demo_seed_creates_users_study_and_cohort() -> None:
    out = io.StringIO()
    call_command("demo_seed", patients=2, exams=2, frames=6, size=96, stdout=out)
    study = Study.objects.get(name=DEMO_STUDY)
    assert {(m.user.username, m.role) for m in Membership.objects.filter(study=study)} == {
        (u, r) for u, _p, r in DEMO_USERS
    }
    assert study.patients.count() == 2 and Exam.objects.filter(patient__study=study).count() == 4
    clips = ZoneClip.objects.filter(exam__patient__study=study)
    assert 36 <= clips.count() <= 48  # ~6 % of zones are left unscanned on purpose
    assert set(clips.values_list("format", flat=True)) == {"dicom", "mp4"}
    assert ClinicalInfo.objects.filter(patient__study=study).count() == 2
    assert BloodGas.objects.filter(patient__study=study).count() == 4
    # Every clip carries the score it was drawn with, as a rater the agreement page can compare.
    design = ZoneReading.objects.filter(clip__exam__patient__study=study, source=ReadingSource.IMPORTED,
                                        rater_name=PHANTOM_RATER)
    assert design.count() == clips.count()
    assert set(design.values_list("score", flat=True)) <= {0, 1, 2, 3}
    assert len(set(design.values_list("score", flat=True))) >= 2  # a course, not one score everywhere
    a = design.first()
    assert a is not None and set(a.findings) >= {"a_lines", "b_lines"}
    assert a.score == 0 or any(a.findings.values())  # a score above 0 comes with a finding drawn
    # The demo clinician read and signed each patient's first exam with the drawn scores; the last
    # exam of each patient waits for review.
    exams = list(Exam.objects.filter(patient__study=study).order_by("patient_id", "acquired_at"))
    states = review_states(exam_ids=[e.pk for e in exams])
    assert [states[e.pk].status for e in exams] == ["reviewed", "draft"] * 2
    assert {states[e.pk].signed_by for e in exams[::2]} == {"demo_clinician"}
    assert ExamSignature.objects.filter(exam__patient__study=study).count() == 2
    records = record_scores(exam_ids=[e.pk for e in exams])
    drawn = dict(design.values_list("clip_id", "score"))
    for exam in exams[::2]:
        assert {r.source for r in records[exam.pk].values()} == {"clinician"}
        assert {r.reader for r in records[exam.pk].values()} == {"demo_clinician"}
        assert all(r.score == drawn[r.clip_id] for r in records[exam.pk].values())
    assert not ZoneReading.objects.filter(clip__exam__in=exams[1::2], source=ReadingSource.CLINICIAN).exists()
    printed = out.getvalue()
    for username, password, _role in DEMO_USERS:
        assert username in printed and password in printed
        client = Client()
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302 and response["Location"] == "/", username
        home = client.get("/")
        assert DEMO_STUDY.encode() in home.content
    # Running it again keeps the data and resets the passwords.
    call_command("demo_seed", patients=2, exams=2, frames=6, size=96, stdout=io.StringIO())
    assert Study.objects.filter(name=DEMO_STUDY).count() == 1 and study.patients.count() == 2


def _queued(queue: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of the messages waiting on a Redis queue of the broker."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    out = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        out.append((message["headers"]["task"], args))
    return out


@pytest.mark.django_db(transaction=True)
def test_make_demo_seeds_the_first_patients_now_and_queues_the_rest_for_the_worker() -> None:
    from django.conf import settings

    from patients.demo.tasks import demo_patient_seed_task
    from tests.conftest import require

    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set: no broker to queue the demo's patients on")
    import redis

    redis.Redis.from_url(str(settings.CELERY_BROKER_URL)).delete(DEMO_QUEUE)
    out = io.StringIO()
    call_command("demo_seed", patients=3, exams=2, frames=6, size=96, first=1, stdout=out)
    study = Study.objects.get(name=DEMO_STUDY)
    assert list(study.patients.values_list("code", flat=True)) == ["DEMO-001"]
    queued = sorted(_queued(DEMO_QUEUE), key=lambda q: q[1][1])  # Redis lists hold the newest first
    options = {"patients": 3, "exams": 2, "frames": 6, "size": 96, "seed": 7}
    assert queued == [(DEMO_PATIENT_TASK, [study.pk, 1, options]), (DEMO_PATIENT_TASK, [study.pk, 2, options])]
    assert "DEMO-002..DEMO-003: queued" in out.getvalue()
    # What the worker does with each message; a message delivered twice changes nothing.
    assert [demo_patient_seed_task(*args) for _name, args in queued] == ["DEMO-002", "DEMO-003"]
    assert demo_patient_seed_task(*queued[0][1]) == "exists"
    assert sorted(study.patients.values_list("code", flat=True)) == ["DEMO-001", "DEMO-002", "DEMO-003"]
    assert Exam.objects.filter(patient__study=study).count() == 6
    # A second demo_seed finds nothing missing: nothing seeded, nothing queued.
    redis.Redis.from_url(str(settings.CELERY_BROKER_URL)).delete(DEMO_QUEUE)
    call_command("demo_seed", patients=3, exams=2, frames=6, size=96, first=1, stdout=io.StringIO())
    assert study.patients.count() == 3 and _queued(DEMO_QUEUE) == []


def test_a_patient_is_the_same_whenever_it_is_seeded() -> None:
    """Each patient has a generator of its own: seeded now or by the worker later, DEMO-002 is
    the same patient."""
    from patients.demo.seed import DemoOptions, demo_patient_seed, demo_users
    from patients.studies.services import study_create

    users = demo_users()
    options = DemoOptions(patients=2, exams=2, frames=6, size=96)
    drawn = []
    for name in ("A", "B"):
        study = study_create(name=f"demo {name}", protocol="12-zone", created_by=users["demo_admin"])
        Membership.objects.create(study=study, user=users["demo_clinician"], role="clinician")
        patient = demo_patient_seed(study=study, index=1, options=options)
        assert patient is not None and patient.code == "DEMO-002"
        drawn.append((patient.sex, patient.birth_year, sorted(ZoneReading.objects.filter(
            clip__exam__patient=patient, rater_name=PHANTOM_RATER).values_list("clip__zone", "score"))))
    assert drawn[0] == drawn[1] and drawn[0][2]
