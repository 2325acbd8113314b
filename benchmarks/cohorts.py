"""Benchmark cohorts: scored exams written straight to the database (no clip files, no model).

Import only once Django is configured (the benchmark scripts' ``setup_django``, or pytest).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.studies.models import Membership, Role, Study
from patients.studies.protocols import get_protocol
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob, SeverityPrediction

# --- the export's cohort: bulk_create, any size ------------------------------------------------


def build_cohort(study: Study, *, patients: int, exams_per_patient: int, seed: int = 0,
                 start: dt.datetime | None = None) -> dict[str, Any]:
    """Scored exams for ``study`` written with ``bulk_create`` (no files): every protocol zone has
    a clip, a ClipScore and the AI's reading; each exam an ExamScore, a severity, a blood gas 2 h
    later and a clinical record 1 h before; one zone in 50 has a clinician reading.
    Returns counts: ``{"patients", "exams", "clips"}``."""
    rng = np.random.default_rng(seed)
    version = ModelVersion.objects.filter(is_active=True).first() or ModelVersion.objects.create(
        version=f"bench-model-{seed}", weights="default", is_active=True)
    start = start or timezone.now() - dt.timedelta(days=365)
    people, exams = _patients_and_exams(study, patients, exams_per_patient, start)
    _clinical_and_gases(exams)
    clips = _scored_clips(study, exams, version, rng)
    ZoneReading.objects.bulk_create([
        ZoneReading(clip=c, source=ReadingSource.CLINICIAN, rater_name="bench", score=3, comment="bench")
        for c in clips[::50]
    ], batch_size=2000)
    return {"patients": len(people), "exams": len(exams), "clips": len(clips)}


def _patients_and_exams(study: Study, patients: int, exams_per_patient: int,
                        start: dt.datetime) -> tuple[list[Patient], list[Exam]]:
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
    return people, exams


def _clinical_and_gases(exams: list[Exam]) -> None:
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


def _scored_clips(study: Study, exams: list[Exam], version: ModelVersion, rng: np.random.Generator) -> list[ZoneClip]:
    """A clip per protocol zone of every exam with its score; the exams' scores and severities."""
    codes = get_protocol(study.protocol).codes
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
    _ai_readings(clips, scores, version)
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
    return clips


def _ai_readings(clips: list[ZoneClip], scores: Any, version: ModelVersion) -> None:
    """The AI's reading of each clip, as the pipeline stores it beside the clip score."""
    ZoneReading.objects.bulk_create([
        ZoneReading(clip=c, source=ReadingSource.AI, rater_name=f"model:{version.version}", score=int(s),
                    findings={"b_lines": True}, confidence=0.4)
        for c, s in zip(clips, scores, strict=True)
    ], batch_size=2000)


# --- the pages' cohort: one long patient among others --------------------------------------------


def page_cohort(n_exams: int, n_others: int) -> dict[str, Any]:
    """One study: the benchmark patient with ``n_exams`` exams, plus ``n_others`` with 5 each;
    returns the clinician ``user``, the ``study`` and the benchmark ``patient``."""
    rng = np.random.default_rng(0)
    user = get_user_model().objects.create(username="bench-clinician")
    study = Study.objects.create(name="Bench ward", protocol="12-zone")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    mv = ModelVersion.objects.create(version="bench-model", weights="default", is_active=True)
    start = timezone.now() - dt.timedelta(days=200)
    patients = []
    for p in range(1 + n_others):
        patient = Patient.objects.create(study=study, code=f"B-{p:03d}", admission_date=start.date(),
                                         name=f"Name {p}", hospital_number=f"H{p}")
        patients.append(patient)
        ClinicalInfo.objects.create(patient=patient, recorded_at=start)
        for e in range(n_exams if p == 0 else 5):
            at = start + dt.timedelta(days=e * 3, hours=float(rng.uniform(0, 6)))
            _page_exam(patient, at, mv, rng)
    return {"user": user, "study": study, "patient": patients[0]}


def _page_exam(patient: Patient, at: dt.datetime, mv: ModelVersion, rng: np.random.Generator) -> None:
    """A 12-zone exam with a clip, a score and a severity per zone, and a blood gas near it."""
    codes = get_protocol("12-zone").codes
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
    _ai_readings(clips, scores, mv)
    ExamScore.objects.create(job=job, exam=exam, model_version=mv, luss=int(scores.sum()), max_luss=36,
                             mean_score=float(scores.mean()), worst_zone=codes[int(scores.argmax())],
                             worst_score=int(scores.max()), zones_ge2=int((scores >= 2).sum()), coverage=1.0,
                             missing_zones=[])
    label = ["mild", "moderate", "severe", "critical"][min(3, int(scores.sum()) // 9)]
    SeverityPrediction.objects.create(exam=exam, job=job, model_version=mv.version, label=label,
                                      probs=[0.25] * 4, severe_probability=0.5, zone_attention={})
    BloodGas.objects.create(patient=patient, sampled_at=at + dt.timedelta(hours=float(rng.uniform(-6, 6))),
                            paco2_mmhg=36 + 0.45 * float(scores.sum()), pao2_mmhg=80.0, fio2=0.3)
