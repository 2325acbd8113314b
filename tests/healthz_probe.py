"""Measure ``/healthz/`` from a process of its own, as a load balancer would: one new connection
per probe, every ``interval`` seconds; each line of ``out`` is "<wall-clock start> <seconds> <status>".

A separate process, so the figures are the server's, not the waits of a test process busy
sending uploads. Run: ``python -m tests.healthz_probe URL OUT [INTERVAL]``; stop it with SIGTERM.
"""
from __future__ import annotations

import http.client
import sys
import time
from urllib.parse import urlsplit


def main(url: str, out: str, interval: float) -> None:
    parts = urlsplit(url)
    with open(out, "a", buffering=1) as log:
        while True:
            start_wall, start = time.time(), time.perf_counter()
            try:
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
                conn.request("GET", "/healthz/")
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except OSError:
                status = 0
            log.write(f"{start_wall:.6f} {time.perf_counter() - start:.6f} {status}\n")
            time.sleep(interval)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.02)
