"""The production server command (docker-compose's ``web``) really serves the application with
several processes: a request held up in one process leaves the others answering."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.server import Server


@pytest.mark.django_db(transaction=True)
def test_the_server_runs_several_processes_and_answers(asgi_server: Callable[..., Server]) -> None:
    server = asgi_server(workers=2)
    assert len(server.pids()) == 3  # the supervisor and two workers
    with urllib.request.urlopen(f"{server.url}/healthz/", timeout=5) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    assert body == {"status": "ok", "database": "postgresql"}
