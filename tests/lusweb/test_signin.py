"""Sign-in lockout (issue 15, "Throttling"): the login form, the admin's login and the token API
refuse every sign-in - the right password included - after ``AXES_FAILURE_LIMIT`` failures, per
client address and per username, with a clear 429, one audit event, until the cool-off ends.

Real limits throughout: production's failure limit (10) and cool-off (15 minutes); the token
endpoint also with production's ``auth`` rate (20/min per address).
"""
from __future__ import annotations

import datetime as dt
import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from patients.audit.models import AuditAction, AuditEvent
from tests.factories import UserFactory
from tests.lusweb.conftest import clear_throttles
from tests.server import Server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_rates")]

PASSWORD = "pw-for-tests-1"
LIMIT = 10
HOME = "198.51.100.7"
AWAY = "203.0.113.9"
LOCKED_15 = "too many failed sign-in attempts; try again in 15 minutes"


def _form(username: str, password: str, ip: str = HOME, path: str = "/login/") -> Any:
    client = Client(REMOTE_ADDR=ip)
    return client.post(path, {"username": username, "password": password}), client


def _token(username: str, password: str, ip: str = HOME, **headers: str) -> Any:
    return APIClient(REMOTE_ADDR=ip).post("/api/v1/auth/token/", {"username": username, "password": password},
                                          format="json", **headers)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _assert_locked_page(response: Any) -> None:
    assert response.status_code == 429
    assert 870 <= int(response["Retry-After"]) <= 900
    body = response.content.decode()
    assert "Too many failed sign-in attempts; try again in 15 minutes." in body
    assert 'class="brand"' in body and "<h1>Sign-in locked</h1>" in body  # the site's layout


def test_login_form_refuses_the_right_password_after_100_wrong_ones() -> None:
    UserFactory(username="ann", password=PASSWORD)
    answers = [_form("ann", f"guess-{i}")[0] for i in range(100)]
    assert [a.status_code for a in answers[:LIMIT - 1]] == [200] * (LIMIT - 1)  # the form again, with its error
    assert "didn't match" in answers[0].content.decode()
    assert {a.status_code for a in answers[LIMIT - 1:]} == {429}
    _assert_locked_page(answers[-1])
    response, client = _form("ann", PASSWORD)
    _assert_locked_page(response)
    assert not _signed_in(client)
    assert AccessAttempt.objects.get(username="ann").failures_since_start == LIMIT  # refusals do not extend it


def test_token_endpoint_refuses_the_right_password_after_100_wrong_ones() -> None:
    UserFactory(username="ann", password=PASSWORD)
    answers = [_token("ann", f"guess-{i}") for i in range(100)]
    codes = [(a.status_code, a.json().get("code")) for a in answers]
    # 9 plain refusals; the 10th failure locks; the address's 20/min rate stops the rest earlier still.
    assert codes[:LIMIT - 1] == [(400, None)] * (LIMIT - 1)
    assert codes[LIMIT - 1:20] == [(429, "locked_out")] * (21 - LIMIT)
    assert codes[20:] == [(429, "throttled")] * 80
    assert answers[LIMIT - 1].json()["error"] == LOCKED_15 and 870 <= int(answers[LIMIT - 1]["Retry-After"]) <= 900
    assert answers[-1].json()["error"].startswith("too many requests; try again in ")
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    right = _token("ann", PASSWORD)
    assert right.status_code == 429 and "token" not in right.json()
    clear_throttles()  # the minute of the rate limit has passed; the lockout has not
    right = _token("ann", PASSWORD)
    assert right.status_code == 429
    assert right.json() == {"error": LOCKED_15, "code": "locked_out", "retry_after": int(right["Retry-After"])}


def test_lockout_holds_per_address_and_per_username() -> None:
    UserFactory(username="ann", password=PASSWORD)
    UserFactory(username="bob", password=PASSWORD)
    for i in range(LIMIT):
        _form("ann", f"guess-{i}")
    # The address is locked: another user from it is refused, even with the right password.
    response, client = _form("bob", PASSWORD, ip=HOME)
    assert response.status_code == 429 and not _signed_in(client)
    assert _token("bob", PASSWORD, ip=HOME).json()["code"] == "locked_out"
    # The username is locked: from another address too.
    response, client = _form("ann", PASSWORD, ip=AWAY)
    assert response.status_code == 429 and not _signed_in(client)
    assert _token("ann", PASSWORD, ip=AWAY).json()["code"] == "locked_out"
    # Another user from another address signs in.
    response, client = _form("bob", PASSWORD, ip=AWAY)
    assert response.status_code == 302 and _signed_in(client)
    assert "token" in _token("bob", PASSWORD, ip=AWAY).json()


