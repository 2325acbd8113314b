"""Live progress messages: sent to the exam's Channels group; pages also poll the job API."""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def exam_group(exam_id: int) -> str:
    return f"exam.{exam_id}"


def publish(exam_id: int, message: dict[str, Any]) -> None:
    """Best effort: a dead channel layer must never fail scoring (the database has the truth)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(exam_group(exam_id), {"type": "progress.message", "message": message})
    except Exception:
        logger.warning("could not publish progress for exam %s", exam_id, exc_info=True)
