"""CI must exercise the real servers: PostgreSQL for the ORM, Redis for Celery and Channels."""
from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import require


@pytest.mark.django_db
def test_orm_runs_on_postgresql() -> None:
    require(os.environ.get("LUSWEB_DATABASE_URL", "").startswith("postgres"),
            "LUSWEB_DATABASE_URL does not point to PostgreSQL; tests ran on SQLite")
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        assert int(cursor.fetchone()[0].split(".")[0]) >= 13


def test_redis_answers_and_is_the_broker() -> None:
    require(bool(settings.REDIS_URL), "LUSWEB_REDIS_URL is not set; Redis-backed tests cannot run")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert client.ping() is True
    except redis.ConnectionError as exc:  # pragma: no cover - depends on the machine
        require(False, f"Redis at {settings.REDIS_URL} does not answer: {exc}")
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"


@pytest.mark.django_db
def test_healthz_reports_database(client: object) -> None:
    response = client.get("/healthz/")  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": connection.vendor}
