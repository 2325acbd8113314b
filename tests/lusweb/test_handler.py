"""``lusweb.handler``: under ASGI a request's middleware chain and view run in one thread, reached
in one hop from the event loop (no hop back to the loop in the middle), and answers are Django's."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from lusweb.handler import OneHopASGIHandler

SEEN: dict[str, int] = {}


class Recorder:
    """A sync-only middleware (as WhiteNoise and ours are) noting the thread it runs in."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        SEEN["middleware"] = threading.get_ident()
        return self.get_response(request)


def _view(request: HttpRequest) -> HttpResponse:
    SEEN["view"] = threading.get_ident()
    return HttpResponse("answered")


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view failed")


def _stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> Any:
        for part in (b"one,", b"two"):
            yield part
    return StreamingHttpResponse(chunks())


urlpatterns = [path("view/", _view), path("boom/", _boom), path("stream/", _stream)]

MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "tests.lusweb.test_handler.Recorder",
              "django.middleware.common.CommonMiddleware"]


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """How many times a request went from the loop to a thread, and from a thread back to the loop."""
    counts = {"to_thread": 0, "to_loop": 0}
    to_thread, to_loop = SyncToAsync.__call__, AsyncToSync.__call__

    async def counted_to_thread(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["to_thread"] += 1
        return await to_thread(self, *args, **kwargs)

    def counted_to_loop(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["to_loop"] += 1
        return to_loop(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted_to_thread)
    monkeypatch.setattr(AsyncToSync, "__call__", counted_to_loop)
    SEEN.clear()
    yield counts


def _get(url: str) -> dict[str, Any]:
    """The handler's answer to a GET of ``url``: status, whole body, and the event loop's thread."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": url, "raw_path": url.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    answer: dict[str, Any] = {"body": b""}
    asked = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not asked.is_set():
            asked.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    async def ask() -> int:
        await OneHopASGIHandler()(scope, receive, send)
        return threading.get_ident()

    answer["loop_thread"] = asyncio.run(ask())
    return answer


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, ALLOWED_HOSTS=["testserver"])
def test_the_chain_and_the_view_run_in_one_thread_without_going_back_to_the_loop(hops: dict[str, int]) -> None:
    answer = _get("/view/")
    assert answer["status"] == 200 and answer["body"] == b"answered"
    assert SEEN["middleware"] == SEEN["view"] != answer["loop_thread"]
    assert hops["to_loop"] == 0
    # The request's signals, the chain with the view, and closing the answer: nothing more.
    assert hops["to_thread"] <= 3


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, ALLOWED_HOSTS=["testserver"], DEBUG=False)
def test_a_failing_view_is_answered_500(hops: dict[str, int]) -> None:
    assert _get("/boom/")["status"] == 500


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, ALLOWED_HOSTS=["testserver"])
def test_a_streamed_answer_arrives_whole(hops: dict[str, int]) -> None:
    answer = _get("/stream/")
    assert answer["status"] == 200 and answer["body"] == b"one,two"
