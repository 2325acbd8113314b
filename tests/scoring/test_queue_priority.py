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
