"""Celery application: JSON only, time limits, a ``cpu`` and a ``gpu`` queue."""
from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")

app = Celery("lusweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Results live in our own tables (jobs); Celery's result backend is not needed.
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=15 * 60,
    task_time_limit=20 * 60,
    task_default_queue="cpu",
    task_queues=(Queue("cpu"), Queue("gpu")),
    # Scoring runs where the GPU is (or the CPU fallback); everything else on the cpu queue.
    task_routes={"scoring.tasks.score_exam": {"queue": "gpu"}, "scoring.tasks.*": {"queue": "cpu"}},
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()


def ensure_filesystem_broker() -> None:
    """The server-less broker of the demo needs its folders (messages, processed messages,
    exchange tables) before the first message."""
    if str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("filesystem://"):
        for key in ("data_folder_out", "processed_folder", "control_folder"):
            Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key])).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _on_configure(sender: Celery, **_: object) -> None:
    ensure_filesystem_broker()
