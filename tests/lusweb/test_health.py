"""``/healthz/``: the ASGI application answers it ahead of the middleware stack with the same body
as the Django view; every other path still goes through Django."""
from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.test import Client

from lusweb.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_the_asgi_probe_answers_as_the_view_does() -> None:
    answer = await HttpCommunicator(application, "GET", "/healthz/").get_response()
    headers = dict(answer["headers"])
    assert answer["status"] == 200 and headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"
    body: dict[str, Any] = json.loads(answer["body"])
    view = await sync_to_async(Client().get)("/healthz/")
    assert body == view.json() and body["status"] == "ok"


async def test_other_paths_go_through_django() -> None:
    answer = await HttpCommunicator(application, "GET", "/login/", headers=[(b"host", b"localhost")]).get_response()
    assert answer["status"] == 200 and b"csrfmiddlewaretoken" in answer["body"]
