"""Admission control of a web process: at most ``LUSWEB_WEB_CONCURRENCY`` page reads (GET and HEAD)
run Django at once; the others wait for a slot, first come first served.

Why: under ASGI, Django runs each request's sync code in a thread of its own. With 20 users on two
processes, about ten threads a process took turns on one interpreter lock: every answer took as
long as all of them together (processor sharing), and switching between them cost CPU. Admitting
a few at a time (one computing while the others wait on PostgreSQL) serves the queue in arrival
order, with less switching (``benchmarks/bench_load.py``, README "Page cache").

What it never holds up:

* a request waits at most ``LUSWEB_WEB_QUEUE_SECONDS`` for a slot, then runs anyway: a few stuck
  requests cannot stop a process's pages;
* a slot is given back as soon as the answer starts: a download or a stream keeps none;
* writes (an upload reads its body first), WebSockets and ``/healthz/`` are not counted.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Any, Any, Any], Awaitable[None]]  # Django's and Channels' own signatures differ

#: Methods that read: they carry no body to receive while holding a slot.
ADMITTED_METHODS = frozenset({"GET", "HEAD"})


class Admission:
    """ASGI middleware admitting at most ``limit`` reads into ``app`` at once (0: no limit);
    a read waits at most ``wait`` seconds for its turn."""

    def __init__(self, app: App, *, limit: int, wait: float) -> None:
        self.app = app
        self.limit = limit
        self.wait = wait
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop
        self.overflows = 0  # reads that ran without a slot after waiting ``wait`` seconds

    def _counted(self, scope: Scope) -> bool:
        return self.limit > 0 and scope["type"] == "http" and scope.get("method") in ADMITTED_METHODS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._counted(scope):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        try:
            await asyncio.wait_for(slots.acquire(), self.wait)
            held = True
        except TimeoutError:
            self.overflows += 1
            held = False

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                slots.release()

        async def send_and_free(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                give_back()  # the answer is decided: streaming it needs no slot
            await send(message)

        try:
            await self.app(scope, receive, send_and_free)
        finally:
            give_back()
