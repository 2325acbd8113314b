"""Live progress messages: sent to the exam's Channels group (``lusweb.live``, shared with the
clip states imaging publishes); pages also poll the job API."""
from __future__ import annotations

from typing import Any

from lusweb.live import exam_group, exam_publish

__all__ = ["exam_group", "publish"]


def publish(exam_id: int, message: dict[str, Any]) -> None:
    """Best effort: a dead channel layer must never fail scoring (the database has the truth)."""
    exam_publish(exam_id, message)
