"""Scoring's subscriptions (``ScoringConfig.ready``): a stored clip (``clip_stored``) queues its
exam in the ingest transaction and the Celery message leaves only once that commits; an override's
audit records the AI's reading it replaces; a clinician's reading (``reading_saved``) sends a
severity refresh of its exam to the cpu queue once the transaction commits."""
from __future__ import annotations

import io
from typing import Any

import pytest

from lusweb.errors import ServiceError
from patients.audit.models import AuditEvent
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.signals import clip_stored
from patients.readings.selectors import clip_record
from patients.readings.services import score_override_create
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from scoring import pipeline, tasks
from scoring.models import JobStatus, ModelVersion, ScoringJob
from scoring.services import SCORE_EXAM_TASK, _dispatch
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import png_bytes
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def exam_and_user() -> tuple[Exam, Any]:
    ModelVersion.objects.create(version="hook-v1", weights="", is_active=True)
    study = StudyFactory(protocol="12-zone", deidentify=False)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    return ExamFactory(patient=PatientFactory(study=study)), user


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The messages of ``score_exam`` that leave for the broker."""
    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.score_exam, "apply_async",
                        lambda args=None, kwargs=None, **options: messages.append({"args": list(args), **options}))
    return messages


def _ingest(exam: Exam, user: Any, seed: int, zone: str) -> ZoneClip:
    return clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(seed)), zone=zone, by=user, filename="x.png").clip


def test_a_stored_clip_queues_its_exam_and_the_message_leaves_on_commit(
        exam_and_user: tuple[Exam, Any], sent: list[dict[str, Any]], settings: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    exam, user = exam_and_user
    settings.SCORING_ON_UPLOAD = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _ingest(exam, user, 1, "R1")
        _ingest(exam, user, 2, "L1")
    job = ScoringJob.objects.get(exam=exam)  # a burst of uploads shares one pending job
    assert (job.status, job.reason, job.requested_by) == (JobStatus.PENDING, "upload", user)
    assert sent == [] and job.dispatched_at is None  # nothing left before the commit
    for callback in callbacks:
        callback()
    assert [m["args"] for m in sent] == [[job.pk], [job.pk]] and {m["queue"] for m in sent} == {"gpu"}
    job.refresh_from_db()
    assert job.dispatched_at is not None


def test_no_job_without_scoring_on_upload(exam_and_user: tuple[Exam, Any], sent: list[dict[str, Any]],
                                          settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    exam, user = exam_and_user
    settings.SCORING_ON_UPLOAD = False
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(exam, user, 1, "R1")
    assert not ScoringJob.objects.filter(exam=exam).exists() and sent == []


def test_the_job_commits_with_the_clip_or_not_at_all(exam_and_user: tuple[Exam, Any], sent: list[dict[str, Any]],
                                                     settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    exam, user = exam_and_user
    settings.SCORING_ON_UPLOAD = True

    def refuse(sender: Any, **kwargs: Any) -> None:  # connected after scoring's receiver: runs after it
        raise ServiceError("refused after scoring queued the exam", code="refused")

    clip_stored.connect(refuse)
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(ServiceError):
            _ingest(exam, user, 1, "R1")
    finally:
        clip_stored.disconnect(refuse)
    assert not ZoneClip.objects.filter(exam=exam).exists()
    assert not ScoringJob.objects.filter(exam=exam).exists() and sent == []


def test_the_message_is_the_registered_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sent by name, the job still goes through ``score_exam`` itself (so eager mode runs it inline)."""
    assert tasks.score_exam.name == SCORE_EXAM_TASK
    ran: list[int] = []
    monkeypatch.setattr(pipeline, "scoring_job_execute", lambda *, job_id, worker: ran.append(job_id) or "gone")
    conf = tasks.score_exam.app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = True
    try:
        _dispatch(424242)
    finally:
        conf.task_always_eager = eager
    assert ran == [424242]


def test_an_override_audits_the_ai_score_it_replaces(exam_and_user: tuple[Exam, Any]) -> None:
    exam, user = exam_and_user
    clip = builders.fake_clip(exam, "R1")
    assert clip_record(clip=clip).ai_score is None
    builders.record_scores(exam, {"R1": 2}, mv=ModelVersion.objects.get(version="hook-v1"))
    assert clip_record(clip=clip).ai_score == 2
    score_override_create(clip=clip, score=3, reason="white lung", by=user)
    event = AuditEvent.objects.get(action="override")
    assert event.changes["score"] == {"old": 2, "new": 3} and event.changes["source"] == {"old": "ai", "new": "override"}
