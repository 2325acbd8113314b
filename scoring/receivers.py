"""Scoring's receivers of other apps' signals (connected in ``ScoringConfig.ready``)."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from patients.imaging.models import ZoneClip
from scoring.services import scoring_job_request, severity_refresh_request


def queue_scoring_of_stored_clip(sender: Any, *, clip: ZoneClip, by: Any, **kwargs: Any) -> None:
    """A clip was stored: queue its exam for scoring (``SCORING_ON_UPLOAD``, default on).

    Runs inside the ingest transaction, so the job row commits with the clip; its Celery message
    is dispatched when that transaction commits (``scoring_job_request``).
    """
    if getattr(settings, "SCORING_ON_UPLOAD", True):
        scoring_job_request(exam=clip.exam, reason="upload", by=by)


def refresh_severity_of_read_exam(sender: Any, *, exam_id: int, **kwargs: Any) -> None:
    """A clinician reading or an adjudication was saved: the exam's severity follows the score of
    record (``SEVERITY_ON_READING``, default on). The task leaves once the transaction commits."""
    if getattr(settings, "SEVERITY_ON_READING", True):
        severity_refresh_request(exam_id=exam_id)
