"""Job lifecycle without running the model: claim, lease, coalescing, retry, recovery."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.studies.models import Membership, Role
from scoring import pipeline, services
from scoring.models import JobStatus, ModelVersion, ScoringJob
from tests.factories import ExamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version() -> ModelVersion:
    return ModelVersion.objects.create(version="test-v1", weights="", is_active=True)


def test_claim_is_exclusive_until_the_lease_expires(version: ModelVersion, settings: Any) -> None:
    settings.SCORING_LEASE_SECONDS = 60
    job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version)
    assert pipeline.scoring_job_claim(job_id=job.pk, worker="w1") is True
    assert pipeline.scoring_job_claim(job_id=job.pk, worker="w2") is False
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, "w1", 1)
    # w1 dies: its lease runs out, w2 takes over.
    ScoringJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert pipeline.scoring_job_claim(job_id=job.pk, worker="w2") is True
    job.refresh_from_db()
    assert (job.worker, job.attempts) == ("w2", 2)


def test_finished_jobs_are_never_claimed(version: ModelVersion) -> None:
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version, status=status)
        assert pipeline.scoring_job_claim(job_id=job.pk, worker="w") is False
        assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "skipped"


def test_execute_on_a_deleted_exam_exits_cleanly(version: ModelVersion) -> None:
    job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version)
    job_id = job.pk
    job.exam.delete()
    assert pipeline.scoring_job_execute(job_id=job_id, worker="w") == "gone"


def test_live_lease_held_by_another_worker_asks_for_a_retry(version: ModelVersion) -> None:
    job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version)
    assert pipeline.scoring_job_claim(job_id=job.pk, worker="w1")
    with pytest.raises(pipeline.JobLeaseHeld) as held:
        pipeline.scoring_job_execute(job_id=job.pk, worker="w2")
    assert 1 <= held.value.retry_in <= services.lease_seconds() + 2


def test_the_task_leaves_a_leased_job_to_its_worker_and_the_recovery_loop(version: ModelVersion,
                                                                          settings: Any) -> None:
    """No retry message with a countdown (it would wait in this worker outside the queue order):
    the task answers "held", and once the lease expires the recovery loop sends the job again."""
    from scoring.tasks import score_exam

    settings.SCORING_LEASE_SECONDS = 60
    job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version, dispatched_at=timezone.now())
    assert pipeline.scoring_job_claim(job_id=job.pk, worker="w1")
    outcome = score_exam.apply(args=(job.pk,))
    assert outcome.successful() and outcome.result == "held"
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert services.scoring_jobs_recover() == 0  # the lease is live: nothing to send
    expired = timezone.now() - dt.timedelta(seconds=61)
    ScoringJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
                                                 dispatched_at=expired)
    assert services.scoring_jobs_recover() == 1  # sent again through the broker
    job.refresh_from_db()
    assert job.dispatched_at is not None and job.dispatched_at > expired


def test_lost_lease_stops_renewal(version: ModelVersion) -> None:
    job = ScoringJob.objects.create(exam=ExamFactory(), model_version=version)
    pipeline.scoring_job_claim(job_id=job.pk, worker="w1")
    ScoringJob.objects.filter(pk=job.pk).update(worker="w2")
    with pytest.raises(pipeline.LeaseLost):
        pipeline._renew(job, "w1", progress_value=0.5, step="x")


def test_requests_coalesce_while_pending_and_dispatch_on_commit(version: ModelVersion,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    exam = ExamFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = services.scoring_job_request(exam=exam)
        second = services.scoring_job_request(exam=exam)
    assert first.pk == second.pk
    assert ScoringJob.objects.filter(exam=exam).count() == 1
    assert len(callbacks) == 2  # each request dispatches after commit; the claim makes the spare harmless
    ScoringJob.objects.filter(pk=first.pk).update(status=JobStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=False):
        third = services.scoring_job_request(exam=exam)
    assert third.pk != first.pk  # a new clip after the job started needs a new job


def test_retry_only_failed_jobs_and_only_by_writers(version: ModelVersion,
                                                   django_capture_on_commit_callbacks: Any) -> None:
    exam = ExamFactory()
    clinician, researcher = UserFactory(), UserFactory()
    Membership.objects.create(study=exam.patient.study, user=clinician, role=Role.CLINICIAN)
    Membership.objects.create(study=exam.patient.study, user=researcher, role=Role.RESEARCHER)
    job = ScoringJob.objects.create(exam=exam, model_version=version, status=JobStatus.FAILED, error="boom")
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.scoring_job_retry(job=job, by=researcher)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retried = services.scoring_job_retry(job=job, by=clinician)
    assert (retried.status, retried.error, retried.reason) == (JobStatus.PENDING, "", "retry")
    assert len(callbacks) == 1
    with pytest.raises(ServiceError, match="only failed or cancelled jobs can be retried"):
        services.scoring_job_retry(job=retried, by=clinician)


def test_activating_a_version_deactivates_the_others(version: ModelVersion) -> None:
    other = ModelVersion.objects.create(version="test-v2", weights="x")
    services.model_version_activate(version=other)
    assert list(ModelVersion.objects.filter(is_active=True).values_list("version", flat=True)) == ["test-v2"]


def test_registering_again_refreshes_the_metadata_of_the_same_version() -> None:
    first = services.model_version_register(activate=True)
    assert "ece" in first.metadata["cv"] and first.metadata["domain_check"]["components"] == 10
    ModelVersion.objects.filter(pk=first.pk).update(metadata={"cv": {"accuracy": {"mean": 0.1}}})  # older file
    again = services.model_version_register()
    assert again.pk == first.pk and again.is_active
    assert again.metadata["cv"]["accuracy"]["mean"] == first.metadata["cv"]["accuracy"]["mean"]
    assert ModelVersion.objects.count() == 1
    # A worker that loads the weights for a job does the same (the active row is never
    # registered again once it exists).
    from scoring import runtime

    ModelVersion.objects.filter(pk=first.pk).update(metadata={})
    stale = ModelVersion.objects.get(pk=first.pk)
    services.sync_metadata(stale, services.weights_metadata(runtime.get_scorer("")))
    assert ModelVersion.objects.get(pk=first.pk).metadata == again.metadata == stale.metadata


def test_batches_group_clips_up_to_a_frame_budget() -> None:
    frames = [100, 100, 150, 50, 300]
    assert pipeline._batches(frames, max_frames=250) == [(0, 2), (2, 4), (4, 5)]
    assert pipeline._batches(frames, max_frames=10) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_a_newer_request_supersedes_the_running_job(monkeypatch: pytest.MonkeyPatch,
                                                    django_capture_on_commit_callbacks: Any) -> None:
    """A clip uploaded while the exam is being scored: the running job stops at its next step
    (no scores written), the newer job scores every clip."""
    import io

    from patients.imaging.ingest import clip_ingest
    from scoring import runtime
    from scoring.models import ClipScore, ExamScore
    from tests.patients.conftest import png_bytes

    real = services.model_version_register(activate=True)
    exam = ExamFactory()
    user = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    with django_capture_on_commit_callbacks(execute=False):
        clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(1)), zone="R1", by=user, filename="r1.png")
        first = services.scoring_job_request(exam=exam, reason="test", model_version=real)
    load = runtime.get_scorer
    newer: list[ScoringJob] = []

    def upload_while_loading(weights: str) -> Any:
        # The second zone arrives while the first job is loading its model.
        if not newer:
            with django_capture_on_commit_callbacks(execute=False):
                clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(2)), zone="L1", by=user, filename="l1.png")
                newer.append(services.scoring_job_request(exam=exam, reason="test", model_version=real))
        return load(weights)

    monkeypatch.setattr(runtime, "get_scorer", upload_while_loading)
    assert pipeline.scoring_job_execute(job_id=first.pk, worker="w") == "superseded"
    first.refresh_from_db()
    assert (first.status, first.step) == (JobStatus.CANCELLED, "superseded")
    assert f"superseded by job {newer[0].pk}" in first.error and first.lease_expires_at is None
    assert not ClipScore.objects.filter(job=first).exists() and not ExamScore.objects.filter(job=first).exists()
    assert pipeline.scoring_job_execute(job_id=newer[0].pk, worker="w") == "succeeded"
    assert sorted(ClipScore.objects.filter(job=newer[0]).values_list("zone", flat=True)) == ["L1", "R1"]
    # A job whose exam gets no newer request is not disturbed.
    assert pipeline._newer_request(newer[0]) is None



def test_a_pending_job_waits_for_the_burst_to_settle_at_most_the_debounce(version: ModelVersion,
                                                                         settings: Any) -> None:
    from patients.imaging.models import ZoneClip  # lazy: only this test reads clips
    from tests.patients.dashboards.builders import fake_clip  # lazy: only this test makes clips

    settings.SCORING_DEBOUNCE_SECONDS = 2
    exam = ExamFactory()
    job = ScoringJob.objects.create(exam=exam, model_version=version, reason="upload")
    assert pipeline.debounce_remaining(exam_id=exam.pk) == 0.0  # no clip: nothing to wait for
    clip = fake_clip(exam, "R1")
    naps: list[float] = []

    def nap(seconds: float) -> None:
        """Instead of sleeping, move the clip's arrival back by the time asked for."""
        naps.append(seconds)
        ZoneClip.all_objects.filter(pk=clip.pk).update(created_at=clip.created_at - dt.timedelta(seconds=sum(naps)))

    assert 1.5 < pipeline.debounce_remaining(exam_id=exam.pk) <= 2.0
    waited = pipeline.scoring_job_settle(job_id=job.pk, sleep=nap)
    assert 1.5 < waited <= 2.0 and len(naps) == 1
    assert pipeline.debounce_remaining(exam_id=exam.pk) == 0.0
    # Clips that keep arriving cannot hold the job longer than the debounce itself.
    fake_clip(exam, "R2")
    zones = iter(["R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6"])
    arrivals: list[float] = []

    def another_clip(seconds: float) -> None:
        arrivals.append(seconds)
        fake_clip(exam, next(zones))

    assert pipeline.scoring_job_settle(job_id=job.pk, sleep=another_clip) <= 2.0
    assert len(arrivals) >= 2 and sum(arrivals) <= 2.0
    # A job already running (a redelivery) does not wait.
    ScoringJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    assert pipeline.scoring_job_settle(job_id=job.pk, sleep=naps.append) == 0.0
