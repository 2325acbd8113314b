"""A Celery worker yields the CPU to the web server it shares a host with (``LUSWEB_WORKER_NICE``)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture


def _nice(pid: int) -> int:
    # /proc/<pid>/stat field 19 (after the command name in parentheses, which may hold spaces).
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_worker_runs_at_the_configured_niceness(worker_env: Callable[..., Worker]) -> None:
    default = worker_env()
    default.wait_ready()
    assert _nice(default.proc.pid) == 10
    default.stop()
    lowest = worker_env(LUSWEB_WORKER_NICE="19")
    lowest.wait_ready()
    assert _nice(lowest.proc.pid) == 19
