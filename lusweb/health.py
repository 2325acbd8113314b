"""Liveness/readiness probe for load balancers and docker compose: ``/healthz/``.

Under the ASGI server the probe is answered ahead of Django's middleware stack
(:func:`healthz_asgi`, routed in ``lusweb.asgi``). On PostgreSQL the event loop itself asks the
database, over one asynchronous connection of the process's own (application name
``lusweb-healthz``), so a probe never waits for a thread while the process's synchronous thread
parses uploads, nor for a connection of the pool the pages are using: measured while ten uploads
ran, probes through a thread and the pool took 130-500 ms at the start of the burst. Other
databases (SQLite on a laptop) are asked from a thread. The Django view :func:`healthz` gives the
same answer elsewhere (WSGI, the test client).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection, connections
from django.http import HttpRequest, JsonResponse

PATH = "/healthz/"
#: How long the probe waits for the database before it answers 503.
TIMEOUT_SECONDS = 3.0
#: Its connection's name in ``pg_stat_activity``.
APPLICATION_NAME = "lusweb-healthz"


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


class _AsyncProbe:
    """The event loop's own connection for the probe: opened on first use, opened again after an
    error or in another event loop (a test's), never shared with a thread."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def status(self) -> tuple[int, dict[str, str]]:
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                try:
                    await (await self._connection()).execute("SELECT 1")
                except psycopg.OperationalError:
                    # A connection the server dropped (a restart, an idle timeout) is not an outage:
                    # one new connection decides.
                    await self.close()
                    await (await self._connection()).execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self.close()
            return 503, {"status": "error", "database": str(exc) or exc.__class__.__name__}
        return 200, {"status": "ok", "database": "postgresql"}

    async def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._lock is None:
            # asyncio objects belong to one loop: a new loop (a test's) starts afresh.
            _discard(self._conn)
            self._loop, self._lock, self._conn = loop, asyncio.Lock(), None
        async with self._lock:  # probes arriving together open one connection, not one each
            if self._conn is None or self._conn.closed:
                params = {k: v for k, v in connections["default"].get_connection_params().items()
                          if k not in {"cursor_factory", "context", "prepare_threshold"}}
                params["application_name"] = APPLICATION_NAME
                self._conn = await psycopg.AsyncConnection.connect(autocommit=True, **params)
        return self._conn

    async def close(self) -> None:
        """Close the connection (a test's event loop ends; the test database is dropped after)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed and self._loop is asyncio.get_running_loop():
            await conn.close()
        else:
            _discard(conn)


def _discard(conn: Any) -> None:
    """Close a connection of another (or a finished) event loop: its socket, without the loop."""
    if conn is not None and not conn.closed:
        conn.pgconn.finish()


probe = _AsyncProbe()


async def healthz_asgi(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """``/healthz/`` as a bare ASGI app: the same answer as :func:`healthz`."""
    if connection.vendor == "postgresql":
        status, body = await probe.status()
    else:
        status, body = await sync_to_async(_probe_in_thread, thread_sensitive=False)()
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": payload})
