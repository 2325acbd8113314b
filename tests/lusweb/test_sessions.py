"""The session store (``lusweb.sessions``): Django's database sessions, read by one hand-written
statement, with the same answers as Django's own store."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lusweb.sessions import SessionStore
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _saved(data: dict[str, Any]) -> str:
    store = SessionStore()
    store.update(data)
    store.save()
    assert store.session_key is not None
    return store.session_key


def test_the_site_uses_it() -> None:
    assert settings.SESSION_ENGINE == "lusweb.sessions"


def test_reads_what_djangos_store_reads_in_one_statement() -> None:
    key = _saved({"_auth_user_id": "7", "note": "PaCO2 41 -> 45 mmHg"})
    with CaptureQueriesContext(connection) as queries:
        ours = dict(SessionStore(key).items())
    assert ours == dict(DjangoStore(key).items()) == {"_auth_user_id": "7", "note": "PaCO2 41 -> 45 mmHg"}
    assert len(queries) == 1 and "django_session" in queries[0]["sql"]


def test_an_expired_session_is_empty_and_its_key_forgotten() -> None:
    key = _saved({"a": 1})
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    store = SessionStore(key)
    assert dict(store.items()) == {}
    assert store.session_key is None
    store["b"] = 2
    store.save()  # a new key: the expired row is not revived
    assert store.session_key != key
    assert Session.objects.get(session_key=key).expire_date < timezone.now()


def test_an_unknown_key_is_empty() -> None:
    store = SessionStore("x" * 32)
    assert dict(store.items()) == {}
    assert store.session_key is None


def test_a_signed_in_request_reads_its_user(client: Any) -> None:
    user = UserFactory(username="ward-nurse")
    client.force_login(user)
    assert client.get("/").wsgi_request.user == user
    assert Session.objects.count() == 1
    Session.objects.all().delete()
    assert client.get("/").wsgi_request.user.is_anonymous
