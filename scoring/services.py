"""Scoring writes: model versions, job lifecycle, results.

The database row of a job is the source of truth. A task only carries the job id, claims the
job with a conditional UPDATE (so two deliveries cannot both run it), renews a lease while it
works, and writes all results of an exam in one transaction at the end (so a worker killed
mid-exam leaves nothing partial; the redelivered task reclaims the job once the lease expires).
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from lusweb.errors import ServiceError
from patients import permissions
from patients.models import Exam, Study, ZoneClip
from patients.protocols import get_protocol
from scoring import progress, runtime
from scoring.models import ClipScore, ExamScore, JobStatus, ModelVersion, ScoringJob

logger = logging.getLogger(__name__)


class JobLeaseHeld(Exception):
    """Another worker holds a live lease on the job; try again when it may have expired."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"job is leased by another worker; retry in {retry_in:.0f}s")
        self.retry_in = retry_in


class LeaseLost(Exception):
    """Our lease expired and another worker took the job over: stop without writing."""


class Superseded(Exception):
    """A newer request for the same exam and model is waiting: its job reads every clip, ours
    would be stale the moment it finished, so we stop and let the worker move on."""

    def __init__(self, newer_job_id: int) -> None:
        super().__init__(f"superseded by job {newer_job_id}: new clips arrived while scoring")
        self.newer_job_id = newer_job_id


def lease_seconds() -> int:
    return int(getattr(settings, "SCORING_LEASE_SECONDS", 120))


def worker_name() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


# --- model versions --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _weights_metadata(scorer: Any) -> dict[str, Any]:
    return _jsonable(getattr(scorer, "meta", None) or getattr(scorer, "metadata", None) or {})  # type: ignore[no-any-return]


def _sync_metadata(version: ModelVersion, metadata: dict[str, Any]) -> None:
    """Describe a version by its weights file as loaded now (``metadata``: ``_weights_metadata``).

    The same weights re-saved with more metadata (e.g. calibration figures, a domain check) keep
    their version - their scores stay valid - so the row is refreshed rather than duplicated.
    """
    if version.metadata != metadata:
        ModelVersion.objects.filter(pk=version.pk).update(metadata=metadata)
        version.metadata = metadata


def model_version_register(*, weights: str = "", activate: bool = False) -> ModelVersion:
    """Register the weights ``weights`` ('' = the default weights) and optionally activate them."""
    scorer = runtime.get_scorer(weights)
    metadata = _weights_metadata(scorer)
    with transaction.atomic():
        version, created = ModelVersion.objects.get_or_create(
            version=str(scorer.version), defaults={"weights": weights, "metadata": metadata}
        )
        if not created:
            _sync_metadata(version, metadata)
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


# --- requesting jobs ---------------------------------------------------------------------------


def _dispatch(job_id: int, countdown: float = 0.0) -> None:
    from scoring.tasks import score_exam

    ScoringJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now())
    score_exam.apply_async(args=[job_id], queue="gpu", countdown=countdown or None)


def scoring_job_request(
    *, exam: Exam, reason: str = "upload", by: Any = None, model_version: ModelVersion | None = None
) -> ScoringJob:
    """Ask for the exam to be scored; dispatched when the surrounding transaction commits.

    A job still pending for the same exam and model is reused: it reads the exam's clips when it
    starts, so a burst of twelve uploads becomes one job.
    """
    version = model_version or model_version_active()
    with transaction.atomic():
        Exam.objects.select_for_update().filter(pk=exam.pk).first()  # serialise requests per exam
        job = ScoringJob.objects.filter(exam=exam, model_version=version, status=JobStatus.PENDING).first()
        if job is None:
            job = ScoringJob.objects.create(exam=exam, model_version=version, reason=reason, requested_by=by,
                                            step="queued")
        job_id = job.pk
        # Uploads arrive in bursts (twelve zones): a short delay lets them share one job.
        delay = float(getattr(settings, "SCORING_DEBOUNCE_SECONDS", 0)) if reason == "upload" else 0.0
        transaction.on_commit(lambda: _dispatch(job_id, delay))
    return job


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
    transaction.on_commit(lambda: _dispatch(job.pk))
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
    """Rescore every exam of the study with the active model; earlier results are kept.

    Exams already scored by the active version are skipped unless ``force``.
    """
    if by is not None:
        permissions.require_admin(by, study)
    version = model_version_active()
    jobs = []
    for exam in Exam.objects.filter(patient__study=study).order_by("pk"):
        if not exam.clips.exists():
            continue
        done = ScoringJob.objects.filter(exam=exam, model_version=version, status=JobStatus.SUCCEEDED).exists()
        if done and not force:
            continue
        jobs.append(scoring_job_request(exam=exam, reason="rescore", by=by, model_version=version))
    return jobs


