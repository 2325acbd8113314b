"""WebSocket routes."""
from __future__ import annotations

from django.urls import path

from patients.alerts.consumers import AlertsConsumer
from scoring.consumers import ExamProgressConsumer

websocket_urlpatterns = [
    path("ws/exams/<int:exam_id>/", ExamProgressConsumer.as_asgi()),
    path("ws/alerts/", AlertsConsumer.as_asgi()),
]
