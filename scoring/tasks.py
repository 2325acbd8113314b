"""Celery tasks: thin wrappers taking ids. Retries only on named transient errors."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections

from lusweb.tasks import DURABLE
from patients.records.models import Exam
from scoring import pipeline, prepared, services, severity
from scoring.site import services as site_services
from scoring.site import training as site_training

logger = logging.getLogger(__name__)


@shared_task(
    name=services.SCORE_EXAM_TASK,
    bind=True,
    **DURABLE,
)
def score_exam(self: Any, job_id: int) -> str:
    """Score the exam of job ``job_id`` (idempotent: a finished or foreign-leased job is left alone)."""
    if not self.request.is_eager:  # eager mode (dev, tests) runs inline: no upload burst to wait for
        pipeline.scoring_job_settle(job_id=job_id)
    try:
        return pipeline.scoring_job_execute(job_id=job_id, worker=f"{self.request.hostname}:{os.getpid()}")
    except pipeline.JobLeaseHeld as held:
        # Another worker holds a live lease: it finishes the job, or, had it died, the recovery
        # loop sends the job again once the lease has expired (services.scoring_jobs_recover). Not
        # a retry with a countdown: a message with an ETA leaves Redis at once and waits inside
        # this worker, outside the strict queue order (ingest, gpu, cpu, gpu-bulk).
        logger.info("job %s is leased by another worker (%.0f s left); leaving it to that worker or the "
                    "recovery loop", job_id, held.retry_in)
        return "held"


@shared_task(
    name=prepared.CLIP_PREPARE_TASK,
    **DURABLE,
)
def clip_prepare(clip_id: int) -> str:
    """Prepare stored clip ``clip_id`` for its study's scorer (idempotent: a prepared clip is kept)."""
    return prepared.clip_prepare_stored(clip_id=clip_id)


@shared_task(
    name=services.SEVERITY_REFRESH_TASK,
    **DURABLE,
)
def severity_refresh(exam_id: int) -> str:
    """Recompute exam ``exam_id``'s severity from its score of record (no CNN: the stored features)."""
    exam = Exam.objects.select_related("patient").filter(pk=exam_id).first()
    if exam is None:
        return "gone"
    return "refreshed" if severity.severity_refresh(exam=exam) is not None else "skipped"


@shared_task(
    name=site_services.SITE_TRAIN_TASK,
    bind=True,
    **DURABLE,
    time_limit=settings.SITE_TRAINING_TIME_LIMIT,
    soft_time_limit=settings.SITE_TRAINING_TIME_LIMIT * 3 // 4,
)
def site_model_train(self: Any, training_id: int) -> str:
    """Run site training ``training_id`` (idempotent: a finished or foreign-held training is left alone)."""
    return site_training.site_training_execute(training_id=training_id,
                                               worker=f"{self.request.hostname}:{os.getpid()}")


def _recovery_loop(interval: float) -> None:
    while True:
        try:
            close_old_connections()
            services.scoring_jobs_recover()
            site_services.site_trainings_recover()
        except Exception:
            logger.warning("job recovery round failed", exc_info=True)
        time.sleep(interval)


@worker_ready.connect
def _start_recovery(**_: Any) -> None:
    """Every worker re-dispatches lost jobs at start and then periodically: a broker restart or
    a killed worker never loses a job (the conditional claim makes duplicates harmless)."""
    interval = float(getattr(settings, "SCORING_RECOVERY_SECONDS", 10))
    threading.Thread(target=_recovery_loop, args=(interval,), daemon=True, name="lusweb-recovery").start()
