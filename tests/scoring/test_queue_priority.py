"""Interactive work before bulk work (issue 16): with a study's rescoring queued, a clinician's job
is taken first by a real worker on real Redis (queues ``gpu`` before ``gpu-bulk``, served in the
order of ``lusweb.celery.WORKER_QUEUES`` with Redis's ``priority`` queue order)."""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lusweb.celery import WORKER_QUEUES
from patients.imaging.ingest import clip_ingest
from patients.records.models import Exam
from patients.studies.models import Role, Study
from scoring.models import JobStatus, ScoringJob
from scoring.services import scoring_job_request, scoring_queue, study_rescore
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture
BULK_EXAMS = 4


def _exam(study: Study, seed: int) -> Exam:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4

    exam = ExamFactory(patient=PatientFactory(study=study))
    clinician = UserFactory()
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(1, seed=seed, n_frames=8, rows=96, columns=96), buf)
    clip_ingest(exam=exam, upload=SimpleUploadedFile("R1.mp4", buf.getvalue()), zone="R1", by=clinician,
                filename="R1.mp4")
    return exam


def test_queues_by_reason() -> None:
    assert scoring_queue("upload") == scoring_queue("rescore") == scoring_queue("retry") == "gpu"
    assert scoring_queue("study-rescore") == scoring_queue("demo") == scoring_queue("training") == "gpu-bulk"
    queues = WORKER_QUEUES.split(",")
    assert queues.index("ingest") < queues.index("gpu") < queues.index("gpu-bulk")


def test_a_clinicians_job_goes_before_queued_bulk_jobs(worker_env: Callable[..., Worker], settings: Any) -> None:
    import redis

    settings.SCORING_ON_UPLOAD = False  # the jobs below are the only ones
    study = StudyFactory(protocol="12-zone")
    bulk_exams = [_exam(study, seed=i) for i in range(BULK_EXAMS)]
    clinic = StudyFactory(protocol="12-zone")
    clinic_exams = [_exam(clinic, seed=99), _exam(clinic, seed=98)]
    bulk = study_rescore(study=study)  # queued first
    assert len(bulk) == BULK_EXAMS and {j.reason for j in bulk} == {"study-rescore"}
    # Two clinicians' jobs, queued last. Two, because a round-robin worker would take the first of
    # them first too (its first fetch tries the queues in -Q order), then one bulk job before the
    # second: only a strict queue order takes both before any bulk job.
    interactive = [scoring_job_request(exam=clinic_exams[0], reason="rescore"),
                   scoring_job_request(exam=clinic_exams[1], reason="rescore")]
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.llen("gpu-bulk") == BULK_EXAMS and client.llen("gpu") == 2
    worker = worker_env()
    worker.wait_ready()
    deadline = time.monotonic() + 240
    ids = [j.pk for j in bulk] + [j.pk for j in interactive]
    while ScoringJob.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).count() < len(ids):
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.25)
    started = dict(ScoringJob.objects.filter(pk__in=ids).values_list("pk", "started_at"))
    bulk_starts = sorted(started[j.pk] for j in bulk)
    assert max(started[j.pk] for j in interactive) < bulk_starts[0], (started, bulk_starts)
    assert {e.pk for e in bulk_exams} == set(ScoringJob.objects.filter(pk__in=[j.pk for j in bulk]).values_list(
        "exam_id", flat=True))


def _burst_exam() -> tuple[Exam, Any]:
    study = StudyFactory(protocol="12-zone")
    clinician = UserFactory()
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    return ExamFactory(patient=PatientFactory(study=study)), clinician


def _upload(exam: Exam, by: Any, zone: str, seed: int) -> None:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4

    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(1, seed=seed, n_frames=8, rows=96, columns=96), buf)
    clip_ingest(exam=exam, upload=SimpleUploadedFile(f"{zone}.mp4", buf.getvalue()), zone=zone, by=by,
                filename=f"{zone}.mp4")


def test_upload_jobs_are_sent_without_eta_and_a_burst_shares_one_job(settings: Any) -> None:
    """An ETA message leaves Redis at once and skips the queue order: upload jobs carry none.
    The messages on the real broker are read back; the burst's three uploads share one job."""
    import base64
    import json

    import redis

    from tests.conftest import require  # lazy: keeps the module's imports those of the other tests

    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set: no real broker")
    settings.SCORING_ON_UPLOAD = True
    settings.SCORING_DEBOUNCE_SECONDS = 2
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("gpu")
    exam, clinician = _burst_exam()
    for i, zone in enumerate(["R1", "R2", "L1"]):
        _upload(exam, clinician, zone, seed=i)
    jobs = list(ScoringJob.objects.filter(exam=exam))
    assert len(jobs) == 1 and jobs[0].status == JobStatus.PENDING and jobs[0].dispatched_at is not None
    messages = [json.loads(raw) for raw in client.lrange("gpu", 0, -1)]
    assert len(messages) == 3  # one per upload; the claim makes the spares harmless
    for message in messages:
        headers = message["headers"]
        assert headers["task"] == "scoring.tasks.score_exam"
        assert headers.get("eta") is None and headers.get("countdown") is None, headers
        assert json.loads(base64.b64decode(message["body"]))[0] == [jobs[0].pk]
    client.delete("gpu")


def test_a_burst_taken_by_a_worker_is_scored_as_one_job(worker_env: Callable[..., Worker], settings: Any) -> None:
    """The worker takes the first upload's message at once; the job waits for the burst to settle
    (``SCORING_DEBOUNCE_SECONDS``), so the later uploads join it and one job scores every clip."""
    from scoring.models import ClipScore

    worker = worker_env(LUSWEB_SCORING_DEBOUNCE_SECONDS="2")
    worker.wait_ready()
    exam, clinician = _burst_exam()
    for i, zone in enumerate(["R1", "R2", "L1"]):
        _upload(exam, clinician, zone, seed=10 + i)
        time.sleep(0.3)
    deadline = time.monotonic() + 180
    while not ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED).exists():
        assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
        time.sleep(0.25)
    time.sleep(1.0)  # let the spare messages be taken and skipped
    jobs = list(ScoringJob.objects.filter(exam=exam))
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED], [(j.pk, j.status, j.step) for j in jobs]
    assert sorted(ClipScore.objects.filter(job=jobs[0]).values_list("zone", flat=True)) == ["L1", "R1", "R2"]
