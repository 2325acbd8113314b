"""Liveness/readiness probe for load balancers and docker compose: ``/healthz/``.

Under the ASGI server the probe is answered ahead of Django's middleware stack
(:func:`healthz_asgi`, routed in ``lusweb.asgi``): the event loop answers it with a single hop to a
thread for the database check, so a probe is never slowed by the requests its process is
busy with (uploads being parsed hold the GIL; each middleware of a synchronous request is
another hop into a thread). The Django view :func:`healthz` gives the same answer elsewhere
(WSGI, the test client).
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

PATH = "/healthz/"


def database_status() -> tuple[int, dict[str, str]]:
    """(HTTP status, body): 200 when the database answers ``SELECT 1``, else 503 with the error."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:  # any DB failure means "not ready"
        return 503, {"status": "error", "database": str(exc)}
    return 200, {"status": "ok", "database": connection.vendor}


def healthz(request: HttpRequest) -> JsonResponse:
    status, body = database_status()
    return JsonResponse(body, status=status)


def _probe_in_thread() -> tuple[int, dict[str, str]]:
    try:
        return database_status()
    finally:
        connection.close()  # a pool thread of the event loop: no request end closes it for us


async def healthz_asgi(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """``/healthz/`` as a bare ASGI app: the same answer as :func:`healthz`."""
    status, body = await sync_to_async(_probe_in_thread, thread_sensitive=False)()
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": payload})
