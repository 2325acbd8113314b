"""Cohort export throughput and memory: a 100,000-row zone-level CSV.

Not a test: builds ``--rows`` zone rows (12-zone exams, each scored, with blood gases, clinical
records, severities and a few overrides) with ``bulk_create`` in a throw-away SQLite database
(temporary ``LUSWEB_VAR_DIR``, ``lusweb.settings.local``), then streams the export and prints
rows/s and the tracemalloc peak, e.g. ``zone/long: 100000 rows in 9.1 s = 11000 rows/s, peak 14 MB``.

    .venv/bin/python benchmarks/bench_export.py [--rows 100000] [--batch 500]

:func:`build_cohort` is also used by ``tests/patients/test_export.py`` (memory bound check).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _setup() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lusweb-bench-export-"))
    os.environ["LUSWEB_VAR_DIR"] = str(tmp)
    os.environ.pop("LUSWEB_DATABASE_URL", None)  # always the temporary SQLite file
    os.environ["DJANGO_SETTINGS_MODULE"] = "lusweb.settings.local"
    os.environ["LUSWEB_DEBUG"] = "0"  # DEBUG would keep every query in memory
    sys.path.insert(0, str(ROOT))
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_cohort(study: Any, *, patients: int, exams_per_patient: int, seed: int = 0,
                 start: dt.datetime | None = None) -> dict[str, Any]:
    """Scored exams for ``study`` written with ``bulk_create`` (no files): every protocol zone has
    a clip and a ClipScore; each exam an ExamScore, a severity, a blood gas 2 h later and a
    clinical record 1 h before; one zone in 50 has a clinician override.
    Returns counts: ``{"patients", "exams", "clips"}``."""
    import numpy as np
    from django.utils import timezone

    from patients.imaging.models import ZoneClip
    from patients.readings.models import ScoreOverride
    from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
    from patients.studies.protocols import get_protocol
    from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction

    rng = np.random.default_rng(seed)
    codes = get_protocol(study.protocol).codes
    version = ModelVersion.objects.filter(is_active=True).first() or ModelVersion.objects.create(
        version=f"bench-model-{seed}", weights="default", is_active=True)
    start = start or timezone.now() - dt.timedelta(days=365)
    base = Patient.objects.filter(study=study).count()
    people = Patient.objects.bulk_create([
        Patient(study=study, code=f"B{base + i:06d}", sex="FM"[i % 2], birth_year=1950 + i % 40,
                admission_date=(start + dt.timedelta(days=i % 30)).date(), name=f"Bench Name {i}",
                hospital_number=f"HN{base + i:07d}")
        for i in range(patients)
    ])
    exams = Exam.objects.bulk_create([
        Exam(patient=p, acquired_at=start + dt.timedelta(days=i % 30 + k, hours=10), protocol=study.protocol)
        for i, p in enumerate(people) for k in range(exams_per_patient)
    ], batch_size=2000)
    ClinicalInfo.objects.bulk_create([
        ClinicalInfo(patient=e.patient, recorded_at=e.acquired_at - dt.timedelta(hours=1), age=60, spo2=93.0,
                     respiratory_rate=20.0, diabetes=bool(e.pk % 2), fever=True, oxygen_support="nasal_cannula")
        for e in exams
    ], batch_size=2000)
    BloodGas.objects.bulk_create([
        BloodGas(patient=e.patient, sampled_at=e.acquired_at + dt.timedelta(hours=2), paco2_mmhg=40.0 + e.pk % 10,
                 pao2_mmhg=70.0, ph=7.4, fio2=0.4)
        for e in exams
    ], batch_size=2000)
    jobs = ScoringJob.objects.bulk_create([
        ScoringJob(exam=e, model_version=version, status="succeeded", progress=1.0) for e in exams
    ], batch_size=2000)
    clips = ZoneClip.objects.bulk_create([
        ZoneClip(exam=e, zone=z, file=f"bench/{e.pk}-{z}.dcm", frames=f"bench/{e.pk}-{z}.npz",
                 sha256=f"{e.pk:032x}{j:032x}", size_bytes=1, format="dicom", frame_count=1, rows=1, columns=1)
        for e in exams for j, z in enumerate(codes)
    ], batch_size=2000)
    scores = rng.integers(0, 4, size=len(clips))
    job_of = {j.exam_id: j for j in jobs}
    ClipScore.objects.bulk_create([
        ClipScore(job=job_of[c.exam_id], clip=c, zone=c.zone, model_version=version, score=int(s),
                  probs=[0.1, 0.2, 0.3, 0.4], findings={"b_lines": 0.5}, aggregator="max", frame_count=1,
                  frame_probs_f16=b"\x00" * 8)
        for c, s in zip(clips, scores, strict=True)
    ], batch_size=2000)
    per_exam: dict[int, int] = {}
    for c, s in zip(clips, scores, strict=True):
        per_exam[c.exam_id] = per_exam.get(c.exam_id, 0) + int(s)
    ExamScore.objects.bulk_create([
        ExamScore(job=job_of[e.pk], exam=e, model_version=version, luss=per_exam[e.pk], max_luss=3 * len(codes),
                  mean_score=per_exam[e.pk] / len(codes), worst_zone=codes[0], worst_score=3, zones_ge2=1,
                  coverage=1.0, missing_zones=[])
        for e in exams
    ], batch_size=2000)
    SeverityPrediction.objects.bulk_create([
        SeverityPrediction(exam=e, job=job_of[e.pk], model_version=version.version, label="moderate",
                           probs=[0.2, 0.5, 0.2, 0.1], severe_probability=0.3)
        for e in exams
    ], batch_size=2000)
    ScoreOverride.objects.bulk_create([
        ScoreOverride(clip=c, score=3, reason="bench") for c in clips[::50]
    ], batch_size=2000)
    return {"patients": len(people), "exams": len(exams), "clips": len(clips)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    _setup()
    from django.contrib.auth import get_user_model

    from patients.research.export.params import ExportParams
    from patients.research.export.stream import stream_csv
    from patients.studies.models import Study

    study = Study.objects.create(name="Bench export", protocol="12-zone")
    get_user_model().objects.create(username="bench-researcher")
    exams_per_patient = 10
    n_exams = -(-args.rows // 12)
    t0 = time.perf_counter()
    counts = build_cohort(study, patients=-(-n_exams // exams_per_patient), exams_per_patient=exams_per_patient)
    print(f"built {counts['clips']} zone rows ({counts['exams']} exams, {counts['patients']} patients) "
          f"in {time.perf_counter() - t0:.1f} s")
    for level, fmt in (("zone", "long"), ("exam", "wide"), ("patient", "long")):
        params = ExportParams(level=level, format=fmt)
        t0 = time.perf_counter()
        rows = -1  # the header
        size = 0
        for chunk in stream_csv(study, params, batch=args.batch):
            rows += chunk.count("\n")
            size += len(chunk)
        elapsed = time.perf_counter() - t0
        # A second pass under tracemalloc (which slows Python down) for the peak memory.
        tracemalloc.start()
        for _chunk in stream_csv(study, params, batch=args.batch):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{level}/{fmt}: {rows} rows, {size / 1e6:.1f} MB of CSV in {elapsed:.1f} s = "
              f"{rows / elapsed:,.0f} rows/s, peak {peak / 1e6:.1f} MB (tracemalloc)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
