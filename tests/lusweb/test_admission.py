"""Admission control (``lusweb.admission``): page reads take turns a few at a time, in arrival
order, and nothing waits longer than the queue's limit; writes, WebSockets and streams hold no slot.
Kept-alive connections are closed after a number of answers, so that they spread over the processes."""
from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from lusweb.admission import Admission, KeepAliveLimit


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


async def _headers_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """Answers with the headers the request asked for in its ``headers`` (``connection: keep-alive``)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), *scope.get("answer_headers", [])]})
    await send({"type": "http.response.body", "body": b"ok"})


def _answers(limit: KeepAliveLimit, scopes: list[dict[str, Any]]) -> list[list[tuple[bytes, bytes]]]:
    """The headers of each answer, the scopes asked one after the other."""
    seen: list[list[tuple[bytes, bytes]]] = []

    async def record(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.append(list(message["headers"]))

    async def scenario() -> None:
        for scope in scopes:
            await limit(scope, _nothing, record)

    _run(scenario())
    return seen


def _on(client: tuple[str, int] | None, kind: str = "http", **extra: Any) -> dict[str, Any]:
    return {**_scope("/page", kind=kind), "client": client, **extra}


def _closes(headers: list[tuple[bytes, bytes]]) -> bool:
    return (b"connection", b"close") in headers


def test_every_nth_answer_on_a_connection_closes_it() -> None:
    limit = KeepAliveLimit(_headers_app, requests=3)
    answers = _answers(limit, [_on(("10.0.0.1", 5000)) for _ in range(7)])
    assert [_closes(h) for h in answers] == [False, False, True, False, False, True, False]
    # The rest of the answer is untouched.
    assert all((b"content-type", b"text/plain") in h for h in answers)


def test_connections_are_counted_apart() -> None:
    limit = KeepAliveLimit(_headers_app, requests=2)
    a, b, c = ("10.0.0.1", 5000), ("10.0.0.1", 5001), ("10.0.0.2", 5000)
    answers = _answers(limit, [_on(a), _on(b), _on(c), _on(a), _on(b), _on(a)])
    assert [_closes(h) for h in answers] == [False, False, False, True, True, False]


def test_the_app_s_own_connection_header_is_replaced() -> None:
    limit = KeepAliveLimit(_headers_app, requests=1)
    answers = _answers(limit, [_on(("10.0.0.1", 5000), answer_headers=[(b"Connection", b"keep-alive")])])
    assert [v for k, v in answers[0] if k.lower() == b"connection"] == [b"close"]


@pytest.mark.parametrize(("requests", "client"), [(0, ("10.0.0.1", 5000)), (1, None)],
                         ids=["no-limit", "unix-socket"])
def test_nothing_is_closed_without_a_limit_or_a_client_address(requests: int, client: Any) -> None:
    limit = KeepAliveLimit(_headers_app, requests=requests)
    answers = _answers(limit, [_on(client) for _ in range(4)])
    assert not any(_closes(h) for h in answers)


def test_websockets_pass_untouched() -> None:
    received: list[MutableMapping[str, Any]] = []

    async def socket_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})

    async def record(message: MutableMapping[str, Any]) -> None:
        received.append(message)

    limit = KeepAliveLimit(socket_app, requests=1)
    _run(limit(_on(("10.0.0.1", 5000), kind="websocket"), _nothing, record))
    assert received == [{"type": "websocket.accept"}]
    assert not limit._answered


def test_at_most_the_tracked_connections_are_remembered_least_recent_forgotten_first() -> None:
    limit = KeepAliveLimit(_headers_app, requests=2, tracked=2)
    a, b, c = ("10.0.0.1", 1), ("10.0.0.1", 2), ("10.0.0.1", 3)
    # a is seen, then b and c: a (least recently seen) is forgotten, so its next answer counts as its first.
    answers = _answers(limit, [_on(a), _on(b), _on(c), _on(a), _on(c)])
    assert [_closes(h) for h in answers] == [False, False, False, False, True]
    assert list(limit._answered) == [a]
