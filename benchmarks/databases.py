"""Throw-away PostgreSQL databases for the benchmarks that need a real server (``bench_load``,
``bench_queue``): created beside the database of ``LUSWEB_DATABASE_URL``, dropped at the end."""
from __future__ import annotations

import urllib.parse


def bench_database(url: str, suffix: str) -> str:
    """A fresh database ``<name>_<suffix>`` on the server of ``url``; returns its URL."""
    import psycopg  # lazy: only these benchmarks talk to PostgreSQL directly

    parts = urllib.parse.urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'lusweb'}_{suffix}"
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl()


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (connections still open to it are closed)."""
    import psycopg  # lazy: only these benchmarks talk to PostgreSQL directly

    parts = urllib.parse.urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
