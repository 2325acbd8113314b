"""Scoring writes: model versions and job requests (the lifecycle of a running job is in
``scoring.pipeline``).

The database row of a job is the source of truth; its Celery message only carries the job id and
is sent once the request's transaction commits. A message lost to a broker restart is sent again
by :func:`scoring_jobs_recover`; the conditional claim makes a duplicate harmless.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from lusweb.broker import task_send
from lusweb.errors import ServiceError
from lusweb.jsonable import jsonable
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Study
from scoring import runtime
from scoring.models import ExamScore, JobStatus, ModelVersion, ScoringJob
from scoring.study_model import study_model_id

logger = logging.getLogger(__name__)

#: The Celery task that runs a job (``scoring.tasks.score_exam``). Sent by name: the tasks call
#: these services, so importing the task module here would make a cycle.
SCORE_EXAM_TASK = "scoring.tasks.score_exam"
#: The Celery task that recomputes an exam's severity from the score of record (cpu queue).
SEVERITY_REFRESH_TASK = "scoring.tasks.severity_refresh"


def lease_seconds() -> int:
    return int(getattr(settings, "SCORING_LEASE_SECONDS", 120))


# --- model versions --------------------------------------------------------------------------


def weights_metadata(scorer: Any) -> dict[str, Any]:
    """The metadata a loaded scorer's weights carry, as JSON."""
    return jsonable(getattr(scorer, "meta", None) or getattr(scorer, "metadata", None) or {})  # type: ignore[no-any-return]


def sync_metadata(version: ModelVersion, metadata: dict[str, Any]) -> None:
    """Describe a version by its weights file as loaded now (``metadata``: :func:`weights_metadata`).

    The same weights re-saved with more metadata (e.g. calibration figures, a domain check) keep
    their version - their scores stay valid - so the row is refreshed rather than duplicated.
    """
    if version.metadata != metadata:
        ModelVersion.objects.filter(pk=version.pk).update(metadata=metadata)
        version.metadata = metadata


def model_version_register(*, weights: str = "", activate: bool = False) -> ModelVersion:
    """Register the weights ``weights`` ('' = the default weights) and optionally activate them."""
    scorer = runtime.get_scorer(weights)
    metadata = weights_metadata(scorer)
    with transaction.atomic():
        version, created = ModelVersion.objects.get_or_create(
            version=str(scorer.version), defaults={"weights": weights, "metadata": metadata}
        )
        if not created:
            sync_metadata(version, metadata)
        if activate and not version.is_active:
            ModelVersion.objects.filter(is_active=True).update(is_active=False)
            version.is_active = True
            version.save(update_fields=["is_active"])
    return version


def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    with transaction.atomic():
        ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.refresh_from_db()
    return version


def model_version_active() -> ModelVersion:
    """The active model version; the default weights are registered and activated on first use."""
    active = ModelVersion.objects.filter(is_active=True).first()
    return active if active is not None else model_version_register(weights="", activate=True)


def model_version_for(*, study: Study | int) -> ModelVersion:
    """The model the study scores with: the site model a study admin promoted (or the version they
    rolled back to), else the active model (the default weights are registered on first use)."""
    chosen = study_model_id(study if isinstance(study, int) else study.pk)
    version = ModelVersion.objects.filter(pk=chosen).first() if chosen else None
    return version or model_version_active()


# --- requesting jobs ---------------------------------------------------------------------------


#: Reasons of bulk work: queued on ``gpu-bulk``, which workers serve only when no clinician's job
#: (an upload, a rescore of one exam, a retry) waits on ``gpu`` (``lusweb.celery.WORKER_QUEUES``).
BULK_REASONS = frozenset({"study-rescore", "demo", "training"})


def scoring_queue(reason: str) -> str:
    """The queue of a scoring request for ``reason``."""
    return "gpu-bulk" if reason in BULK_REASONS else "gpu"


def _dispatch(job_id: int, *, reason: str = "upload") -> bool:
    """Send the job's message; when the broker cannot be reached (False) the job keeps no
    ``dispatched_at`` and the workers' recovery loop sends it (``scoring_jobs_recover``).

    Never with a countdown: a message with an ETA leaves Redis at once and skips the strict queue
    order. The upload debounce happens in the task once it is taken (``pipeline.scoring_job_settle``).
    """
    sent = task_send(SCORE_EXAM_TASK, args=(job_id,), queue=scoring_queue(reason))
    ScoringJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now() if sent else None)
    return sent


