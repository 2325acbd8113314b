"""A real Celery worker process for pipeline and browser tests (real Redis, test database)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from lusweb.celery import WORKER_QUEUES
from tests.conftest import ROOT, require
from tests.server import subprocess_env


def _requirements() -> None:
    require(connection.vendor == "postgresql", "the worker process needs the PostgreSQL test database")
    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set: no real broker for the worker")


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.hostname = f"test-{time.monotonic_ns()}"
        self._log_start = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lusweb", "worker", "-Q", WORKER_QUEUES, "--pool", "solo",
             "--loglevel", "INFO", "--hostname", f"{self.hostname}@%h", "--without-gossip",
             "--without-mingle"],
            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for this worker's "ready" line (it has connected and taken its queues)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}; see {self.log}")
            if self._ready_line():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker was not ready within {timeout:.0f} s; see {self.log}")

    def _ready_line(self) -> bool:
        with self.log.open("rb") as fh:
            fh.seek(self._log_start)
            return any(line.rstrip().endswith(b" ready.") and self.hostname.encode() in line for line in fh)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_env_fixture(settings: Any) -> Iterator[Callable[..., Worker]]:
    _requirements()
    import redis

    from lusweb.celery import app

    # Start from an empty queue: messages of earlier runs must not reach this worker.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for queue in WORKER_QUEUES.split(","):
        client.delete(queue)
    app.connection_for_write().release()
    env = subprocess_env(
        LUSWEB_SCORING_LEASE_SECONDS="6", LUSWEB_SCORING_RECOVERY_SECONDS="2", LUSWEB_SCORING_REDISPATCH_SECONDS="5",
        LUSWEB_BROKER_VISIBILITY_TIMEOUT="30", LUSWEB_SCORING_BATCH_FRAMES="120", LUSWEB_INGEST_RECOVERY_SECONDS="2",
        # Ingest runs in the worker: the clips it makes ready queue their exam there.
        LUSWEB_SCORING_ON_UPLOAD="1",
    )
    settings.SCORING_ON_UPLOAD = True
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))
    out.mkdir(parents=True, exist_ok=True)
    workers: list[Worker] = []

    def start(**extra: str) -> Worker:
        w = Worker({**env, **extra}, out / "celery-worker.log")
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


