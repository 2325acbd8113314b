"""The real pipeline: a Celery worker process on the real Redis broker checks uploaded clips
(queue ``ingest``) and scores their exams, survives SIGKILL mid-exam without losing or
duplicating scores."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from patients.readings.models import ReadingSource, ZoneReading
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from scoring.models import ClipScore, ExamScore, JobStatus, ScoringJob
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture


def _exam_with_clips(api_for: Callable[..., APIClient], *, frames: int, size: int,
                     check_here: bool = False) -> tuple[Exam, list[int]]:
    """Twelve zone clips uploaded through the API (202 each). The ingest worker checks them, or,
    with ``check_here``, this process does (the same ``clip_process``) before returning."""
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom, write_mp4
    from patients.imaging.process import clip_process

    study = StudyFactory(protocol="12-zone")
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    api = api_for(user)
    truth = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, zone in enumerate(exam.zone_codes):
            score = [0, 1, 2, 3][i % 4]
            phantom = phantom_cohort_clip(score, seed=100 + i, n_frames=frames, rows=size, columns=size)
            path = Path(tmp) / f"{zone}.{'dcm' if i % 2 else 'mp4'}"
            (write_dicom if i % 2 else write_mp4)(phantom, path)
            response = api.post(f"/api/v1/exams/{exam.pk}/clips/",
                                {"zone": zone, "file": SimpleUploadedFile(path.name, path.read_bytes())},
                                format="multipart")
            assert response.status_code == 202 and response.data["status"] == "pending", response.data
            if check_here:
                processed = clip_process(clip_id=response.data["id"])
                assert processed is not None and processed.clip.status == "ready", processed
            truth.append(score)
    return exam, truth


def _wait(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _done(exam: Exam) -> bool:
    return ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED).exists()


def test_worker_scores_a_twelve_zone_exam(worker_env: Callable[..., Worker],
                                          api_for: Callable[..., APIClient]) -> None:
    worker = worker_env()
    exam, _truth = _exam_with_clips(api_for, frames=20, size=160)
    # Uploads trigger scoring as they arrive: an early job may see only part of the exam; the
    # exam is scored when a job that saw all twelve zones has succeeded.
    _wait(lambda: ExamScore.objects.filter(exam=exam, coverage=1.0).exists(), 240, "the exam to be scored",
          worker.log)
    job = ExamScore.objects.get(exam=exam, coverage=1.0).job
    scores = ClipScore.objects.filter(job=job)
    assert scores.count() == 12 and sorted(scores.values_list("zone", flat=True)) == sorted(exam.zone_codes)
    result = ExamScore.objects.get(job=job)
    assert result.luss == sum(s.score for s in scores)
    assert result.coverage == 1.0 and result.missing_zones == [] and result.max_luss == 36
    assert {s.model_version_id for s in scores} == {job.model_version_id}
    for s in scores:
        probs = s.frame_probs
        assert probs.shape == (20, 4)
        assert abs(float(probs.sum(axis=1).mean()) - 1.0) < 1e-2
    assert job.timings["frames"] == 240.0 and job.worker
    api_view = APIClient()
    api_view.force_authenticate(Membership.objects.get(study=exam.patient.study).user)
    data = api_view.get(f"/api/v1/exams/{exam.pk}/").data["scores"]
    assert data["status"] == "succeeded" and data["luss"] == result.luss
    # The worker stored the AI's reading of every zone beside its score: the exam's record, not reviewed.
    assert data["luss_ai"] == result.luss and {z["source"] for z in data["zones"]} == {"ai"}
    for s in scores:
        ai = ZoneReading.objects.filter(clip=s.clip, source=ReadingSource.AI).order_by("-created_at").first()
        assert ai is not None and (ai.score, ai.rater_name) == (s.score, f"model:{job.model_version.version}")
    assert api_view.get(f"/api/v1/exams/{exam.pk}/").data["review_status"] == "draft"
    assert data["model_version"] == job.model_version.version
    assert [z["zone"] for z in data["zones"]] == list(exam.zone_codes)
    for z in data["zones"]:  # the probability the reader sees is the one of the given score
        assert z["confidence"] == pytest.approx(z["probs"][z["score"]], abs=1e-3)
    # Phantoms are not the scanner the weights were trained on: every zone is flagged.
    assert data["out_of_domain_zones"] == list(exam.zone_codes)
    assert all(z["in_domain"] is False and z["domain_distance"] > 2 for z in data["zones"])
    # The default weights' cross-validated figures travel with every exam's scores.
    cv = job.model_version.metadata["cv"]
    assert data["model_cv"]["accuracy"] == pytest.approx(cv["accuracy"]["mean"], abs=1e-3)
    assert data["model_cv"]["n_patients"] == 42
    page = Client()
    page.force_login(Membership.objects.get(study=exam.patient.study).user)
    html = page.get(f"/exams/{exam.pk}/").content.decode()
    assert 'id="out-of-domain"' in html and "12 zones" in html
    assert 'id="score-confidence"' in html and f"agrees with the expert on {round(100 * cv['accuracy']['mean'])} %" in html
    frames = api_view.get(f"/api/v1/clips/{scores.first().clip_id}/frames/").data
    assert len(frames["frame_probs"]) == 20 and len(frames["frame_scores"]) == 20
    assert frames["in_domain"] is False and frames["confidence"] == pytest.approx(
        frames["clip_probs"][frames["clip_score"]], abs=1e-3)
    viewer = page.get(f"/clips/{scores.first().clip_id}/viewer/").content.decode()
    assert "unlike training clips" in viewer
    job_api = api_view.get(f"/api/v1/jobs/{job.pk}/").data
    assert job_api["status"] == "succeeded" and job_api["progress"] == 1.0
    # Severity ran as the last step, with its zone attention (BLUE-point zones of a 12-zone exam).
    severity = api_view.get(f"/api/v1/exams/{exam.pk}/").data["severity"]
    assert severity is not None and severity["label"] in ("mild", "moderate", "severe", "critical")
    assert abs(sum(severity["probs"]) - 1.0) < 1e-4
    assert set(severity["zone_attention"]) == {"R1", "R2", "R4", "L1", "L2", "L4"}
    assert abs(sum(severity["zone_attention"].values()) - 1.0) < 1e-4
    assert severity["severe_probability"] == pytest.approx(sum(severity["probs"][2:]), abs=1e-6)
    assert severity["input_source"] == "ai"


def test_sigkill_mid_exam_then_a_new_worker_completes_without_duplicates(
    worker_env: Callable[..., Worker], api_for: Callable[..., APIClient], settings: Any
) -> None:
    # All twelve clips first, then one job: the kill must land inside that job.
    settings.SCORING_ON_UPLOAD = False
    exam, _ = _exam_with_clips(api_for, frames=90, size=224, check_here=True)
    first = worker_env()
    from scoring.services import scoring_job_request

    scoring_job_request(exam=exam, reason="upload")

    def running_midway() -> bool:
        job = ScoringJob.objects.filter(exam=exam).first()
        return job is not None and job.status == JobStatus.RUNNING and job.progress >= 0.2

    _wait(running_midway, 240, "the job to be running mid-exam", first.log)
    assert not _done(exam)
    first.kill()
    job = ScoringJob.objects.get(exam=exam)
    assert job.status == JobStatus.RUNNING and ClipScore.objects.filter(job=job).count() == 0
    second = worker_env()
    _wait(lambda: _done(exam), 300, "a new worker to finish the exam", second.log)
    job.refresh_from_db()
    assert job.attempts >= 2 and job.status == JobStatus.SUCCEEDED
    assert ScoringJob.objects.filter(exam=exam).count() == 1
    zones = list(ClipScore.objects.filter(clip__exam=exam).values_list("zone", flat=True))
    assert sorted(zones) == sorted(exam.zone_codes)  # exactly one score per zone
    assert ExamScore.objects.filter(exam=exam).count() == 1


def test_a_failure_is_readable_and_retry_succeeds(worker_env: Callable[..., Worker],
                                                 api_for: Callable[..., APIClient]) -> None:
    worker = worker_env()
    exam, _ = _exam_with_clips(api_for, frames=8, size=128)

    def scored_and_idle() -> bool:  # uploads checked one by one may have queued several jobs: all done
        busy = ScoringJob.objects.filter(exam=exam, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).exists()
        return ExamScore.objects.filter(exam=exam, coverage=1.0).exists() and not busy

    _wait(scored_and_idle, 240, "first scoring", worker.log)
    scored_before = ExamScore.objects.filter(exam=exam).count()
    clip = exam.clips.first()
    assert clip is not None
    # Lose the decoded frames on disk, and the clip prepared from them by the first scoring
    # (scoring.prepared): the next scoring fails with a readable reason.
    Path(clip.frames.path).unlink()
    prepared = sorted(Path(clip.frames.path).parent.glob("prepared-*.npz"))
    assert prepared, "the first scoring kept the clip prepared"
    for path in prepared:
        path.unlink()
    user = Membership.objects.get(study=exam.patient.study).user
    api = api_for(user)
    from scoring.services import scoring_job_request

    job = scoring_job_request(exam=exam, reason="rescore")
    _wait(lambda: ScoringJob.objects.get(pk=job.pk).status == JobStatus.FAILED, 120, "the failure", worker.log)
    job.refresh_from_db()
    assert "No such file" in job.error or "FileNotFoundError" in job.error
    assert api.get(f"/api/v1/exams/{exam.pk}/").data["scores"]["status"] == "failed"
    # Put the frames back (re-upload with replace would also do) and retry through the API.
    from patients.imaging.core.framecache import frames_npz
    from scoring.engine import read_clip

    Path(clip.frames.path).write_bytes(frames_npz(read_clip(clip.file.path).frames))
    response = api.post(f"/api/v1/jobs/{job.pk}/retry/")
    assert response.status_code == 202 and response.data["status"] == "pending"
    _wait(lambda: ScoringJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 120, "the retry", worker.log)
    assert ExamScore.objects.filter(exam=exam).count() == scored_before + 1  # history kept: and the retry


def test_a_broker_restart_loses_no_job(worker_env: Callable[..., Worker], api_for: Callable[..., APIClient],
                                       settings: Any) -> None:
    """Redis here keeps nothing on disk: a restart empties the queues. The job row survives and a
    worker's recovery round sends it again."""
    import redis

    settings.SCORING_ON_UPLOAD = False
    exam, _ = _exam_with_clips(api_for, frames=8, size=128, check_here=True)
    from scoring.services import scoring_job_request

    job = scoring_job_request(exam=exam, reason="upload")
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.llen("gpu") >= 1
    client.delete("gpu", "cpu")  # what a broker restart without persistence does
    worker = worker_env()
    _wait(lambda: ScoringJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, 120, "the recovered job",
          worker.log)
    assert ExamScore.objects.filter(exam=exam).count() == 1
