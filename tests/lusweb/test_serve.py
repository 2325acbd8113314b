"""The server's process helpers (``lusweb.serve``) that the benchmarks and server tests measure with."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from lusweb.serve import cpu_seconds, server_workers


def test_cpu_seconds_grow_with_work_and_an_ended_process_counts_nothing() -> None:
    before = cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert cpu_seconds([os.getpid()]) - before >= 0.2
    assert cpu_seconds([2**22 + 12345]) == 0.0  # above Linux's pid_max: no such process


def test_server_workers_are_the_spawned_children_only() -> None:
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spawned = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "spawn_main"])
    try:
        time.sleep(0.3)
        workers = server_workers(os.getpid())
        assert spawned.pid in workers and plain.pid not in workers
        assert server_workers(2**22 + 12345) == []
    finally:
        for proc in (plain, spawned):
            proc.kill()
            proc.wait()