def scoring_jobs_recover(*, stale_after: float | None = None) -> int:
    """Re-dispatch jobs whose message may have been lost (broker restart, killed worker).

    Pending jobs not dispatched for ``stale_after`` seconds and running jobs whose lease expired
    are sent again; the conditional claim makes a duplicate message harmless.
    """
    if stale_after is None:
        stale_after = float(getattr(settings, "SCORING_REDISPATCH_SECONDS", 300))
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=stale_after)
    stale = ScoringJob.objects.filter(
        Q(status=JobStatus.PENDING) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff))
        | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - dt.timedelta(seconds=lease_seconds())))
    ).values_list("pk", flat=True)
    ids = list(stale)
    for job_id in ids:
        _dispatch(job_id)
    if ids:
        logger.info("re-dispatched %d scoring jobs: %s", len(ids), ids)
    return len(ids)


# --- running jobs ------------------------------------------------------------------------------


def scoring_job_claim(*, job_id: int, worker: str) -> bool:
    """Conditional UPDATE: pending, or running with an expired lease (its worker died)."""
    now = timezone.now()
    claimed = (
        ScoringJob.objects.filter(pk=job_id)
        .filter(Q(status=JobStatus.PENDING) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now))
        .update(status=JobStatus.RUNNING, worker=worker, attempts=F("attempts") + 1, started_at=now,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds()), step="starting", progress=0.0,
                error="")
    )
    return claimed == 1


def _renew(job: ScoringJob, worker: str, *, progress_value: float, step: str) -> None:
    now = timezone.now()
    updated = ScoringJob.objects.filter(pk=job.pk, worker=worker, status=JobStatus.RUNNING).update(
        progress=progress_value, step=step, lease_expires_at=now + dt.timedelta(seconds=lease_seconds())
    )
    if not updated:
        raise LeaseLost(f"job {job.pk} is no longer ours")


def scoring_job_execute(*, job_id: int, worker: str | None = None) -> str:
    """Run a job to completion. Returns what happened: 'succeeded', 'failed', 'skipped', 'gone' or
    'superseded' (a newer job for the exam is queued: this one is cancelled at its next step)."""
    worker = worker or worker_name()
    job = ScoringJob.objects.select_related("exam", "exam__patient", "model_version").filter(pk=job_id).first()
    if job is None:
        return "gone"  # the exam (and its jobs) was deleted: nothing to do
    if job.is_finished:
        return "skipped"
    if not scoring_job_claim(job_id=job_id, worker=worker):
        job.refresh_from_db()
        if job.is_finished:
            return "skipped"
        remaining = (job.lease_expires_at - timezone.now()).total_seconds() if job.lease_expires_at else 5.0
        raise JobLeaseHeld(max(remaining, 1.0) + 1.0)
    job.refresh_from_db()
    try:
        _run(job, worker)
    except LeaseLost:
        logger.warning("job %s was taken over by another worker; stopping", job_id)
        return "skipped"
    except Superseded as exc:
        ScoringJob.objects.filter(pk=job.pk, worker=worker, status=JobStatus.RUNNING).update(
            status=JobStatus.CANCELLED, step="superseded", error=str(exc), finished_at=timezone.now(),
            lease_expires_at=None,
        )
        progress.publish(job.exam_id, {"type": "superseded", "job": job.pk, "by": exc.newer_job_id})
        logger.info("job %s %s", job_id, exc)
        return "superseded"
    except _transient_errors():
        # Give the job back so the retried task can claim it at once.
        ScoringJob.objects.filter(pk=job.pk, worker=worker).update(status=JobStatus.PENDING, step="retrying")
        raise
    except Exception as exc:
        message = _readable(exc)
        logger.exception("scoring job %s failed", job_id)
        ScoringJob.objects.filter(pk=job.pk, worker=worker).update(
            status=JobStatus.FAILED, error=message, step="failed", finished_at=timezone.now(), lease_expires_at=None
        )
        progress.publish(job.exam_id, {"type": "failed", "job": job.pk, "error": message})
        return "failed"
    return "succeeded"


