"""Acceptance of ingest off the request path, on the production server (uvicorn, several
processes) with a real Celery worker, PostgreSQL and Redis:

* ``/healthz/`` stays fast (p95 <= 100 ms) while ten uploads run;
* with the broker down an upload still answers JSON 202 (never an HTML 500) and its clip is
  stored and pending; once the broker is back the clip is checked and its exam scored within 60 s;
* the server and the worker remove stale temporary files when they start.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from lusweb.serve import cpu_seconds
from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom, write_mp4
from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from scoring.models import ClipScore, JobStatus, ScoringJob
from tests.conftest import ROOT
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.redis_proxy import RedisProxy
from tests.server import Server
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture
OUTPUT = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))


def _clinician_exam(**study: Any) -> tuple[Exam, str, Any]:
    """A 12-zone exam, its clinician's API token and the clinician."""
    s = StudyFactory(protocol="12-zone", **study)
    user = UserFactory()
    Membership.objects.create(study=s, user=user, role=Role.CLINICIAN)
    return ExamFactory(patient=PatientFactory(study=s)), Token.objects.create(user=user).key, user


def _dicom(seed: int, frames: int, size: int) -> bytes:
    buf = io.BytesIO()
    write_dicom(phantom_cohort_clip(seed % 4, seed=seed, n_frames=frames, rows=size, columns=size), buf)
    return buf.getvalue()


def _post(url: str, token: str, exam: Exam, zone: str, name: str, data: bytes) -> requests.Response:
    """An upload through the API with a token, as a script would send it."""
    return requests.post(f"{url}/api/v1/exams/{exam.pk}/clips/", headers={"Authorization": f"Token {token}"},
                         data={"zone": zone}, files={"file": (name, data)}, timeout=120)


def _wait(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


class _Probe:
    """``tests.healthz_probe`` in ``n`` processes of their own, each probing every 20 ms."""

    def __init__(self, url: str, n: int = 3) -> None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.outs = [OUTPUT / f"healthz-probe-{time.monotonic_ns()}-{i}.txt" for i in range(n)]
        self.procs = [subprocess.Popen([sys.executable, "-m", "tests.healthz_probe", url, str(out), "0.02"], cwd=ROOT)
                      for out in self.outs]
        self.samples: list[tuple[float, float, int]] = []

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=30)
        for out in self.outs:
            words = out.read_text().split()
            self.samples += [(float(words[i]), float(words[i + 1]), int(words[i + 2]))
                             for i in range(0, len(words) - 2, 3)]
            out.unlink()
        self.samples.sort()

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the probes that started in [start, end] (wall clock)."""
        return [s for at, s, _ in self.samples if start <= at <= end]


def _multipart(zone: str, name: str, data: bytes) -> tuple[bytes, str]:
    """The upload's request body, encoded before the clock starts (the test process only sends it)."""
    from urllib3 import encode_multipart_formdata

    return encode_multipart_formdata({"zone": zone, "file": (name, data)})


