"""Admission control (``lusweb.admission``): page reads take turns a few at a time, in arrival
order, and nothing waits longer than the queue's limit; writes, WebSockets and streams hold no slot."""
from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from lusweb.admission import Admission


class App:
    """An ASGI app that records how many requests run at once and in which order they started;
    each waits for its ``release`` event before answering."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        name = scope["path"]
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(name)
        if name.startswith("/boom"):
            self.running -= 1
            raise RuntimeError("the view failed")
        await self.release.setdefault(name, asyncio.Event()).wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        self.running -= 1  # the answer has started: what follows is the body
        await self.release.setdefault(name + ":body", asyncio.Event()).wait()
        await send({"type": "http.response.body", "body": b"ok"})


def _scope(path: str, method: str = "GET", kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "path": path, "method": method}


async def _sent(message: MutableMapping[str, Any]) -> None:
    return None


async def _nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_at_most_the_limit_run_and_the_rest_go_in_arrival_order() -> None:
    async def scenario() -> tuple[int, list[str]]:
        app = App()
        admitted = Admission(app, limit=2, wait=10)
        names = [f"/r{i}" for i in range(6)]
        tasks = [asyncio.create_task(admitted(_scope(n), _nothing, _sent)) for n in names]
        await _settle()
        assert app.started == ["/r0", "/r1"]
        for name in names:  # answer them one by one
            app.release.setdefault(name, asyncio.Event()).set()
            app.release.setdefault(name + ":body", asyncio.Event()).set()
            await _settle()
        await asyncio.gather(*tasks)
        return app.most, app.started

    most, started = _run(scenario())
    assert most == 2
    assert started == [f"/r{i}" for i in range(6)]


def test_a_slot_is_free_once_the_answer_starts() -> None:
    async def scenario() -> list[str]:
        app = App()
        admitted = Admission(app, limit=1, wait=10)
        first = asyncio.create_task(admitted(_scope("/download"), _nothing, _sent))
        second = asyncio.create_task(admitted(_scope("/page"), _nothing, _sent))
        await _settle()
        assert app.started == ["/download"]
        app.release["/download"].set()  # headers sent; its body is still streaming
        await _settle()
        started = list(app.started)
        for name in ("/download:body", "/page", "/page:body"):
            app.release.setdefault(name, asyncio.Event()).set()
        await asyncio.gather(first, second)
        return started

    assert _run(scenario()) == ["/download", "/page"]


@pytest.mark.parametrize("scope", [_scope("/upload", method="POST"), _scope("/ws/alerts/", kind="websocket"),
                                   _scope("/api", method="DELETE")], ids=["post", "websocket", "delete"])
def test_writes_and_websockets_are_not_counted(scope: dict[str, Any]) -> None:
    async def scenario() -> list[str]:
        app = App()
        admitted = Admission(app, limit=1, wait=10)
        held = asyncio.create_task(admitted(_scope("/page"), _nothing, _sent))
        other = asyncio.create_task(admitted(scope, _nothing, _sent))
        await _settle()
        started = list(app.started)
        for name in ("/page", "/page:body", scope["path"], scope["path"] + ":body"):
            app.release.setdefault(name, asyncio.Event()).set()
        await asyncio.gather(held, other)
        return started

    # The write runs beside the read that holds the only slot.
    assert sorted(_run(scenario())) == sorted(["/page", scope["path"]])


def test_a_read_waits_at_most_the_queue_limit_then_runs() -> None:
    async def scenario() -> tuple[list[str], int]:
        app = App()
        admitted = Admission(app, limit=1, wait=0.05)
        stuck = asyncio.create_task(admitted(_scope("/stuck"), _nothing, _sent))
        late = asyncio.create_task(admitted(_scope("/late"), _nothing, _sent))
        await asyncio.sleep(0.2)
        started = list(app.started)
        for name in ("/late", "/late:body", "/stuck", "/stuck:body"):
            app.release.setdefault(name, asyncio.Event()).set()
        await asyncio.gather(stuck, late)
        return started, admitted.overflows

    assert _run(scenario()) == (["/stuck", "/late"], 1)


def test_a_failing_view_gives_its_slot_back() -> None:
    async def scenario() -> list[str]:
        app = App()
        admitted = Admission(app, limit=1, wait=10)
        with pytest.raises(RuntimeError, match="the view failed"):
            await admitted(_scope("/boom"), _nothing, _sent)
        after = asyncio.create_task(admitted(_scope("/after"), _nothing, _sent))
        await _settle()
        started = list(app.started)
        for name in ("/after", "/after:body"):
            app.release.setdefault(name, asyncio.Event()).set()
        await after
        return started

    assert _run(scenario()) == ["/boom", "/after"]


def test_no_limit_admits_everyone() -> None:
    async def scenario() -> int:
        app = App()
        admitted = Admission(app, limit=0, wait=10)
        tasks = [asyncio.create_task(admitted(_scope(f"/r{i}"), _nothing, _sent)) for i in range(5)]
        await _settle()
        most = app.most
        for i in range(5):
            app.release.setdefault(f"/r{i}", asyncio.Event()).set()
            app.release.setdefault(f"/r{i}:body", asyncio.Event()).set()
        await asyncio.gather(*tasks)
        return most

    assert _run(scenario()) == 5
