"""Sending a Celery task without letting a broker outage reach the caller.

The database row (a pending clip, a pending scoring job) is the source of truth and its message
only carries the id. When the broker cannot be reached the message is not sent, the row keeps
``dispatched_at`` empty, and the workers' recovery loops send it once the broker is back; the
upload or the page that asked never fails for it. ``CELERY_TASK_PUBLISH_RETRY_POLICY`` and the
transport's socket timeouts (settings) keep the attempt short.
"""
from __future__ import annotations

import logging

from celery import signature
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

#: What a publish raises when the broker is down, refuses, or drops the connection.
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuOperationalError, RedisError, ConnectionError, TimeoutError,
                                                  OSError)


def task_send(name: str, *, args: tuple[object, ...], queue: str) -> bool:
    """Publish task ``name`` with ``args`` on ``queue``: True when the broker took it, False
    (logged) when it could not be reached. No countdown on purpose: an ETA message is taken from
    Redis at once and held by a worker, outside the strict queue order."""
    try:
        # Retried briefly (task_publish_retry, CELERY_TASK_PUBLISH_RETRY_POLICY), then given up.
        signature(name, args=args).apply_async(queue=queue)
    except BROKER_ERRORS as exc:
        logger.warning("broker unreachable: %s%r not sent, the recovery loop will send it (%s: %s)", name, args,
                       exc.__class__.__name__, exc)
        return False
    return True
