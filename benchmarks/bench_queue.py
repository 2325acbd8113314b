"""Queue priority: with N bulk exams queued (a study's rescoring), the time from a new exam's last
upload to its scores, through a real Celery worker on Redis (issue 16; goal <= 30 s with 50 bulk
exams on 2 cores).

Not a test. Needs LUSWEB_REDIS_URL (the strict queue order is Redis's ``priority`` strategy; the
filesystem broker of the laptop has none): prints "skipped" without it. SQLite in a temporary
folder, or a throw-away PostgreSQL database beside LUSWEB_DATABASE_URL when it names one; its Redis
database's queues are emptied first. Bulk exams are 12 zones x 30 frames
128x128; the new exam 12 zones x 150 frames 350x350 (the scoring benchmark's exam).

    LUSWEB_REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python -m benchmarks.bench_queue [--bulk 50]
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command

from benchmarks.databases import bench_database, drop_database
from benchmarks.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _setup(database_url: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-queue-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    if database_url:
        os.environ["LUSWEB_DATABASE_URL"] = database_url  # the worker subprocess reads it too
    else:
        os.environ.pop("LUSWEB_DATABASE_URL", None)  # the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"
    sys.path.insert(0, str(ROOT))
    django.setup()
    call_command("migrate", verbosity=0)


def _exam(study: Any, user: Any, code: str, *, frames: int, size: int) -> Any:
    """A 12-zone exam of a new patient, its clips ingested here (as the ingest worker would)."""
    # lazy: models import only once _setup() has configured Django
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
    from patients.imaging.ingest import clip_ingest
    from patients.records.services import exam_create, patient_create

    exam = exam_create(patient=patient_create(study=study, code=code, by=user), acquired_at=timezone.now(), by=user)
    for i, zone in enumerate(exam.zone_codes):
        buf = io.BytesIO()
        write_mp4(phantom_cohort_clip(i % 4, seed=i, n_frames=frames, rows=size, columns=size), buf)
        clip_ingest(exam=exam, upload=SimpleUploadedFile(f"{zone}.mp4", buf.getvalue()), zone=zone, by=user)
    return exam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bulk", type=int, default=50)
    args = parser.parse_args()
    if not os.environ.get("LUSWEB_REDIS_URL"):
        print("skipped: set LUSWEB_REDIS_URL (queue priority needs Redis)")
        return
    base = os.environ.get("LUSWEB_DATABASE_URL", "")
    # PostgreSQL when there is one: on SQLite the worker's writes and this process's uploads take
    # turns on one file lock, and with 50 bulk exams an upload gave up ("database is locked").
    database_url = bench_database(base, "bench_queue") if base.startswith(("postgres://", "postgresql://")) else None
    try:
        _bench(args, database_url)
    finally:
        if database_url:
            from django.db import connections  # lazy: Django is set up by then

            connections.close_all()
            drop_database(database_url)


def _bench(args: argparse.Namespace, database_url: str | None) -> None:
    _setup(database_url)
    # lazy: models and the Celery app import only once _setup() has configured Django
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from lusweb.celery import WORKER_QUEUES
    from patients.studies.models import Membership, Role, Study
    from scoring.models import ExamScore, JobStatus, ScoringJob
    from scoring.services import model_version_active, scoring_job_request, study_rescore

    model_version_active()
    user = get_user_model().objects.create(username="bench-queue")
    bulk_study, clinic = (Study.objects.create(name=n, protocol="12-zone") for n in ("bulk", "clinic"))
    for study in (bulk_study, clinic):
        Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    settings.SCORING_ON_UPLOAD = False  # jobs are asked for below, each once
    for k in range(args.bulk):
        _exam(bulk_study, user, f"B{k}", frames=30, size=128)
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    client.delete(*WORKER_QUEUES.split(","))
    bulk = study_rescore(study=bulk_study)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lusweb", "worker", "-Q", WORKER_QUEUES, "--pool", "solo",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"], cwd=ROOT, env=dict(os.environ))
    try:
        ids = [j.pk for j in bulk]
        wait_until(lambda: ScoringJob.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).exists(), 300)
        # The clinician's exam: its clips stored, then the scoring its last upload asks for (the
        # job then sees all twelve zones; a job started by earlier uploads would be run again).
        t_first = time.perf_counter()
        exam = _exam(clinic, user, "C1", frames=150, size=350)
        with transaction.atomic():
            scoring_job_request(exam=exam, reason="upload", by=user)
        t_last = time.perf_counter()
        wait_until(lambda: ExamScore.objects.filter(exam=exam, coverage=1.0).exists(), 600)
        t_done = time.perf_counter()
        left = ScoringJob.objects.filter(pk__in=ids).exclude(status=JobStatus.SUCCEEDED).count()
        wait_until(lambda: not ScoringJob.objects.filter(pk__in=ids).exclude(status=JobStatus.SUCCEEDED).exists(), 1800)
        t_bulk = time.perf_counter()
        job = ExamScore.objects.get(exam=exam, coverage=1.0).job
        assert job.started_at is not None and job.finished_at is not None
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    print(f"{'PostgreSQL' if database_url else 'SQLite'}; {args.bulk} bulk exams (12 x 30 frames) queued: the new exam (12 x 150 frames 350x350, uploads "
          f"{t_last - t_first:.1f} s) scored {t_done - t_last:.1f} s after its last upload, "
          f"with {left} bulk exams still waiting; the bulk work finished {t_bulk - t_done:.1f} s later. "
          f"The new exam's job waited {(job.started_at - job.created_at).total_seconds():.1f} s for the worker "
          f"and ran {(job.finished_at - job.started_at).total_seconds():.1f} s")


if __name__ == "__main__":
    main()