def _transient_errors() -> tuple[type[BaseException], ...]:
    from django.db import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _readable(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:2000]


def _ordered_clips(exam: Exam) -> list[ZoneClip]:
    order = {code: i for i, code in enumerate(get_protocol(exam.protocol).codes)}
    return sorted(exam.clips.all(), key=lambda c: order.get(c.zone, len(order)))


def _run(job: ScoringJob, worker: str) -> None:
    exam = job.exam
    version = job.model_version
    timings: dict[str, float] = {}
    started = time.perf_counter()
    clips = _ordered_clips(exam)
    if not clips:
        raise ValueError("the exam has no clips to score")
    total_frames = 0

    def report(fraction: float, step: str, **extra: Any) -> None:
        _renew(job, worker, progress_value=fraction, step=step)
        newer = _newer_request(job)
        if newer is not None:
            raise Superseded(newer)
        progress.publish(exam.pk, {"type": "progress", "job": job.pk, "progress": round(fraction, 4), "step": step,
                                   **extra})

    report(0.01, "loading model")
    scorer = runtime.get_scorer(version.weights)
    if str(scorer.version) != version.version:
        raise RuntimeError(f"worker loaded weights {scorer.version!r} but the job asks for {version.version!r}")
    _sync_metadata(version, _weights_metadata(scorer))
    timings["load_model_s"] = time.perf_counter() - started

    t0 = time.perf_counter()
    frames: list[np.ndarray] = []
    for i, clip in enumerate(clips):
        frames.append(clip.load_frames())
        total_frames += frames[-1].shape[0]
        report(0.05 + 0.15 * (i + 1) / len(clips), f"decoded {clip.zone}", clip=clip.pk, zone=clip.zone,
               stage="decoded")
    timings["decode_s"] = time.perf_counter() - t0

    # Batch frames of several clips through the model at once; progress after each batch.
    t0 = time.perf_counter()
    from scoring.core.severity.features import score_with_features

    results: list[Any] = []
    features: list[np.ndarray] = []
    batches = _batches(frames, max_frames=int(getattr(settings, "SCORING_BATCH_FRAMES", 600)))
    done = 0
    for start, stop in batches:
        # One CNN pass gives the zone scores and the frame features the severity model needs.
        for result, frame_features in score_with_features(scorer, frames[start:stop]):
            results.append(result)
            features.append(frame_features)
        for clip in clips[start:stop]:
            done += 1
            report(0.2 + 0.75 * done / len(clips), f"scored {clip.zone}", clip=clip.pk, zone=clip.zone,
                   stage="scored", score=int(results[clips.index(clip)].clip_score))
    timings["score_s"] = time.perf_counter() - t0
    timings["frames"] = float(total_frames)

    zone_scores = {clip.zone: int(r.clip_score) for clip, r in zip(clips, results, strict=True)}
    summary = _exam_summary(exam, zone_scores)
    report(0.97, "severity")
    with transaction.atomic():
        # Still ours? (a takeover after our lease expired must not produce a second result set)
        locked = ScoringJob.objects.select_for_update().filter(pk=job.pk, worker=worker,
                                                                status=JobStatus.RUNNING).first()
        if locked is None:
            raise LeaseLost(f"job {job.pk} is no longer ours")
        for clip, result in zip(clips, results, strict=True):
            _store_clip_score(job, clip, version, result)
        ExamScore.objects.update_or_create(job=job, defaults={"exam": exam, "model_version": version, **summary})
        from scoring.severity import severity_predict

        scored = {clip.zone: (r, f) for clip, r, f in zip(clips, results, features, strict=True)}
        severity = severity_predict(job=job, exam=exam, scored=scored)
        timings["total_s"] = time.perf_counter() - started
        ScoringJob.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED, progress=1.0, step="finished", finished_at=timezone.now(),
            lease_expires_at=None, timings=timings,
        )
    progress.publish(exam.pk, {"type": "finished", "job": job.pk, "progress": 1.0, "luss": summary["luss"],
                               "zones": zone_scores, "model_version": version.version,
                               "severity": severity.label if severity is not None else None})


