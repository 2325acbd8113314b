"""Pages under load (issue 16, item 5): the patient timeline page and the exam API at 20
concurrent signed-in users, each for 15 s, against the production server: uvicorn with 2 worker
processes, ``lusweb.settings.production`` (hashed static files, the PostgreSQL pool on), a patient
with 20 scored 12-zone exams in a study of 20 patients. Goal: p95 <= 150 ms on 2 cores.

Not a test. Needs PostgreSQL: the server of LUSWEB_DATABASE_URL gets a throw-away database
(``<name>_bench_load``), dropped at the end; prints "skipped" without it. Prints, per URL, the
requests, errors, p50 and p95 latency, and the machine's load average before and after.

    LUSWEB_DATABASE_URL=postgres://postgres@127.0.0.1:5432/lusweb .venv/bin/python -m benchmarks.bench_load
"""
from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import django
from django.core.management import call_command

from benchmarks.databases import bench_database, drop_database
from benchmarks.load import Load, percentile, user_loop, users_start
from lusweb.serve import uvicorn_command

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
TARGET_P95_MS = 150.0


def _setup(database_url: str) -> dict[str, str]:
    """Production settings on the bench database, in a temporary ``LUSWEB_VAR_DIR``; the same
    environment is the server's (same secret key: the session cookie made here is valid there)."""
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-load-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "lusweb.settings.production", "LUSWEB_DATABASE_URL": database_url,
        "LUSWEB_SECRET_KEY": secrets.token_urlsafe(48), "LUSWEB_VAR_DIR": str(tmp),
        # Plain HTTP on 127.0.0.1: no TLS proxy in front of this server.
        "LUSWEB_SSL_REDIRECT": "0", "LUSWEB_SECURE_COOKIES": "0", "LUSWEB_HSTS_SECONDS": "0",
        "LUSWEB_DB_POOL": "1", "LUSWEB_LOG_LEVEL": "WARNING", "LUSWEB_DEVICE": "cpu",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    return {**os.environ, **env}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """docker-compose's ``web`` command (``lusweb.serve``) on a free local port."""
    port = _free_port()
    proc = subprocess.Popen(
        uvicorn_command(port=port, workers=WORKERS),
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz/")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz/ within 60 s; see {log}")


def _run(port: int, path: str, cookie: str, marker: bytes, users: int, seconds: float) -> Load:
    headers = {"Cookie": cookie, "Accept": "text/html,application/json"}
    warm = Load()
    user_loop(port, path, headers, marker, time.monotonic() + 1.0, warm)  # templates, first queries
    if warm.errors:
        raise SystemExit(f"{path}: {warm.errors[0]}")
    load, threads = users_start(port, path, headers, marker, users=users, seconds=seconds)
    for t in threads:
        t.join()
    return load


def _report(label: str, load: Load, seconds: float) -> None:
    ms = [1000 * s for s in load.latencies]
    p95 = percentile(ms, 95)
    print(f"{label}: {len(ms)} requests ({len(ms) / seconds:.0f}/s), {len(load.errors)} errors, "
          f"p50 {percentile(ms, 50):.0f} ms, p95 {p95:.0f} ms (target {TARGET_P95_MS:.0f} ms), "
          f"max {max(ms):.0f} ms; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for error in load.errors[:3]:
        print(f"  error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--exams", type=int, default=20)
    args = parser.parse_args()
    base = os.environ.get("LUSWEB_DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print("skipped: set LUSWEB_DATABASE_URL to a PostgreSQL server (the production settings need it)")
        return
    database_url = bench_database(base, "bench_load")
    try:
        _bench(database_url, args)
    finally:
        from django.db import connections  # lazy: Django is set up by then

        connections.close_all()
        drop_database(database_url)


def _bench(database_url: str, args: argparse.Namespace) -> None:
    env = _setup(database_url)
    # lazy: models import only once _setup() has configured Django
    from django.conf import settings
    from django.test import Client

    from benchmarks.cohorts import page_cohort

    data = page_cohort(args.exams, 19)
    patient = data["patient"]
    exam = patient.exams.order_by("-acquired_at").first()
    browser = Client()
    browser.force_login(data["user"])
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    log = Path(env["LUSWEB_VAR_DIR"]) / "server.log"
    proc, port = _serve(env, log)
    try:
        print(f"uvicorn, {WORKERS} workers, production settings, PostgreSQL pool on; patient with {args.exams} exams "
              f"x 12 zones; {args.users} users x {args.seconds:.0f} s per URL; {os.cpu_count()} CPUs; load average "
              f"before {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        for label, path, marker in [
            ("timeline page", f"/patients/{patient.pk}/timeline/", patient.code.encode()),
            ("exam API", f"/api/v1/exams/{exam.pk}/", f'"id":{exam.pk}'.encode()),
        ]:
            _report(label, _run(port, path, cookie, marker, args.users, args.seconds), args.seconds)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
