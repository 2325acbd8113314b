"""Ingest throughput and the time to 202 of a 12-zone exam.

* Throughput: clips per second through both halves of ingest - the request's ``clip_accept`` and
  the worker's ``clip_process``, the functions the API and the ``ingest`` queue run - inline in
  this process: 24 phantom clips (12 DICOM, 12 MP4; 60 frames of 320x320) into two exams of a
  de-identifying study.
* Time to 202: the production server (uvicorn, 2 processes) answers 12 API uploads of a 12-zone
  exam, sent one after another as a script does; then one ingest worker (running beside it) checks
  them: last 202 -> all 12 ready.

Runs on a throw-away SQLite database and the filesystem broker in a temporary ``LUSWEB_VAR_DIR``
unless ``LUSWEB_DATABASE_URL`` / ``LUSWEB_REDIS_URL`` point elsewhere.

    .venv/bin/python -m benchmarks.bench_ingest
"""
from __future__ import annotations

import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
import requests
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
Clip = tuple[str, str, bytes]  # zone, file name, bytes


def _setup() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-ingest-"))
    os.environ.setdefault("LUSWEB_VAR_DIR", str(tmp))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"
    os.environ["LUSWEB_SCORING_ON_UPLOAD"] = "0"  # ingest only: no scoring job competes here
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    call_command("migrate", verbosity=0)
    return tmp


def _clips() -> list[Clip]:
    """A phantom clip per zone of the 12-zone protocol, DICOM and MP4 in turn."""
    # lazy: the project's modules import only once _setup() has configured Django
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom, write_mp4
    from patients.studies.protocols import get_protocol

    clips = []
    for i, zone in enumerate(get_protocol("12-zone").codes):
        phantom = phantom_cohort_clip(i % 4, seed=i, n_frames=60, rows=320, columns=320)
        buf = io.BytesIO()
        (write_dicom if i % 2 else write_mp4)(phantom, buf)
        clips.append((zone, f"{zone}.{'dcm' if i % 2 else 'mp4'}", buf.getvalue()))
    return clips


def _prepare() -> tuple[Any, Any, str]:
    """A clinician of a de-identifying 12-zone study, its patient and the clinician's API token."""
    # lazy: models import only once _setup() has configured Django
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from patients.records.services import patient_create
    from patients.studies.models import Membership, Role, Study

    user = get_user_model().objects.create(username=f"bench{time.time_ns()}")
    study = Study.objects.create(name=f"bench ingest {time.time_ns()}", protocol="12-zone")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    patient = patient_create(study=study, code="B1", by=user)
    return user, patient, Token.objects.create(user=user).key


def _exam(patient: Any, user: Any) -> Any:
    # lazy: models import only once _setup() has configured Django
    from django.utils import timezone

    from patients.records.services import exam_create

    return exam_create(patient=patient, acquired_at=timezone.now(), by=user)


def _throughput(patient: Any, user: Any, clips: list[Clip]) -> None:
    """Accept, then check, 24 clips; clips per second through both halves."""
    # lazy: models import only once _setup() has configured Django
    from patients.imaging.accept import clip_accept
    from patients.imaging.process import clip_process

    accepted, t_accept = [], 0.0
    for exam in (_exam(patient, user), _exam(patient, user)):
        for zone, name, data in clips:
            t0 = time.perf_counter()
            accepted.append(clip_accept(exam=exam, upload=io.BytesIO(data), zone=zone, by=user, filename=name,
                                        dispatch=False).clip)
            t_accept += time.perf_counter() - t0
    t0 = time.perf_counter()
    checked = [clip_process(clip_id=c.pk) for c in accepted]
    t_check = time.perf_counter() - t0
    assert all(p is not None and p.error is None for p in checked), [p.error for p in checked if p]
    n, mb = len(accepted), sum(len(d) for _, _, d in clips) * 2 / 1e6
    print(f"ingest throughput: {n / (t_accept + t_check):.2f} clips/s through accept + check "
          f"({n} clips, {mb:.0f} MB, de-identified; accept {1000 * t_accept / n:.0f} ms/clip, "
          f"check {1000 * t_check / n:.0f} ms/clip)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _time_to_202(patient: Any, user: Any, token: str, clips: list[Clip]) -> None:
    """12 API uploads to the production server, one after another; then the worker's checks."""
    from patients.imaging.models import ZoneClip  # lazy: models import only once _setup() has configured Django

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start([sys.executable, "-m", "uvicorn", "lusweb.asgi:application", "--port", str(port),
                     "--workers", "2", "--lifespan", "off", "--no-access-log"])
    worker = _start([sys.executable, "-m", "celery", "-A", "lusweb", "worker", "-Q", "ingest", "--pool", "solo",
                     "--loglevel", "WARNING", "--without-gossip", "--without-mingle"])
    try:
        _wait(lambda: _healthy(url), 60, "the server")
        for warm_up in range(4):  # each server process has served an upload before the clock starts
            zone, name, data = clips[warm_up]
            requests.post(f"{url}/api/v1/exams/{_exam(patient, user).pk}/clips/", data={"zone": zone},
                          files={"file": (name, data)}, headers={"Authorization": f"Token {token}"}, timeout=60)
        exam, times = _exam(patient, user), []
        for zone, name, data in clips:
            t0 = time.perf_counter()
            answer = requests.post(f"{url}/api/v1/exams/{exam.pk}/clips/", data={"zone": zone},
                                   files={"file": (name, data)}, headers={"Authorization": f"Token {token}"},
                                   timeout=60)
            times.append(time.perf_counter() - t0)
            assert answer.status_code == 202, answer.text[:300]
        t_last = time.perf_counter()
        _wait(lambda: ZoneClip.objects.filter(exam=exam).count() == len(clips), 600, "the worker's checks")
        t_ready = time.perf_counter() - t_last
    finally:
        for proc in (server, worker):
            proc.terminate()
            proc.wait(timeout=60)
    print(f"time to 202 for a 12-zone exam: {sum(times):.2f} s for 12 API uploads one after another "
          f"(median {1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms per upload)")
    print(f"last 202 -> all 12 clips checked by one ingest worker: {t_ready:.2f} s")


def main() -> None:
    _setup()
    user, patient, token = _prepare()
    clips = _clips()
    _throughput(patient, user, clips)
    _time_to_202(patient, user, token, clips)


if __name__ == "__main__":
    main()
