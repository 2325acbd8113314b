"""What every LUSWeb Celery task shares: which errors it retries and how it is acknowledged."""
from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError

#: The errors a task retries: the database or the broker was out of reach for a moment. Anything
#: else is a final answer, which the task records (a failed clip, a failed job).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

#: ``@shared_task(name=..., **DURABLE)``: acknowledged only once it has run (a worker lost mid-task
#: gives the message back; every task is idempotent), retried with exponential backoff
#: (2 s doubling, at most 60 s apart, 8 times) on ``TRANSIENT_ERRORS`` only.
DURABLE: dict[str, Any] = {
    "acks_late": True, "reject_on_worker_lost": True, "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2, "retry_backoff_max": 60, "max_retries": 8,
}
