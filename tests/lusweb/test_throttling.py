"""DRF throttles at production's rates (``API_RATES``): per address without a user, per user with
one, counted in the shared ``throttle`` cache, answered 429 with ``Retry-After`` and the one error
shape."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from lusweb.settings.security import API_RATES
from tests.factories import UserFactory
from tests.server import Server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_rates")]


def _count(rate: str) -> int:
    return int(rate.split("/")[0])


def _assert_throttled(response: object, *, page: bool = False) -> None:
    assert response.status_code == 429  # type: ignore[attr-defined]
    wait = int(response["Retry-After"])  # type: ignore[index]
    assert 1 <= wait <= 60
    if page:  # the API docs render HTML
        return
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "throttled" and body["retry_after"] == wait
    assert body["error"] == f"too many requests; try again in {wait} second{'s' if wait != 1 else ''}"


def test_signed_in_user_rate(api_for: object) -> None:
    ann, bob = UserFactory(), UserFactory()
    client = api_for(ann)  # type: ignore[operator]
    limit = _count(API_RATES["user"])
    statuses = [client.get("/api/v1/studies/").status_code for _ in range(limit)]
    assert statuses == [200] * limit
    _assert_throttled(client.get("/api/v1/studies/"))
    assert api_for(bob).get("/api/v1/studies/").status_code == 200  # per user, not per address  # type: ignore[operator]


def test_anonymous_rate_per_address_ignores_forwarded_for() -> None:
    limit = _count(API_RATES["anon"])
    here = APIClient(REMOTE_ADDR="198.51.100.7")
    assert [here.get("/api/v1/docs/").status_code for _ in range(limit)] == [200] * limit
    _assert_throttled(here.get("/api/v1/docs/"), page=True)
    # A forged X-Forwarded-For does not make a new client; another address is one.
    _assert_throttled(here.get("/api/v1/docs/", HTTP_X_FORWARDED_FOR="192.0.2.55"), page=True)
    assert APIClient(REMOTE_ADDR="203.0.113.9").get("/api/v1/docs/").status_code == 200


def test_token_rate_per_address() -> None:
    UserFactory(username="ann")
    limit = _count(API_RATES["auth"])
    here = APIClient(REMOTE_ADDR="198.51.100.7")
    good = {"username": "ann", "password": "pw-for-tests-1"}
    assert [here.post("/api/v1/auth/token/", good).status_code for _ in range(limit)] == [200] * limit
    _assert_throttled(here.post("/api/v1/auth/token/", good))
    _assert_throttled(here.post("/api/v1/auth/token/", good, HTTP_X_FORWARDED_FOR="192.0.2.55"))
    assert APIClient(REMOTE_ADDR="203.0.113.9").post("/api/v1/auth/token/", good).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_server_processes_share_one_count(asgi_server: Callable[..., Server]) -> None:
    """Two uvicorn processes answer the token endpoint; together they allow the ``auth`` rate, not
    twice it (the counts live in Redis)."""
    UserFactory(username="ann")
    limit = _count(API_RATES["auth"])
    server = asgi_server(workers=2, LUSWEB_API_RATE_AUTH=API_RATES["auth"])
    assert isinstance(caches["throttle"], RedisCache)  # the server's settings are the test's
    statuses = [_post_token(server.url) for _ in range(limit + 5)]
    assert statuses == [200] * limit + [429] * 5


def _post_token(url: str) -> int:
    body = json.dumps({"username": "ann", "password": "pw-for-tests-1"}).encode()
    request = urllib.request.Request(f"{url}/api/v1/auth/token/", data=body, headers={"Content-Type": "application/json"})
    try:
        # A new connection each time, so that both processes take requests.
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_an_unreachable_throttle_cache_pauses_the_rates_instead_of_failing(api_for: object) -> None:
    """Redis down (the broker-outage case) must not turn API calls into 500s: the request is
    served while nothing can be counted."""
    import socket

    from django.conf import settings
    from django.test.utils import override_settings

    with socket.socket() as closed:  # a port that nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = {**settings.CACHES, "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    client = api_for(UserFactory())  # type: ignore[operator]
    limit = _count(API_RATES["user"])
    with override_settings(CACHES=unreachable):
        statuses = {client.get("/api/v1/studies/").status_code for _ in range(limit + 5)}
    assert statuses == {200}
