"""Pages under load (issue 16, item 5): the patient timeline page and the exam API at 20
concurrent signed-in users (20 accounts, a session each), against the production server: uvicorn
with 2 worker processes, ``lusweb.settings.production`` (hashed static files, the PostgreSQL pool
on, the page cache on), a patient with 20 scored 12-zone exams in a study of 20 patients. Goal:
p95 <= 150 ms on 2 cores.

Per URL, three runs:

* first views: the 20 users' first request, all at once, nothing cached;
* steady: 15 s of every user asking again as soon as answered;
* the same while a clinician saves a reading of the patient every 5 s: each one invalidates every
  user's cached answer (``patients.dashboards.pagecache``), as a busy ward does.

Not a test. Needs PostgreSQL: the server of LUSWEB_DATABASE_URL gets a throw-away database
(``<name>_bench_load``), dropped at the end; prints "skipped" without it. Prints, per run, the
requests, errors, p50 and p95 latency, the server processes' CPU time per answer (a shared
machine's neighbours move it less than the latency), and the machine's load average after it.

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
import threading
import time
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command

from benchmarks.databases import bench_database, drop_database
from benchmarks.load import Load, percentile, user_loop, users_start
from lusweb.serve import cpu_seconds, server_workers, uvicorn_command

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
        # No worker runs here: the readings saved during the load send no severity task.
        "LUSWEB_SEVERITY_ON_READING": "0",
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


def _server_cpu(pid: int) -> float:
    """CPU seconds the server's worker processes have used so far: per answer, a measure that a
    shared machine's load changes less than latency."""
    return cpu_seconds(server_workers(pid))


def _first_views(port: int, path: str, headers: list[dict[str, str]], marker: bytes) -> Load:
    """Every user's first request, all at once: nothing of theirs is cached yet."""
    load = Load()
    threads = [threading.Thread(target=user_loop, args=(port, path, h, marker, 0.0, load), kwargs={"requests": 1})
               for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if load.errors:
        raise SystemExit(f"{path}: {load.errors[0]}")
    return load


def _run(server: subprocess.Popen[bytes], port: int, path: str, headers: list[dict[str, str]], marker: bytes,
         seconds: float) -> tuple[Load, float]:
    """The users' load for ``seconds``, and the server's CPU milliseconds per answer meanwhile."""
    cpu = _server_cpu(server.pid)
    load, threads = users_start(port, path, headers, marker, users=len(headers), seconds=seconds)
    for t in threads:
        t.join()
    return load, 1000 * (_server_cpu(server.pid) - cpu) / max(1, len(load.latencies))


def _writing(every: float, clip_ids: list[int], user: Any, stop: threading.Event, saved: list[int]) -> None:
    """A clinician saving a reading of the patient every ``every`` seconds (each one changes what
    every user's page shows, so no cached answer survives it)."""
    # lazy: models import only once _setup() has configured Django
    from django.db import connection

    from patients.imaging.models import ZoneClip
    from patients.readings.services import reading_create

    try:
        while not stop.wait(every):
            clip = ZoneClip.objects.select_related("exam__patient__study").get(pk=clip_ids[len(saved) % len(clip_ids)])
            saved.append(reading_create(clip=clip, by=user, score=len(saved) % 4).pk)
    finally:
        connection.close()


def _scenarios(server: subprocess.Popen[bytes], port: int, label: str, path: str, marker: bytes, cookies: list[str], args: argparse.Namespace,
               clip_ids: list[int], writer: Any) -> None:
    headers = [{"Cookie": cookie, "Accept": "text/html,application/json"} for cookie in cookies]
    first = _first_views(port, path, headers, marker)
    ms = sorted(1000 * s for s in first.latencies)
    print(f"{label}, first views ({len(ms)} users at once, nothing cached): p50 {percentile(ms, 50):.0f} ms, "
          f"max {ms[-1]:.0f} ms", flush=True)
    _report(f"{label}, steady", *_run(server, port, path, headers, marker, args.seconds), args.seconds)
    stop, saved = threading.Event(), list[int]()
    thread = threading.Thread(target=_writing, args=(args.write_every, clip_ids, writer, stop, saved))
    thread.start()
    try:
        load, cpu = _run(server, port, path, headers, marker, args.seconds)
    finally:
        stop.set()
        thread.join()
    _report(f"{label}, a reading saved every {args.write_every:g} s ({len(saved)} saved)", load, cpu, args.seconds)


def _clinicians(study: Any, n: int) -> list[Any]:
    """``n`` signed-in users of the ward: the cohort's clinician and ``n - 1`` colleagues, each with
    their own session (and API throttle, as 20 people have)."""
    # lazy: models import only once _setup() has configured Django
    from django.contrib.auth import get_user_model

    from patients.studies.models import Membership, Role

    users = [m.user for m in Membership.objects.filter(study=study).select_related("user")]
    for i in range(len(users), n):
        user = get_user_model().objects.create(username=f"bench-colleague-{i}")
        Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
        users.append(user)
    return users[:n]


def _report(label: str, load: Load, cpu_ms: float, seconds: float) -> None:
    ms = [1000 * s for s in load.latencies]
    p95 = percentile(ms, 95)
    print(f"{label}: {len(ms)} requests ({len(ms) / seconds:.0f}/s), {len(load.errors)} errors, "
          f"p50 {percentile(ms, 50):.0f} ms, p95 {p95:.0f} ms (target {TARGET_P95_MS:.0f} ms), "
          f"server CPU {cpu_ms:.1f} ms per answer, "
          f"max {max(ms):.0f} ms; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for error in load.errors[:3]:
        print(f"  error: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--exams", type=int, default=20)
    parser.add_argument("--write-every", type=float, default=5.0,
                        help="seconds between the readings saved during the last run of each URL")
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
    from patients.imaging.models import ZoneClip

    data = page_cohort(args.exams, 19)
    patient = data["patient"]
    exam = patient.exams.order_by("-acquired_at").first()
    cookies = []
    for user in _clinicians(data["study"], args.users):
        browser = Client()
        browser.force_login(user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}")
    log = Path(env["LUSWEB_VAR_DIR"]) / "server.log"
    proc, port = _serve(env, log)
    try:
        print(f"uvicorn, {WORKERS} workers, production settings, PostgreSQL pool on; patient with {args.exams} exams "
              f"x 12 zones; {args.users} users x {args.seconds:.0f} s per URL; {os.cpu_count()} CPUs; load average "
              f"before {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        clip_ids = list(ZoneClip.objects.filter(exam=exam).values_list("pk", flat=True))
        for label, path, marker in [
            ("timeline page", f"/patients/{patient.pk}/timeline/", patient.code.encode()),
            ("exam API", f"/api/v1/exams/{exam.pk}/", f'"id":{exam.pk}'.encode()),
        ]:
            _scenarios(proc, port, label, path, marker, cookies, args, clip_ids, data["user"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