def _upload_all(url: str, token: str, exam: Exam, bodies: list[tuple[bytes, str]]) -> list[tuple[Any, float]]:
    """Send the uploads at once, one thread each: [(response, seconds to its answer)]."""
    answers: list[tuple[requests.Response, float]] = []

    def upload(body: bytes, content_type: str) -> None:
        start = time.perf_counter()
        response = requests.post(f"{url}/api/v1/exams/{exam.pk}/clips/", data=body, timeout=120,
                                 headers={"Authorization": f"Token {token}", "Content-Type": content_type})
        answers.append((response, time.perf_counter() - start))

    threads = [threading.Thread(target=upload, args=body) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return answers


def test_healthz_stays_fast_while_ten_uploads_run(asgi_server: Callable[..., Server],
                                                  worker_env: Callable[..., Worker]) -> None:
    exam, token, user = _clinician_exam()
    warm_exam = ExamFactory(patient=exam.patient)
    bodies = [_multipart(exam.zone_codes[i], f"zone{i}.dcm", _dicom(i, frames=80, size=256)) for i in range(12)]
    worker = worker_env(LUSWEB_SCORING_ON_UPLOAD="0")  # ingest only: no scoring job competes for the CPU
    worker.wait_ready()
    server = asgi_server(workers=4, LUSWEB_DB_POOL="1")
    # A server in its steady state: each process has served uploads (code loaded, broker connection open).
    warm = _upload_all(server.url, token, warm_exam, bodies)
    assert sorted(r.status_code for r, _ in warm) == [202] * 12
    _wait(lambda: ZoneClip.objects.filter(exam=warm_exam).count() == 12, 300, "the warm-up clips", worker.log)
    probe = _Probe(server.url)
    time.sleep(1.5)
    cpu0 = cpu_seconds(server.pids()), cpu_seconds([worker.proc.pid]), cpu_seconds([os.getpid()])
    t0 = time.time()
    answers = _upload_all(server.url, token, exam, bodies[:10])
    t_answered = time.time()
    cpu1 = cpu_seconds(server.pids()), cpu_seconds([worker.proc.pid]), cpu_seconds([os.getpid()])
    _wait(lambda: ZoneClip.all_objects.filter(exam=exam, status="ready").count() == 10, 300,
          "the worker to check the ten clips", worker.log)
    t_checked = time.time()
    time.sleep(0.5)
    probe.stop()
    assert sorted(r.status_code for r, _ in answers) == [202] * 10, [(r.status_code, r.text[:200]) for r, _ in answers]
    assert all(r.headers["Location"].endswith(f"/api/v1/clips/{r.json()['id']}/") for r, _ in answers)
    assert all(status == 200 for _, _, status in probe.samples)
    during_uploads, until_checked = probe.between(t0, t_answered), probe.between(t0, t_checked)
    figures = {
        "uploads": 10, "bytes_each": len(bodies[0][0]), "server_processes": 4,
        "upload_answer_s": {"median": statistics.median(s for _, s in answers), "max": max(s for _, s in answers)},
        "uploads_answered_s": t_answered - t0, "uploads_checked_s": t_checked - t0,
        "cpu_s_while_uploading": {"server": cpu1[0] - cpu0[0], "worker": cpu1[1] - cpu0[1],
                                  "test_client": cpu1[2] - cpu0[2], "load_average": os.getloadavg()[0]},
        "healthz_while_uploading": {"n": len(during_uploads), "p95_ms": 1000 * _p95(during_uploads),
                                    "max_ms": 1000 * max(during_uploads)},
        "healthz_until_checked": {"n": len(until_checked), "p95_ms": 1000 * _p95(until_checked),
                                  "max_ms": 1000 * max(until_checked)},
        "healthz_samples_while_uploading": [(round(at - t0, 3), round(1000 * s, 1)) for at, s, _ in probe.samples
                                            if t0 <= at <= t_answered],
        "clips": [(c.zone, *(round(t.timestamp() - t0, 3) if t else None
                             for t in (c.created_at, c.dispatched_at, c.claimed_at, c.checked_at)))
                  for c in ZoneClip.all_objects.filter(exam=exam).order_by("created_at")],
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "ingest-healthz.json").write_text(json.dumps(figures, indent=2))
    print("\n" + json.dumps(figures, indent=2))
    assert len(during_uploads) >= 20, figures
    assert figures["healthz_while_uploading"]["p95_ms"] <= 100, figures
    assert figures["healthz_until_checked"]["p95_ms"] <= 100, figures


@pytest.fixture
def proxy() -> Iterator[RedisProxy]:
    p = RedisProxy(str(django_settings.REDIS_URL))
    yield p
    p.close()


def _login(url: str, username: str) -> requests.Session:
    """A browser-like session: the login form with its CSRF token."""
    session = requests.Session()
    session.get(f"{url}/login/", timeout=10)
    answer = session.post(f"{url}/login/", data={"username": username, "password": "pw-for-tests-1",
                                                 "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                          headers={"Referer": f"{url}/login/"}, timeout=10)
    assert answer.status_code == 200 and "/login/" not in answer.url, answer.text[:300]
    return session


def _scored(exam: Exam, zones: int) -> bool:
    """A job of the exam succeeded with a score for ``zones`` clips."""
    return any(ClipScore.objects.filter(job=job).count() == zones
               for job in ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED))


def test_broker_down_upload_answers_202_and_is_checked_and_scored_once_it_is_back(
        asgi_server: Callable[..., Server], worker_env: Callable[..., Worker], proxy: RedisProxy) -> None:
    exam, token, user = _clinician_exam()
    # The server and the worker reach Redis (broker and channel layer) only through the proxy; the
    # recovery loops run at their default interval.
    worker = worker_env(LUSWEB_REDIS_URL=proxy.url, LUSWEB_INGEST_RECOVERY_SECONDS="10",
                        LUSWEB_SCORING_RECOVERY_SECONDS="10")
    worker.wait_ready()
    server = asgi_server(workers=2, LUSWEB_REDIS_URL=proxy.url)
    # Broker up: an upload is checked and scored (this also loads the model in the worker).
    warm = _post(server.url, token, exam, "R1", "r1.mp4", _mp4(1))
    assert warm.status_code == 202, warm.text[:300]
    _wait(lambda: ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED).exists(), 240,
          "the first clip to be scored", worker.log)

    proxy.down()
    down = _post(server.url, token, exam, "R2", "r2.dcm", _dicom(2, frames=10, size=128))
    assert down.status_code == 202 and down.headers["Content-Type"] == "application/json", down.text[:300]
    assert down.json()["status"] == "pending"
    page = _login(server.url, user.username)
    form = page.get(f"{server.url}/exams/{exam.pk}/", timeout=10)
    assert form.status_code == 200
    by_form = page.post(f"{server.url}/exams/{exam.pk}/", data={
        "zone": "R3", "csrfmiddlewaretoken": page.cookies["csrftoken"]}, files={"file": ("r3.mp4", _mp4(3))},
        headers={"Referer": f"{server.url}/exams/{exam.pk}/"}, timeout=30)
    assert by_form.status_code == 200 and "r3.mp4 received for zone R3: checking the file…" in by_form.text
    stored = {c.zone: c for c in ZoneClip.all_objects.filter(exam=exam, zone__in=["R2", "R3"])}
    assert {z: (c.status, c.dispatched_at) for z, c in stored.items()} == {"R2": ("pending", None),
                                                                           "R3": ("pending", None)}
    assert all(c.received.storage.exists(c.received.name) for c in stored.values())
    time.sleep(12)  # a recovery round fails against the dead broker meanwhile
    assert set(ZoneClip.all_objects.filter(exam=exam, zone__in=["R2", "R3"]).values_list("status", flat=True)) == {
        "pending"}

    proxy.up()
    back = time.monotonic()
    checked = _wait(lambda: ZoneClip.objects.filter(exam=exam).count() == 3, 60, "the two clips to be checked",
                    worker.log)
    done = _wait(lambda: _scored(exam, 3), 60 - (time.monotonic() - back), "the exam to be scored", worker.log)
    total = time.monotonic() - back
    figures = {"checked_after_return_s": checked, "scored_after_return_s": total, "scored_wait_s": done}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "ingest-broker-down.json").write_text(json.dumps(figures, indent=2))
    print("\n" + json.dumps(figures, indent=2))
    assert total <= 60, figures


