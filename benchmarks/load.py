"""Signed-in users asking for one URL again and again: the load generator of the pages-under-load
benchmark (``bench_load``) and of the connection-pool load test
(``tests/lusweb/test_connections_under_load.py``)."""
from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Load:
    """What the users saw: one latency (seconds) per request, and the failed answers."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def user_loop(port: int, path: str, headers: dict[str, str], marker: bytes, deadline: float, load: Load,
              requests: int | None = None) -> None:
    """One user asking for ``path`` on a kept-alive connection until ``deadline`` (monotonic), or
    ``requests`` times; an answer is right when it is a 200 that contains ``marker``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    asked = 0
    while (time.monotonic() < deadline) if requests is None else asked < requests:
        asked += 1
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            error = None if answer.status == 200 and marker in body else f"{answer.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with load.lock:
            load.latencies.append(time.perf_counter() - started)
            if error:
                load.errors.append(error)
    conn.close()


def users_start(port: int, path: str, headers: dict[str, str] | Sequence[dict[str, str]], marker: bytes, *,
                users: int, seconds: float) -> tuple[Load, list[threading.Thread]]:
    """``users`` threads running :func:`user_loop` for ``seconds``, started; join them to finish.
    ``headers``: the same for every user, or one per user (each signed in as someone else)."""
    load = Load()
    deadline = time.monotonic() + seconds
    each = [headers] * users if isinstance(headers, dict) else list(headers)
    if len(each) != users:
        raise ValueError(f"{len(each)} headers for {users} users")
    threads = [threading.Thread(target=user_loop, args=(port, path, each[i], marker, deadline, load))
               for i in range(users)]
    for t in threads:
        t.start()
    return load, threads


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method; the value itself for a single one)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]
