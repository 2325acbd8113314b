"""Sending pending clips to the ingest workers, and sending again what was lost.

The clip row is the source of truth; its Celery message (task ``clip_process`` on the ``ingest``
queue) carries only the id. ``dispatched_at`` says when a message last left: empty while none has
(the broker was down), so the workers' recovery loop (:func:`clips_recover`, every
``INGEST_RECOVERY_SECONDS``) sends it as soon as the broker answers again. The worker's
conditional claim makes a duplicate message harmless.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from lusweb.broker import task_send
from patients.imaging.models import ClipStatus, ZoneClip

logger = logging.getLogger(__name__)

#: The Celery task that checks a pending clip (``patients.imaging.tasks.clip_process``), sent by
#: name: the task module calls the services that call this one.
CLIP_PROCESS_TASK = "patients.imaging.tasks.clip_process"
INGEST_QUEUE = "ingest"


def claim_timeout() -> float:
    """Seconds after which a worker's claim on a clip is taken to be dead (it outlived the ingest
    time limit, so no live worker still holds it)."""
    return float(settings.INGEST_TIME_LIMIT) + 60.0


def clip_dispatch(clip_id: int) -> bool:
    """Send clip ``clip_id`` to be checked; False (and ``dispatched_at`` emptied, for the recovery
    loop) when the broker cannot be reached. Never raises for a broker outage."""
    sent = task_send(CLIP_PROCESS_TASK, args=(clip_id,), queue=INGEST_QUEUE)
    ZoneClip.all_objects.filter(pk=clip_id).update(dispatched_at=timezone.now() if sent else None)
    return sent


def clips_recover() -> int:
    """Send again the clips whose message never left or was lost: pending clips not yet sent, or
    sent more than ``INGEST_REDISPATCH_SECONDS`` ago, and clips whose worker's claim outlived
    :func:`claim_timeout` (the worker died). Stops at the first refusal of the broker (the next
    round tries again). Returns how many were sent."""
    now = timezone.now()
    resend = now - dt.timedelta(seconds=float(settings.INGEST_REDISPATCH_SECONDS))
    not_sent = Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=resend)
    lost = ZoneClip.all_objects.filter(
        Q(status=ClipStatus.PENDING) & not_sent
        | Q(status=ClipStatus.PROCESSING, claimed_at__lt=now - dt.timedelta(seconds=claim_timeout())) & not_sent
    ).order_by("pk").values_list("pk", flat=True)
    sent = 0
    for clip_id in lost:
        if not clip_dispatch(clip_id):
            break
        sent += 1
    if sent:
        logger.info("re-dispatched %d pending clips", sent)
    return sent
