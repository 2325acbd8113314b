"""WebSocket routes."""
from __future__ import annotations

from django.urls import path

from scoring.consumers import ExamProgressConsumer

websocket_urlpatterns = [
    path("ws/exams/<int:exam_id>/", ExamProgressConsumer.as_asgi()),
]
