"""Running a scoring job: claim, execute, score and store (``scoring.tasks`` calls this).

The database row of a job is the source of truth. A task only carries the job id, claims the
job with a conditional UPDATE (so two deliveries cannot both run it), renews a lease while it
works, and writes all results of an exam in one transaction at the end (so a worker killed
mid-exam leaves nothing partial; the redelivered task reclaims the job once the lease expires).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from lusweb.jsonable import jsonable
from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import ai_reading_record
from patients.records.models import Exam
from patients.studies.protocols import get_protocol
from scoring import progress, runtime
from scoring.core.inference.exam import exam_score
from scoring.models import ClipScore, ExamScore, JobStatus, ModelVersion, ScoringJob, SeverityPrediction
from scoring.prepared import clip_source
from scoring.selectors import score_confidence
from scoring.services import lease_seconds, sync_metadata, weights_metadata
from scoring.severity import pack_features, severity_feature_sets, severity_predict
from scoring.signals import exam_scored
from scoring.study_model import study_model_id

logger = logging.getLogger(__name__)

Report = Callable[..., None]


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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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


def debounce_remaining(*, exam_id: int) -> float:
    """Seconds until the exam's clips have been quiet for ``SCORING_DEBOUNCE_SECONDS`` (0 = now).

    The window runs from the newest clip's upload or check, whichever is later: a burst of twelve
    uploads (each checked by the ingest worker) keeps it open until the last clip is in.
    """
    debounce = float(getattr(settings, "SCORING_DEBOUNCE_SECONDS", 0))
    if debounce <= 0:
        return 0.0
    latest = ZoneClip.all_objects.filter(exam_id=exam_id).aggregate(c=Max("created_at"), k=Max("checked_at"))
    moments = [m for m in latest.values() if m is not None]
    if not moments:
        return 0.0
    return max(0.0, (max(moments) + dt.timedelta(seconds=debounce) - timezone.now()).total_seconds())


def scoring_job_settle(*, job_id: int, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait, at most ``SCORING_DEBOUNCE_SECONDS``, while the pending job's exam is still receiving
    clips; returns the seconds waited.

    Why not a countdown on the message: a Celery message with an ETA is taken from Redis at once
    and held by the worker, outside the strict queue order (and the worker then prefetches around
    it). The message is sent at once instead, taken in queue order, and the short wait happens
    here; uploads arriving meanwhile reuse the still-pending job (``scoring_job_request``).
    """
    budget = float(getattr(settings, "SCORING_DEBOUNCE_SECONDS", 0))
    job = ScoringJob.objects.filter(pk=job_id, status=JobStatus.PENDING).values("exam_id").first()
    waited = 0.0
    while job is not None and waited < budget:
        remaining = min(debounce_remaining(exam_id=job["exam_id"]), budget - waited)
        if remaining <= 0:
            break
        sleep(remaining)
        waited += remaining
    return waited


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
    return (OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _readable(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:2000]


def _ordered_clips(exam: Exam) -> list[ZoneClip]:
    order = {code: i for i, code in enumerate(get_protocol(exam.protocol).codes)}
    return sorted(exam.clips.all(), key=lambda c: order.get(c.zone, len(order)))


def _run(job: ScoringJob, worker: str) -> None:
    exam = job.exam
    timings: dict[str, float] = {}
    started = time.perf_counter()
    clips = _ordered_clips(exam)
    if not clips:
        raise ValueError("the exam has no clips to score")
    report = _reporter(job, worker)
    report(0.01, "loading model")
    scorer = _scorer_for(job.model_version)
    timings["load_model_s"] = time.perf_counter() - started
    t0 = time.perf_counter()
    # Prepared clips (or frame caches, prepared now and kept) are read by the scorer's preparation
    # thread, overlapping the CNN on the clip before (scoring.core.inference.scorer.Scorer.features).
    results, features = _score(scorer, clips, report)
    timings["read_and_score_s"] = time.perf_counter() - t0
    timings["frames"] = float(sum(int(clip.frame_count or 0) for clip in clips))
    zone_scores = {clip.zone: int(r.clip_score) for clip, r in zip(clips, results, strict=True)}
    summary = _exam_summary(exam, zone_scores)
    report(0.97, "severity")
    scored = {clip.zone: (r, f) for clip, r, f in zip(clips, results, features, strict=True)}
    severity = _store(job, worker, clips=clips, results=results, summary=summary, scored=scored,
                      timings=timings, started=started)
    progress.publish(exam.pk, {"type": "finished", "job": job.pk, "progress": 1.0, "luss": summary["luss"],
                               "zones": zone_scores, "model_version": job.model_version.version,
                               "severity": severity.label if severity is not None else None})


def _reporter(job: ScoringJob, worker: str) -> Report:
    """``report(fraction, step, **extra)``: renew the lease, stop when superseded, publish progress."""

    def report(fraction: float, step: str, **extra: Any) -> None:
        _renew(job, worker, progress_value=fraction, step=step)
        newer = _newer_request(job)
        if newer is not None:
            raise Superseded(newer)
        progress.publish(job.exam_id, {"type": "progress", "job": job.pk, "progress": round(fraction, 4),
                                       "step": step, **extra})

    return report


def _scorer_for(version: ModelVersion) -> Any:
    """The scorer of the job's model version (refused when the worker has other weights)."""
    scorer = runtime.get_scorer(version.weights)
    if str(scorer.version) != version.version:
        raise RuntimeError(f"worker loaded weights {scorer.version!r} but the job asks for {version.version!r}")
    sync_metadata(version, weights_metadata(scorer))
    return scorer


def _score(scorer: Any, clips: list[ZoneClip], report: Report) -> tuple[list[Any], list[np.ndarray]]:
    """Clip results and frame features, batching the frames of several clips through the model
    (at most ``SCORING_BATCH_FRAMES`` in memory at once; progress after each batch)."""
    from scoring.core.severity.features import score_with_features  # lazy: torch, worker only

    results: list[Any] = []
    features: list[np.ndarray] = []
    done = 0
    counts = [int(clip.frame_count or 1) for clip in clips]
    for start, stop in _batches(counts, max_frames=int(getattr(settings, "SCORING_BATCH_FRAMES", 600))):
        # One CNN pass gives the zone scores and the frame features the severity model needs.
        sources = [clip_source(clip=clip, scorer=scorer) for clip in clips[start:stop]]
        for result, frame_features in score_with_features(scorer, sources):
            results.append(result)
            features.append(frame_features)
        for clip in clips[start:stop]:
            done += 1
            report(0.05 + 0.9 * done / len(clips), f"scored {clip.zone}", clip=clip.pk, zone=clip.zone,
                   stage="scored", score=int(results[clips.index(clip)].clip_score))
    return results, features


def _store(job: ScoringJob, worker: str, *, clips: list[ZoneClip], results: list[Any], summary: dict[str, Any],
           scored: dict[str, tuple[Any, np.ndarray]], timings: dict[str, float],
           started: float) -> SeverityPrediction | None:
    """Write every result of the job in one transaction, if the job is still ours."""
    with transaction.atomic():
        # Still ours? (a takeover after our lease expired must not produce a second result set)
        locked = ScoringJob.objects.select_for_update().filter(pk=job.pk, worker=worker,
                                                                status=JobStatus.RUNNING).first()
        if locked is None:
            raise LeaseLost(f"job {job.pk} is no longer ours")
        sets = severity_feature_sets(job=job, scored=scored) or {}
        for clip, result in zip(clips, results, strict=True):
            ai_reading_of(_store_clip_score(job, clip, job.model_version, result, sets.get(clip.zone)))
        ExamScore.objects.update_or_create(job=job, defaults={"exam": job.exam, "model_version": job.model_version,
                                                              **summary})
        severity = severity_predict(job=job, exam=job.exam, sets=sets)
        timings["total_s"] = time.perf_counter() - started
        ScoringJob.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED, progress=1.0, step="finished", finished_at=timezone.now(),
            lease_expires_at=None, timings=timings,
        )
        exam_scored.send(sender=ScoringJob, job=job, exam_id=job.exam_id)
    return severity


