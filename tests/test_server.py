"""The production server command (docker-compose's ``web``) really serves the application with
several processes: a request held up in one process leaves the others answering, and a kept-alive
connection is closed after ``LUSWEB_WEB_KEEPALIVE_REQUESTS`` answers."""
from __future__ import annotations

import json
import socket
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


def _answer(sock: socket.socket, path: str) -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 request on ``sock`` and its whole answer: the status and the headers."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers


@pytest.mark.django_db(transaction=True)
def test_the_server_closes_a_kept_alive_connection_after_its_answers(asgi_server: Callable[..., Server]) -> None:
    server = asgi_server(workers=2, LUSWEB_WEB_KEEPALIVE_REQUESTS="3")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answers = [_answer(sock, "/login/") for _ in range(3)]
        assert [status for status, _ in answers] == [200, 200, 200]
        assert [headers.get("connection") for _, headers in answers] == [None, None, "close"]
        assert sock.recv(1) == b""  # the server closed its end
    # A new connection starts counting again.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert _answer(sock, "/login/")[1].get("connection") is None