def _newer_request(job: ScoringJob) -> int | None:
    """Id of a pending job for the same exam and model created after ``job`` (an upload or a
    rescore that arrived while we run), else None."""
    return (
        ScoringJob.objects.filter(exam_id=job.exam_id, model_version_id=job.model_version_id,
                                  status=JobStatus.PENDING, pk__gt=job.pk)
        .order_by("pk").values_list("pk", flat=True).first()
    )


def _batches(frames: list[np.ndarray], *, max_frames: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start, count = 0, 0
    for i, f in enumerate(frames):
        if count and count + f.shape[0] > max_frames:
            out.append((start, i))
            start, count = i, 0
        count += f.shape[0]
    out.append((start, len(frames)))
    return out


def _store_clip_score(job: ScoringJob, clip: ZoneClip, version: ModelVersion, result: Any) -> None:
    frame_probs = np.asarray(result.frame_probs, dtype=np.float32)
    extra: dict[str, Any] = {}
    six = getattr(result, "six_class", None)
    if six is not None:
        extra["six_class"] = _jsonable(six)
    domain = result.domain() if callable(getattr(result, "domain", None)) else None
    if domain is not None:
        extra["domain"] = domain
    ClipScore.objects.update_or_create(
        job=job, clip=clip,
        defaults={
            "zone": clip.zone, "model_version": version, "score": int(result.clip_score),
            "probs": [round(float(p), 5) for p in np.asarray(result.clip_probs).ravel()],
            "findings": {str(k): round(float(v), 5) for k, v in dict(result.findings).items()},
            "aggregator": str(getattr(result, "aggregator", "")),
            "frame_count": int(frame_probs.shape[0]),
            "frame_probs_f16": ClipScore.pack_frame_probs(frame_probs),
            "extra": extra,
        },
    )


def _exam_summary(exam: Exam, zone_scores: dict[str, int]) -> dict[str, Any]:
    from scoring.core.inference.exam import exam_score

    codes = get_protocol(exam.protocol).codes
    s = exam_score(zone_scores, expected=codes)
    return {
        "luss": s.global_score, "max_luss": s.max_score,
        "mean_score": None if s.mean_zone_score is None else round(s.mean_zone_score, 4),
        "worst_zone": s.worst_zone or "", "worst_score": s.worst_score, "zones_ge2": len(s.zones_ge2),
        "coverage": round(s.coverage, 4), "missing_zones": s.missing,
    }


def on_clip_stored(*, clip: ZoneClip, by: Any) -> Callable[[], None] | None:
    """Hook called by ingest: enqueue scoring of the clip's exam."""
    if not getattr(settings, "SCORING_ON_UPLOAD", True):
        return None
    scoring_job_request(exam=clip.exam, reason="upload", by=by)
    return None


def ensure_can_view(user: Any, exam: Exam) -> None:
    if permissions.role_in_study(user, exam.patient.study) is None:
        raise PermissionDenied("You are not a member of this study.")