def _newer_request(job: ScoringJob) -> int | None:
    """Id of a pending job for the same exam and model created after ``job`` (an upload or a
    rescore that arrived while we run), else None."""
    return (
        ScoringJob.objects.filter(exam_id=job.exam_id, model_version_id=job.model_version_id,
                                  status=JobStatus.PENDING, pk__gt=job.pk)
        .order_by("pk").values_list("pk", flat=True).first()
    )


def _batches(counts: list[int], *, max_frames: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive clips holding at most ``max_frames`` frames (``counts``: each
    clip's frames; a longer clip is a batch of its own)."""
    out: list[tuple[int, int]] = []
    start, count = 0, 0
    for i, n in enumerate(counts):
        if count and count + n > max_frames:
            out.append((start, i))
            start, count = i, 0
        count += n
    out.append((start, len(counts)))
    return out


def _store_clip_score(job: ScoringJob, clip: ZoneClip, version: ModelVersion, result: Any,
                      severity_sets: np.ndarray | None) -> ClipScore:
    frame_probs = np.asarray(result.frame_probs, dtype=np.float32)
    extra: dict[str, Any] = {}
    six = getattr(result, "six_class", None)
    if six is not None:
        # As a dict (mean, frame classes and values): jsonable() alone would store the dataclass's
        # repr, as scores before this did (``scoring.core.inference.six_class.six_class_stored``
        # still reads those).
        extra["six_class"] = jsonable(six.to_dict() if callable(getattr(six, "to_dict", None)) else six)
    domain = result.domain() if callable(getattr(result, "domain", None)) else None
    if domain is not None:
        extra["domain"] = domain
    crops = getattr(result, "localisation", None)
    if crops is not None:
        # Reg-STN's two crops of every frame (fractions of the frame), drawn by the clip viewer.
        extra["crops"] = np.round(np.asarray(crops, np.float64), 4).tolist()
    aggregator = str(getattr(result, "aggregator", ""))
    if aggregator.startswith("vote:"):
        # The cascade's members' clip probabilities: which network voted for what.
        extra["members"] = jsonable(getattr(result, "members", {}))
    if severity_sets is not None:
        # Kept so that a clinician's reading refreshes the severity without the CNN.
        extra["severity_features"] = pack_features(severity_sets)
    score, _ = ClipScore.objects.update_or_create(
        job=job, clip=clip,
        defaults={
            "zone": clip.zone, "model_version": version, "score": int(result.clip_score),
            "probs": [round(float(p), 5) for p in np.asarray(result.clip_probs).ravel()],
            "findings": {str(k): round(float(v), 5) for k, v in dict(result.findings).items()},
            "aggregator": aggregator,
            "frame_count": int(frame_probs.shape[0]),
            "frame_probs_f16": ClipScore.pack_frame_probs(frame_probs),
            "extra": extra,
        },
    )
    return score


def ai_reading_of(score: ClipScore) -> ZoneReading | None:
    """The AI's reading of a stored clip score - the zone's record until a clinician reads it -
    when its model is the one the clip's study scores with (its site model, else the active one),
    or when the clip has no AI reading yet (a job that outlived its model's activation); else None."""
    active = study_model_id(score.clip.exam.patient.study_id) == score.model_version_id
    if not active and ZoneReading.objects.filter(clip_id=score.clip_id, source=ReadingSource.AI).exists():
        return None
    return ai_reading_record(clip=score.clip, model_version=score.model_version.version, score=score.score,
                             findings=score.findings, confidence=score_confidence(score.probs, score.score),
                             in_domain=_in_domain(score.extra))


def _in_domain(extra: Any) -> bool | None:
    domain = extra.get("domain") if isinstance(extra, dict) else None
    return bool(domain["in_domain"]) if isinstance(domain, dict) and "in_domain" in domain else None


def _exam_summary(exam: Exam, zone_scores: dict[str, int]) -> dict[str, Any]:
    codes = get_protocol(exam.protocol).codes
    s = exam_score(zone_scores, expected=codes)
    return {
        "luss": s.global_score, "max_luss": s.max_score,
        "mean_score": None if s.mean_zone_score is None else round(s.mean_zone_score, 4),
        "worst_zone": s.worst_zone or "", "worst_score": s.worst_score, "zones_ge2": len(s.zones_ge2),
        "coverage": round(s.coverage, 4), "missing_zones": s.missing,
    }