def _mp4(seed: int) -> bytes:
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(seed % 4, seed=seed, n_frames=12, rows=128, columns=128), buf)
    return buf.getvalue()


def test_the_server_and_the_worker_remove_stale_temporary_files_when_they_start(
        asgi_server: Callable[..., Server], worker_env: Callable[..., Worker]) -> None:
    folder = Path(django_settings.TEMP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - django_settings.TEMP_STALE_SECONDS - 60

    def leave(*names: str) -> list[Path]:
        paths = [folder / n for n in names]
        for p in paths:
            p.write_bytes(b"x" * 1024)
            os.utime(p, (old, old))
        return paths

    fresh = folder / "lusweb-ingest-in-use.dcm"
    fresh.write_bytes(b"in use")
    unrelated = leave("notes.txt")[0]
    stale = leave("tmpab12cd34.upload.dcm", "lusweb-ingest-dead1.mp4")
    asgi_server(workers=2)
    assert not any(p.exists() for p in stale) and fresh.exists() and unrelated.exists()
    stale = leave("tmpef56gh78.upload.mp4", "lusweb-ingest-dead2.dcm")
    worker = worker_env()
    worker.wait_ready()
    assert not any(p.exists() for p in stale) and fresh.exists() and unrelated.exists()
    # The folder is the test session's: what this test made must not age into a later test's count.
    fresh.unlink()
    unrelated.unlink()
