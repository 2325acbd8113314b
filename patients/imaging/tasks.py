"""Ingest's Celery task and the worker's recovery loop: thin, taking ids.

``clip_process`` (queue ``ingest``) checks one pending clip; it is retried only when the database
was unreachable - a file that cannot be used is a final answer (the clip is failed). Every worker
removes stale temporary files when it starts and re-sends lost or unsent clips every
``INGEST_RECOVERY_SECONDS`` (``patients.imaging.dispatch.clips_recover``).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections

from lusweb.tasks import DURABLE
from patients.imaging import dispatch, process
from patients.imaging.tempfiles import tempfiles_clean

logger = logging.getLogger(__name__)


@shared_task(
    name=dispatch.CLIP_PROCESS_TASK,
    **DURABLE,
    time_limit=int(settings.INGEST_TIME_LIMIT),
    soft_time_limit=max(int(settings.INGEST_TIME_LIMIT) - 30, int(settings.INGEST_TIME_LIMIT) * 3 // 4),
)
def clip_process(clip_id: int) -> str:
    """Check clip ``clip_id`` (idempotent): its status afterwards, or 'skipped'."""
    processed = process.clip_process(clip_id=clip_id)
    return "skipped" if processed is None else str(processed.clip.status)


def _recovery_loop(interval: float) -> None:
    while True:
        try:
            close_old_connections()
            dispatch.clips_recover()
        except Exception:
            logger.warning("clip recovery round failed", exc_info=True)
        time.sleep(interval)


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    """A starting worker removes the temporary files a dead process left, then re-sends lost or
    unsent clips at once and every ``INGEST_RECOVERY_SECONDS``."""
    try:
        tempfiles_clean()
    except OSError:
        logger.warning("could not clean the temporary folder", exc_info=True)
    interval = float(settings.INGEST_RECOVERY_SECONDS)
    threading.Thread(target=_recovery_loop, args=(interval,), daemon=True, name="lusweb-ingest-recovery").start()
