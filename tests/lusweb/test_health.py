"""``/healthz/``: the ASGI application answers it ahead of the middleware stack with the same body
as the Django view; every other path still goes through Django."""
from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.db import connection
from django.test import RequestFactory

from lusweb.asgi import application
from lusweb.health import healthz

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


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
