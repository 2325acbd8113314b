"""Live messages to the pages watching an exam (``/ws/exams/<id>/``, ``scoring.consumers``).

Sent to the exam's Channels group: scoring's progress and imaging's clip states (ready, failed)
share the one channel. Best effort: the database holds the truth and the pages also poll it, so a
dead channel layer (Redis down) never fails the work that publishes.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def exam_group(exam_id: int) -> str:
    return f"exam.{exam_id}"


def exam_publish(exam_id: int, message: dict[str, Any]) -> None:
    """Send ``message`` to the pages watching exam ``exam_id``; failures are logged, never raised."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(exam_group(exam_id), {"type": "progress.message", "message": message})
    except Exception:
        logger.warning("could not publish to the pages of exam %s", exam_id, exc_info=True)
