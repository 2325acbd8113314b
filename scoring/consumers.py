"""Live scoring progress over WebSockets: ``/ws/exams/<id>/``.

Authenticates with the session cookie or ``?token=``, checks study membership on connect, sends
a snapshot from the database first (so a reconnecting page is never behind), then relays the
typed messages the workers publish: ``progress``, ``finished``, ``failed``, ``superseded``
from scoring, and ``clip`` (an upload checked: ``status`` ready or failed, with ``error`` and
``code``) from ingest (``lusweb.live``).
"""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from lusweb.sockets import socket_user
from patients.records.models import Exam
from patients.studies import permissions
from scoring.progress import exam_group
from scoring.selectors import exam_scores_payload


@database_sync_to_async
def _snapshot(user: Any, exam_id: int) -> dict[str, Any] | None:
    exam = Exam.objects.select_related("patient__study").filter(pk=exam_id).first()
    if exam is None or permissions.role_in_study(user, exam.patient.study) is None:
        return None
    return {"type": "snapshot", "exam": exam.pk, "scores": exam_scores_payload(exam=exam)}


class ExamProgressConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = await socket_user(self.scope)
        if user is None:
            await self.close(code=4401)
            return
        self.user = user
        self.exam_id = int(self.scope["url_route"]["kwargs"]["exam_id"])
        snapshot = await _snapshot(user, self.exam_id)
        if snapshot is None:
            await self.close(code=4403)
            return
        self.group = exam_group(self.exam_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(snapshot)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_message(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "snapshot":
            snapshot = await _snapshot(self.user, self.exam_id)
            if snapshot is not None:
                await self.send_json(snapshot)
