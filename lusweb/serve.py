"""The production web server's command line, in one place: docker-compose's ``web`` service runs
the same (``docker-compose.yml``; ``tests/test_docker_compose.py`` checks it), and the hardening
tests and the pages-under-load benchmark start it on a local port; and its worker processes, which
they measure."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def uvicorn_command(*, port: int, workers: int, host: str = "127.0.0.1") -> list[str]:
    """uvicorn serving ``lusweb.asgi:application`` with ``workers`` processes on ``host:port``."""
    return [sys.executable, "-m", "uvicorn", "lusweb.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--lifespan", "off", "--no-access-log"]


def server_workers(pid: int) -> list[int]:
    """The worker processes of the uvicorn supervisor ``pid``, read from Linux's ``/proc`` (none
    when it has ended); multiprocessing's resource tracker is left out."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        kids = [int(p) for p in children.read_text().split()]
    except OSError:  # the supervisor ended meanwhile
        return []
    return [kid for kid in kids if "spawn_main" in _cmdline(kid)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (their threads included); one
    that has ended meanwhile counts nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:  # the process ended meanwhile
        return ""