def test_one_audit_event_per_lockout() -> None:
    ann = UserFactory(username="ann", password=PASSWORD)
    for i in range(30):
        _form("ann", f"guess-{i}")
    event = AuditEvent.objects.get(action=AuditAction.LOCKOUT)
    assert (event.actor, event.actor_username, event.ip, event.object_type, event.object_id) == (
        ann, "ann", HOME, "user", str(ann.pk))
    assert event.study is None
    assert event.changes == {"username": "ann", "failures": LIMIT, "path": "/login/", "cooloff_minutes": 15.0}
    # A name that is no account: the event keeps the name as typed, with no actor.
    for i in range(LIMIT):
        _token("nobody", f"guess-{i}", ip=AWAY)
    stranger = AuditEvent.objects.filter(action=AuditAction.LOCKOUT).exclude(pk=event.pk).get()
    assert stranger.actor is None and stranger.ip == AWAY
    assert stranger.changes["username"] == "nobody" and stranger.changes["path"] == "/api/v1/auth/token/"


def _age_attempts(minutes: float) -> None:
    """Move the recorded failures ``minutes`` into the past, as the clock would."""
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - dt.timedelta(minutes=minutes))


def test_the_lockout_ends_after_the_cool_off() -> None:
    UserFactory(username="ann", password=PASSWORD)
    for i in range(LIMIT):
        _form("ann", f"guess-{i}")
    _age_attempts(10)
    response = _token("ann", PASSWORD)
    assert response.json()["error"] == "too many failed sign-in attempts; try again in 5 minutes"
    assert 240 < int(response["Retry-After"]) <= 300
    _age_attempts(5.1)
    response, client = _form("ann", PASSWORD)
    assert response.status_code == 302 and _signed_in(client)
    assert "token" in _token("ann", PASSWORD, ip=AWAY).json()


def test_admin_login_is_locked_too() -> None:
    UserFactory(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    answers = [_form("root", f"guess-{i}", path="/admin/login/")[0] for i in range(LIMIT + 2)]
    assert [a.status_code for a in answers] == [200] * (LIMIT - 1) + [429] * 3
    response, client = _form("root", PASSWORD, path="/admin/login/")
    _assert_locked_page(response)
    assert not _signed_in(client)
    # The admin's failures count with the login form's: they are the same account.
    assert _form("root", PASSWORD, ip=AWAY)[0].status_code == 429


def _server_login(url: str, username: str, password: str) -> tuple[int, str, str]:
    """Sign in through the production server's login form as a browser would (a fresh connection
    and cookie jar each time, so that both processes take requests): status, Retry-After, body."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    opener.open(f"{url}/login/", timeout=30).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    try:
        with opener.open(urllib.request.Request(f"{url}/login/", data=form, headers={"Referer": f"{url}/login/"}),
                         timeout=30) as answer:
            return int(answer.status), answer.headers.get("Retry-After", ""), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers.get("Retry-After", ""), exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.django_db(transaction=True)
def test_the_production_server_locks_out_across_processes(asgi_server: Callable[..., Server]) -> None:
    """Under uvicorn (ASGI, two processes) the failures of both processes add up and the right
    password is refused with the lockout page."""
    UserFactory(username="ann", password=PASSWORD)
    server = asgi_server(workers=2)
    answers = [_server_login(server.url, "ann", f"guess-{i}") for i in range(LIMIT + 2)]
    assert [status for status, _, _ in answers] == [200] * (LIMIT - 1) + [429] * 3
    status, retry_after, body = _server_login(server.url, "ann", PASSWORD)
    assert status == 429 and 870 <= int(retry_after) <= 900
    assert "Too many failed sign-in attempts; try again in 15 minutes." in body
    assert AuditEvent.objects.filter(action=AuditAction.LOCKOUT, actor_username="ann").count() == 1
