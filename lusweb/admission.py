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
from collections import OrderedDict
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


class KeepAliveLimit:
    """ASGI middleware closing a kept-alive connection after ``requests`` answers on it (0: never),
    as nginx's ``keepalive_requests`` does: the answer carries ``Connection: close``, which uvicorn
    honours, and the client connects again.

    Why: the server's processes share one listening socket, and a connection stays with the process
    that accepted it. Twenty users connecting at once split unevenly (8/12 was seen), and the
    busier process answered each of its users 1.5x slower for as long as they stayed connected.
    A reconnection is accepted by whichever process is waiting in ``accept`` first, most often the
    less busy one, so the split keeps evening out while users stay.

    Connections are told apart by the client's address and port; at most ``tracked`` are
    remembered (least recently seen forgotten first), so connections closed by their clients cost
    nothing for long.
    """

    def __init__(self, app: App, *, requests: int, tracked: int = 4096) -> None:
        self.app = app
        self.requests = requests
        self.tracked = tracked
        self._answered: OrderedDict[tuple[str, int], int] = OrderedDict()

    def _last_on_connection(self, scope: Scope) -> bool:
        """Counts this request on its connection; True when its answer must close the connection."""
        client = scope.get("client")
        if self.requests <= 0 or scope["type"] != "http" or not client:
            return False
        key = (str(client[0]), int(client[1]))
        count = self._answered.pop(key, 0) + 1
        if count >= self.requests:
            return True  # forgotten: the next connection from this port starts again at 0
        self._answered[key] = count
        while len(self._answered) > self.tracked:
            self._answered.popitem(last=False)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._last_on_connection(scope):
            await self.app(scope, receive, send)
            return

        async def send_closing(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if bytes(k).lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
