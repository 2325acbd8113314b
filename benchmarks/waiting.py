"""Waiting for a benchmark's worker: one helper for the benchmarks that drive a real Celery worker."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Return once ``predicate()`` holds; stop the benchmark after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit("timed out waiting for the worker")
