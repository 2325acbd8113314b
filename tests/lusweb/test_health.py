"""``/healthz/``: the ASGI application answers it ahead of the middleware stack with the same body
as the Django view; every other path still goes through Django."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.db import connection
from django.test import RequestFactory

from lusweb import health
from lusweb.asgi import application
from lusweb.health import healthz

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _probe_closed() -> AsyncIterator[None]:
    yield
    await health.probe.close()  # its connection must not outlive the test database


def _probe_backends() -> list[int]:
    """Backend pids of the probe's connections, seen from a connection of the test's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [health.APPLICATION_NAME])
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return pids


async def _probe() -> tuple[int, dict[str, Any]]:
    answer = await HttpCommunicator(application, "GET", "/healthz/").get_response()
    return answer["status"], json.loads(answer["body"])


def _view_body() -> Any:
    try:
        return json.loads(healthz(RequestFactory().get("/healthz/")).content)
    finally:
        connection.close()  # this thread's: the test database is dropped at the end


async def test_the_asgi_probe_answers_as_the_view_does() -> None:
    answer = await HttpCommunicator(application, "GET", "/healthz/").get_response()
    headers = dict(answer["headers"])
    assert answer["status"] == 200 and headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"
    body: dict[str, Any] = json.loads(answer["body"])
    assert body == await sync_to_async(_view_body)() and body["status"] == "ok"


async def test_other_paths_go_through_django() -> None:
    answer = await HttpCommunicator(application, "GET", "/login/", headers=[(b"host", b"localhost")]).get_response()
    assert answer["status"] == 200 and b"csrfmiddlewaretoken" in answer["body"]


async def test_the_probe_keeps_one_connection_of_its_own_and_survives_losing_it() -> None:
    assert await _probe() == (200, {"status": "ok", "database": "postgresql"})
    assert await _probe() == (200, {"status": "ok", "database": "postgresql"})
    pids = await sync_to_async(_probe_backends)()
    assert len(pids) == 1  # two probes, one connection, outside the pool the pages use

    def terminate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        connection.close()

    await sync_to_async(terminate)()  # as a database restart would
    assert await _probe() == (200, {"status": "ok", "database": "postgresql"})
    assert await sync_to_async(_probe_backends)() not in ([], pids)


async def test_the_probe_answers_503_naming_the_error_when_the_database_is_unreachable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connections

    monkeypatch.setitem(connections["default"].settings_dict, "PORT", "1")  # nothing listens there
    status, body = await _probe()
    assert status == 503 and body["status"] == "error"
    assert "port 1" in body["database"] and "refused" in body["database"].lower()
