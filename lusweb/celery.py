"""Celery application: JSON only, time limits, an ``ingest``, a ``cpu`` and a ``gpu`` queue."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import celeryd_init
from celery.worker.consumer import Consumer
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lusweb.settings.local")

#: The queues a worker serves, in the order it serves them. With Redis the broker is asked with
#: ``queue_order_strategy="priority"`` (settings): each fetch takes from the first non-empty queue
#: of this list (one BRPOP over the keys in order), so a clinician's scoring job (``gpu``) is
#: taken before any bulk job (``gpu-bulk``: study rescoring, seeding, training) and a new upload's
#: check (``ingest``) before both. Celery's default (round robin) would interleave them.
WORKER_QUEUES = "ingest,gpu,cpu,gpu-bulk"

#: Seconds between a worker's attempts to reach a broker it lost (kombu's default backs off to 30 s).
RECONNECT_INTERVAL = 1.0


class PromptReconnectConsumer(Consumer):  # type: ignore[misc]
    """The worker's consumer, retrying a lost broker every second instead of backing off to 30 s:
    the work queued while the broker was down (the recovery loops' re-dispatches) starts within
    seconds of its return."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(conn.ensure_connection, interval_start=RECONNECT_INTERVAL,
                                                   interval_step=0, interval_max=RECONNECT_INTERVAL)
        return super().ensure_connected(conn)


app = Celery("lusweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Results live in our own tables (jobs, clips); Celery's result backend is not needed.
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Time limits: CELERY_TASK_TIME_LIMIT and CELERY_TASK_SOFT_TIME_LIMIT (settings, LUSWEB_TASK_TIME_LIMIT).
    task_default_queue="cpu",
    task_queues=(Queue("ingest"), Queue("cpu"), Queue("gpu"), Queue("gpu-bulk")),
    # Uploads are checked on the ingest queue; scoring runs where the GPU is (or the CPU
    # fallback); everything else on the cpu queue.
    task_routes={
        "patients.imaging.tasks.*": {"queue": "ingest"},
        "scoring.tasks.score_exam": {"queue": "gpu"},
        "scoring.tasks.*": {"queue": "cpu"},
    },
    broker_connection_retry_on_startup=True,
    # A worker never gives up on the broker (it retries every RECONNECT_INTERVAL; Celery's default
    # stops after 100 attempts, under two minutes at that pace).
    broker_connection_max_retries=None,
    worker_consumer="lusweb.celery:PromptReconnectConsumer",
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


def worker_nice() -> int:
    """Lower this process's CPU priority to ``WORKER_NICE`` (never raise it: that needs root); the
    niceness it now has. A worker sharing a host with the web server leaves the CPU to the pages
    and ``/healthz/`` (measured: probes stalled 300-500 ms at the start of ten uploads while the
    worker checked the first clips at full priority)."""
    now = os.getpriority(os.PRIO_PROCESS, 0)
    if now < settings.WORKER_NICE:
        os.setpriority(os.PRIO_PROCESS, 0, settings.WORKER_NICE)
    return os.getpriority(os.PRIO_PROCESS, 0)


@celeryd_init.connect
def _on_worker_start(**_: object) -> None:
    # The worker's main process, before it forks its pool: the children inherit the niceness.
    worker_nice()
