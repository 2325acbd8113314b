"""Time from "last clip uploaded" to "exam scored" through a real Celery worker.

Runs on the laptop defaults (SQLite in a temporary folder, filesystem broker) unless
LUSWEB_DATABASE_URL / LUSWEB_REDIS_URL point elsewhere.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command

from benchmarks.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-"))
    os.environ.setdefault("LUSWEB_VAR_DIR", str(tmp))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    django.setup()
    call_command("migrate", verbosity=0)
    patient, user, clips = _prepare(tmp)
    from lusweb.celery import WORKER_QUEUES  # lazy: the Celery app reads settings configured above

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lusweb", "worker", "-Q", WORKER_QUEUES, "--pool", "solo",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=dict(os.environ),
    )
    try:
        time.sleep(1.0)
        _measure(patient, user, clips)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _prepare(tmp: Path) -> tuple[Any, Any, list[tuple[str, Path]]]:
    """A clinician, a patient of a 12-zone study, and an MP4 phantom per zone (150 frames, 350x350)."""
    # lazy: models import only once main() has configured Django
    from django.contrib.auth import get_user_model

    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
    from patients.records.services import patient_create
    from patients.studies.models import Membership, Role, Study
    from patients.studies.protocols import get_protocol
    from scoring.services import model_version_active

    model_version_active()  # register the default weights before timing
    user = get_user_model().objects.create(username=f"bench{time.time_ns()}")
    study = Study.objects.create(name=f"bench {time.time_ns()}", protocol="12-zone")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    patient = patient_create(study=study, code="B1", by=user)
    clips = []
    for i, zone in enumerate(get_protocol(study.protocol).codes):
        path = tmp / f"{zone}.mp4"
        write_mp4(phantom_cohort_clip(i % 4, seed=i, n_frames=150, rows=350, columns=350), path)
        clips.append((zone, path))
    return patient, user, clips


def _measure(patient: Any, user: Any, clips: list[tuple[str, Path]]) -> None:
    """Warm the worker with one clip, then time twelve uploads and the scoring of their exam."""
    # lazy: models import only once main() has configured Django
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from patients.imaging.ingest import clip_ingest
    from patients.records.services import exam_create
    from scoring.models import ExamScore, JobStatus, ScoringJob

    exam = exam_create(patient=patient, acquired_at=timezone.now(), by=user)
    warm = exam_create(patient=patient, acquired_at=timezone.now(), by=user)
    zone, path = clips[0]
    clip_ingest(exam=warm, upload=SimpleUploadedFile(path.name, path.read_bytes()), zone=zone, by=user)
    wait_until(lambda: ScoringJob.objects.filter(exam=warm, status=JobStatus.SUCCEEDED).exists(), 300)
    t_upload = time.perf_counter()
    for zone, path in clips:
        clip_ingest(exam=exam, upload=SimpleUploadedFile(path.name, path.read_bytes()), zone=zone, by=user)
    t_last = time.perf_counter()
    # Done when a job that saw all twelve zones has succeeded.
    wait_until(lambda: ExamScore.objects.filter(exam=exam, coverage=1.0).exists(), 600)
    t_done = time.perf_counter()
    job = ExamScore.objects.get(exam=exam, coverage=1.0).job
    print(f"12 uploads (12 x 150 frames, 350x350 MP4) ingested in {t_last - t_upload:.2f} s")
    from django.conf import settings  # lazy: main() configures Django first

    how = ("clips prepared right after their ingest check" if settings.SCORING_PREPARE_ON_INGEST
           else "LUSWEB_SCORING_PREPARE_ON_INGEST=0: frame caches read and prepared in the job")
    print(f"last clip uploaded -> exam scored: {t_done - t_last:.2f} s "
          f"(worker: the exam's clips read and scored in {job.timings.get('read_and_score_s', 0):.2f} s; {how})")


if __name__ == "__main__":
    main()
