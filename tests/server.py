"""The production web server (uvicorn, several worker processes) as a real subprocess on the test
database, for the hardening tests: concurrency, load, hostile uploads, broker outage.

pytest-django's ``live_server`` is a threaded WSGI server inside the test process; it cannot show
what the deployed ASGI server does with slow uploads, connection pools or process memory.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from lusweb.serve import server_workers, uvicorn_command
from tests.conftest import ROOT, require


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a LUSWeb process (server or worker) that shares the test database, Redis,
    media and temporary folders of the running test; ``extra`` adds or overrides ``LUSWEB_*`` values."""
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUSWEB_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "lusweb.settings.test",
        "LUSWEB_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "LUSWEB_REDIS_URL": str(settings.REDIS_URL or ""),
        "LUSWEB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LUSWEB_TEMP_DIR": str(settings.TEMP_DIR),
        "LUSWEB_DEVICE": "cpu",
    })
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(*, port: int, workers: int) -> list[str]:
    """The command docker-compose's ``web`` service runs (``lusweb.serve``), on a local port."""
    return uvicorn_command(port=port, workers=workers)


class Server:
    """A uvicorn master and its worker processes; ``url`` is where they answer."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(server_command(port=self.port, workers=workers), cwd=ROOT, env=env,
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /healthz/ within {timeout:.0f} s; see {self.log}")

    def pids(self) -> list[int]:
        """The supervisor and its worker processes (for memory measurements); multiprocessing's
        resource tracker is left out."""
        return [self.proc.pid, *server_workers(self.proc.pid)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


@pytest.fixture
def asgi_server(transactional_db: Any, settings: Any) -> Iterator[Callable[..., Server]]:
    """Start the production server on the test database: ``asgi_server(workers=2, **env)``.

    The test's data must be committed (``transactional_db``) for the server's processes to see it.
    """
    require(connection.vendor == "postgresql", "the server process needs the PostgreSQL test database")
    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set: the server needs Redis")
    out = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))
    out.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []

    def start(*, workers: int = 2, **extra: str) -> Server:
        server = Server(subprocess_env(**extra), out / "asgi-server.log", workers=workers)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
