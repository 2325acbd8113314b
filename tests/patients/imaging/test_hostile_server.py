"""Acceptance: hostile files uploaded to the production server (uvicorn, two processes) and checked
by a real Celery worker, with the default budgets.

Every file of ``tests.hostile.HOSTILE`` (the issue's decompression bombs scaled to this machine,
lying and truncated DICOMs) must end as a failed clip whose error names the limit that was hit,
leave no file in the media or temporary folders, and no server or worker process may pass
1.5 GB of resident memory at any moment (the kernel's high-water mark, ``VmHWM``, read at the end).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from patients.imaging.models import ZoneClip
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.hostile import HOSTILE
from tests.server import Server
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

worker_env = worker_env_fixture
OUTPUT = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir()))
RSS_LIMIT_MB = 1536


def _peak_mb(pid: int) -> float:
    """The process's resident-memory high-water mark so far, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _await_end(url: str, token: str, clip_id: int, timeout: float, log: Path) -> dict[str, Any]:
    """The clip as the API shows it once its check ended (ready or failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = requests.get(f"{url}/api/v1/clips/{clip_id}/", timeout=10,
                                            headers={"Authorization": f"Token {token}"}).json()
        if body["status"] in ("ready", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"clip {clip_id} still being checked after {timeout:.0f} s\n{log.read_text()[-3000:]}")


def test_hostile_uploads_fail_naming_their_limit_within_memory_and_leave_nothing(
        asgi_server: Callable[..., Server], worker_env: Callable[..., Worker],
        hostile_file: Callable[[str], Path]) -> None:
    study = StudyFactory(protocol="12-zone")
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    token = Token.objects.create(user=user).key
    exam = ExamFactory(patient=PatientFactory(study=study))
    paths = {name: hostile_file(name) for name in HOSTILE}  # made before any process is measured
    media, temp = Path(django_settings.MEDIA_ROOT), Path(django_settings.TEMP_DIR)
    temp_before = _files(temp)
    worker = worker_env(LUSWEB_SCORING_ON_UPLOAD="0")
    worker.wait_ready()
    server = asgi_server(workers=2)
    results: dict[str, dict[str, Any]] = {}
    for i, (name, hostile) in enumerate(HOSTILE.items()):
        zone = exam.zone_codes[i % len(exam.zone_codes)]  # a failed clip frees its zone
        with paths[name].open("rb") as fh:
            answer = requests.post(f"{server.url}/api/v1/exams/{exam.pk}/clips/", data={"zone": zone},
                                   files={"file": (paths[name].name, fh)}, timeout=120,
                                   headers={"Authorization": f"Token {token}"})
        assert answer.status_code == 202, (name, answer.status_code, answer.text[:300])
        clip = _await_end(server.url, token, answer.json()["id"], 180, worker.log)
        results[name] = {"bytes": paths[name].stat().st_size, "status": clip["status"], "code": clip.get("code"),
                         "error": clip.get("error")}
        assert clip["status"] == "failed" and clip["code"] == hostile.code, (name, clip)
        assert re.search(hostile.pattern, clip["error"]), (name, clip["error"])
        if hostile.setting:
            assert hostile.setting in clip["error"], (name, clip["error"])
    peaks = {"server": max(_peak_mb(pid) for pid in server.pids()), "worker": _peak_mb(worker.proc.pid)}
    figures = {"peak_rss_mb": peaks, "files": results}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "hostile-server.json").write_text(json.dumps(figures, indent=2))
    print("\n" + json.dumps(figures, indent=2))
    assert max(peaks.values()) < RSS_LIMIT_MB, figures
    # Nothing left behind: no clip row that is not failed, no stored file, no temporary file.
    assert set(ZoneClip.all_objects.filter(exam=exam).values_list("status", flat=True)) == {"failed"}
    assert _files(media) == set(), _files(media)
    assert _files(temp) - temp_before == set()