def scoring_job_request(
    *, exam: Exam, reason: str = "upload", by: Any = None, model_version: ModelVersion | None = None
) -> ScoringJob:
    """Ask for the exam to be scored; dispatched when the surrounding transaction commits.

    A job still pending for the same exam and model is reused: it reads the exam's clips when it
    starts, and it starts only once the exam's clips have been quiet for ``SCORING_DEBOUNCE_SECONDS``
    (``pipeline.scoring_job_settle``), so a burst of twelve uploads becomes one job.
    """
    version = model_version or model_version_for(study=exam.patient.study_id)
    with transaction.atomic():
        Exam.objects.select_for_update().filter(pk=exam.pk).first()  # serialise requests per exam
        job = ScoringJob.objects.filter(exam=exam, model_version=version, status=JobStatus.PENDING).first()
        if job is None:
            job = ScoringJob.objects.create(exam=exam, model_version=version, reason=reason, requested_by=by,
                                            step="queued")
        job_id = job.pk
        # The request's own reason picks the queue: a clinician's upload promotes a pending bulk job
        # (the duplicate message is harmless: the job is claimed once).
        transaction.on_commit(lambda: _dispatch(job_id, reason=reason), robust=True)
    return job


def severity_refresh_request(*, exam_id: int) -> None:
    """Recompute the exam's severity from its score of record once the current transaction commits
    (a clinician reading or adjudication was saved). A light task: no CNN, the stored features.
    An exam the AI has not scored yet has no features: nothing is sent."""
    if not ExamScore.objects.filter(exam_id=exam_id).exists():
        return
    # A broker outage loses this refresh (logged); the next scoring of the exam recomputes it.
    transaction.on_commit(lambda: task_send(SEVERITY_REFRESH_TASK, args=(exam_id,), queue="cpu"), robust=True)


def scoring_job_retry(*, job: ScoringJob, by: Any) -> ScoringJob:
    """Put a failed or cancelled job back in the queue."""
    permissions.require_write(by, job.exam.patient.study)
    updated = ScoringJob.objects.filter(pk=job.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.PENDING, error="", progress=0.0, step="queued for retry", reason="retry",
        lease_expires_at=None, finished_at=None,
    )
    if not updated:
        raise ServiceError(f"job {job.pk} is {job.status}; only failed or cancelled jobs can be retried",
                           code="not_retryable", status=409)
    transaction.on_commit(lambda: _dispatch(job.pk), robust=True)
    job.refresh_from_db()
    return job


def scoring_job_cancel(*, job: ScoringJob, by: Any) -> ScoringJob:
    permissions.require_write(by, job.exam.patient.study)
    ScoringJob.objects.filter(pk=job.pk, status__in=[JobStatus.PENDING, JobStatus.RUNNING]).update(
        status=JobStatus.CANCELLED, step="cancelled", finished_at=timezone.now(), lease_expires_at=None
    )
    job.refresh_from_db()
    return job


def study_rescore(*, study: Study, by: Any = None, force: bool = False) -> list[ScoringJob]:
    """Rescore every exam of the study with the model it scores with (its site model, else the
    active one); earlier results are kept. Exams already scored by that version are skipped unless
    ``force``.
    """
    if by is not None:
        permissions.require_admin(by, study)
    version = model_version_for(study=study)
    jobs = []
    for exam in Exam.objects.filter(patient__study=study).order_by("pk"):
        if not exam.clips.exists():
            continue
        done = ScoringJob.objects.filter(exam=exam, model_version=version, status=JobStatus.SUCCEEDED).exists()
        if done and not force:
            continue
        jobs.append(scoring_job_request(exam=exam, reason="study-rescore", by=by, model_version=version))
    return jobs


def scoring_jobs_recover(*, stale_after: float | None = None) -> int:
    """Re-dispatch jobs whose message may have been lost (broker restart, killed worker).

    Pending jobs never sent (the broker was down) or not dispatched for ``stale_after`` seconds,
    and running jobs whose lease expired, are sent again; the conditional claim makes a duplicate
    message harmless. Stops at the first refusal of the broker; the next round tries again.
    """
    if stale_after is None:
        stale_after = float(getattr(settings, "SCORING_REDISPATCH_SECONDS", 300))
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=stale_after)
    stale = ScoringJob.objects.filter(
        Q(status=JobStatus.PENDING) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff))
        | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - dt.timedelta(seconds=lease_seconds())))
    ).values_list("pk", "reason")
    sent = []
    for job_id, reason in stale:
        if not _dispatch(job_id, reason=reason):
            break  # the broker is down: the next round tries again
        sent.append(job_id)
    if sent:
        logger.info("re-dispatched %d scoring jobs: %s", len(sent), sent)
    return len(sent)
