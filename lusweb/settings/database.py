"""``DATABASES["default"]`` from ``LUSWEB_DATABASE_URL`` plus how its connections live.

Under ASGI each request runs its sync code in a thread of its own, so connections kept per thread
(``CONN_MAX_AGE`` > 0) pile up with the threads and are never reused: 20 clients left 57 idle
connections and "too many clients" errors (issue 15). PostgreSQL connections therefore come from
psycopg's pool (Django's ``OPTIONS["pool"]``), bounded per process:

    connections of one process   <= LUSWEB_DB_POOL_MAX (+ 1 in a web process: /healthz/'s own,
                                    lusweb.health)
    connections of a deployment  <= (web processes + Celery worker processes) x LUSWEB_DB_POOL_MAX
                                    + web processes

Django returns a connection to the pool at the end of each request (or task), and the pool closes
one connection per ``LUSWEB_DB_POOL_MAX_IDLE`` seconds while some stay unused, down to
``LUSWEB_DB_POOL_MIN``. A request that finds every connection busy waits up to
``LUSWEB_DB_POOL_TIMEOUT`` seconds for one. Django refuses a pool together with persistent
connections, so ``LUSWEB_DB_CONN_MAX_AGE`` must stay 0 while the pool is on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from lusweb.settings.env import PREFIX, env_bool, env_int, parse_database_url

POOL_MAX_DEFAULT = 8
POOL_MAX_IDLE_DEFAULT = 5
POOL_TIMEOUT_DEFAULT = 10


def pool_options() -> dict[str, Any]:
    """psycopg ``ConnectionPool`` arguments from ``LUSWEB_DB_POOL_*``; ImproperlyConfigured when
    they contradict each other."""
    min_size = env_int("DB_POOL_MIN", 0, minimum=0)
    max_size = env_int("DB_POOL_MAX", POOL_MAX_DEFAULT, minimum=1)
    if max_size < min_size:
        raise ImproperlyConfigured(
            f"{PREFIX}DB_POOL_MAX={max_size} must be >= {PREFIX}DB_POOL_MIN={min_size}"
        )
    return {
        "min_size": min_size,
        "max_size": max_size,
        "max_idle": float(env_int("DB_POOL_MAX_IDLE", POOL_MAX_IDLE_DEFAULT, minimum=1)),
        "timeout": float(env_int("DB_POOL_TIMEOUT", POOL_TIMEOUT_DEFAULT, minimum=1)),
    }


def database_settings(url: str, *, base_dir: Path, pool_default: bool) -> dict[str, Any]:
    """The ``DATABASES["default"]`` entry: the URL's database, ``CONN_MAX_AGE`` from
    ``LUSWEB_DB_CONN_MAX_AGE`` (default 0: one connection per request) and, for PostgreSQL, the
    bounded pool when ``LUSWEB_DB_POOL`` (default ``pool_default``) is on."""
    db = parse_database_url(url, base_dir=base_dir)
    db["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 0, minimum=0)
    if db["ENGINE"] != "django.db.backends.postgresql" or not env_bool("DB_POOL", pool_default):
        return db
    if db["CONN_MAX_AGE"] != 0:
        raise ImproperlyConfigured(
            f"{PREFIX}DB_CONN_MAX_AGE={db['CONN_MAX_AGE']} must be 0 while {PREFIX}DB_POOL is on: "
            "the pool keeps the connections (set LUSWEB_DB_POOL=0 to use persistent connections instead)"
        )
    db["OPTIONS"]["pool"] = pool_options()
    return db

