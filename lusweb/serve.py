"""The production web server's command line, in one place: docker-compose's ``web`` service runs
the same (``docker-compose.yml``; ``tests/test_docker_compose.py`` checks it), and the hardening
tests and the pages-under-load benchmark start it on a local port."""
from __future__ import annotations

import sys


def uvicorn_command(*, port: int, workers: int, host: str = "127.0.0.1") -> list[str]:
    """uvicorn serving ``lusweb.asgi:application`` with ``workers`` processes on ``host:port``."""
    return [sys.executable, "-m", "uvicorn", "lusweb.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--lifespan", "off", "--no-access-log"]
