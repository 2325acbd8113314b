"""Server time of the dashboard pages and APIs for a patient with 50 exams x 12 zones.

Not a test: prints the median over 20 requests (after 2 warm-ups) of each view, e.g.
``timeline page: 45 ms (target 300 ms)``. Runs on a throw-away SQLite database in a temporary
``LUSWEB_VAR_DIR`` with ``lusweb.settings.local``; result rows are written directly (no model).

    .venv/bin/python benchmarks/bench_pages.py [--exams 50] [--others 19] [--requests 20]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-pages-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    os.environ.pop("LUSWEB_DATABASE_URL", None)  # always the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"  # DEBUG would record every query and slow the views down
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic needed here
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _cohort(n_exams: int, n_others: int) -> dict[str, Any]:
    """One study: the benchmark patient with ``n_exams`` exams, plus ``n_others`` with 5 each."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from patients.imaging.models import ZoneClip
    from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
    from patients.studies.models import Membership, Role, Study
    from patients.studies.protocols import get_protocol
    from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction

    rng = np.random.default_rng(0)
    user = get_user_model().objects.create(username="bench-clinician")
    study = Study.objects.create(name="Bench ward", protocol="12-zone")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    mv = ModelVersion.objects.create(version="bench-model", weights="default", is_active=True)
    codes = get_protocol("12-zone").codes
    start = timezone.now() - dt.timedelta(days=200)
    labels = ["mild", "moderate", "severe", "critical"]
    target = None
    for p in range(1 + n_others):
        patient = Patient.objects.create(study=study, code=f"B-{p:03d}", admission_date=start.date(),
                                         name=f"Name {p}", hospital_number=f"H{p}")
        if p == 0:
            target = patient
        ClinicalInfo.objects.create(patient=patient, recorded_at=start)
        for e in range(n_exams if p == 0 else 5):
            at = start + dt.timedelta(days=e * 3, hours=float(rng.uniform(0, 6)))
            exam = Exam.objects.create(patient=patient, acquired_at=at, protocol="12-zone")
            clips = ZoneClip.objects.bulk_create([
                ZoneClip(exam=exam, zone=z, file=f"clips/bench/{exam.pk}-{z}", sha256=f"{exam.pk}-{z}", size_bytes=1,
                         format="png", frame_count=30, rows=8, columns=8, frames=f"clips/bench/{exam.pk}-{z}.npz")
                for z in codes
            ])
            job = ScoringJob.objects.create(exam=exam, model_version=mv, status="succeeded", progress=1.0)
            scores = rng.integers(0, 4, size=len(codes))
            fp = np.full((30, 4), 0.25, np.float16).tobytes()
            ClipScore.objects.bulk_create([
                ClipScore(job=job, clip=c, zone=c.zone, model_version=mv, score=int(s), probs=[0.1, 0.2, 0.3, 0.4],
                          findings={"b_lines": 0.7}, aggregator="mean", frame_count=30, frame_probs_f16=fp)
                for c, s in zip(clips, scores, strict=True)
            ])
            ExamScore.objects.create(job=job, exam=exam, model_version=mv, luss=int(scores.sum()), max_luss=36,
                                     mean_score=float(scores.mean()), worst_zone=codes[int(scores.argmax())],
                                     worst_score=int(scores.max()), zones_ge2=int((scores >= 2).sum()), coverage=1.0,
                                     missing_zones=[])
            label = labels[min(3, int(scores.sum()) // 9)]
            SeverityPrediction.objects.create(exam=exam, job=job, model_version=mv.version, label=label,
                                              probs=[0.25] * 4, severe_probability=0.5, zone_attention={})
            BloodGas.objects.create(patient=patient, sampled_at=at + dt.timedelta(hours=float(rng.uniform(-6, 6))),
                                    paco2_mmhg=36 + 0.45 * float(scores.sum()), pao2_mmhg=80.0, fio2=0.3)
    assert target is not None
    return {"user": user, "study": study, "patient": target}


def _median_ms(client: Any, url: str, n: int) -> float:
    for _ in range(2):  # warm-up: template loading, first queries
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exams", type=int, default=50)
    parser.add_argument("--others", type=int, default=19, help="other patients (5 exams each) in the study")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    _setup()
    from django.test import Client

    data = _cohort(args.exams, args.others)
    client = Client(SERVER_NAME="localhost")
    client.force_login(data["user"])
    pid, sid = data["patient"].pk, data["study"].pk
    total_exams = args.exams + 5 * args.others
    print(f"patient: {args.exams} exams x 12 zones; study: {1 + args.others} patients, {total_exams} exams")
    for label, url in [
        ("timeline page", f"/patients/{pid}/timeline/"),
        ("timeline API", f"/api/v1/patients/{pid}/timeline/"),
        ("study overview", f"/studies/{sid}/overview/"),
        ("correlation page (patient)", f"/patients/{pid}/correlation/"),
        ("correlation API (patient)", f"/api/v1/patients/{pid}/correlation/"),
        ("correlation page (study)", f"/studies/{sid}/correlation/"),
        ("correlation API (study)", f"/api/v1/studies/{sid}/correlation/?unit=kPa"),
    ]:
        print(f"{label}: {_median_ms(client, url, args.requests):.0f} ms (target {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
