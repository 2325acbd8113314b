"""A small ward for the score-of-record browser tests: three patients with synthetic phantom clips
(never real data) ingested through ``clip_ingest``, scored by the AI with the builders' finished
jobs (its readings included, as the pipeline stores them), some exams read and signed.

* SR-001: three exams. The first two are read and signed by the clinician; the last is the AI's
  draft, with R1 read 3 by the AI - 2 above the clinician's 1 at the exam before (a "moved" zone).
* SR-002: one AI-only exam with three zones the AI was unsure of (probability 35 %).
* SR-003: one AI-only exam with one zone unlike the training clips.

The worklist then reads SR-002, SR-003, SR-001.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import exam_sign, reading_create
from patients.records.models import Exam, Patient
from patients.studies.models import Role, Study
from patients.studies.protocols import get_protocol
from tests.factories import BloodGasFactory, ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.dashboards import builders

PASSWORD = "pw-for-tests-1"
CODES = get_protocol("12-zone").codes
#: The AI's scores of SR-001's exams (the third one's R1 is the 3 the clinician changes to 1).
AI_COURSE = (
    dict(zip(CODES, (3, 2, 2, 3, 1, 2, 2, 3, 1, 2, 2, 1), strict=True)),
    dict(zip(CODES, (2, 2, 1, 2, 1, 1, 2, 2, 1, 1, 1, 1), strict=True)),
    dict(zip(CODES, (3, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0), strict=True)),
)
#: What the clinician read at the signed exams where it differs from the AI.
READ = ({"R1": 2, "L2": 2}, {"R1": 1, "R2": 1})


@dataclass
class Course:
    study: Study
    patient: Patient
    exams: list[Exam]
    others: list[Exam]
    clinician: Any

    def clips(self, exam: Exam) -> dict[str, ZoneClip]:
        return {c.zone: c for c in exam.clips.all()}

    def record(self, i: int) -> dict[str, int]:
        """The record scores of SR-001's exam ``i`` before the test changes anything."""
        return {**AI_COURSE[i], **(READ[i] if i < len(READ) else {})}


def phantom_clip(exam: Exam, zone: str, score: int, seed: int, by: Any) -> ZoneClip:
    """A 64 x 64 phantom PNG of ``score`` stored in the zone through the one ingest path."""
    from patients.imaging.core.phantoms import phantom_cohort_clip
    from patients.imaging.ingest import clip_ingest
    from tests.patients.imaging.core.phantom_images import write_png

    buf = io.BytesIO()
    write_png(phantom_cohort_clip(score, seed=seed, n_frames=1, rows=64, columns=64), buf)
    return clip_ingest(exam=exam, upload=SimpleUploadedFile(f"{zone}.png", buf.getvalue()), zone=zone, by=by,
                       filename=f"{zone}.png").clip


def _scored_exam(patient: Patient, at: dt.datetime, scores: dict[str, int], seed: int, by: Any,
                 severity: str = "moderate") -> Exam:
    exam = ExamFactory(patient=patient, acquired_at=at)
    for j, (zone, score) in enumerate(scores.items()):
        phantom_clip(exam, zone, score, seed=seed + j, by=by)
    builders.record_scores(exam, scores, mv=builders.model_version("phantom-model-1"), severity=severity)
    BloodGasFactory(patient=patient, sampled_at=at + dt.timedelta(hours=1), paco2_mmhg=36.0 + sum(scores.values()) / 2)
    return exam


def build_course() -> Course:
    study = StudyFactory(name="Ward 4 (synthetic)", protocol="12-zone")
    users = {role: UserFactory(username=f"w-{role}") for role in (Role.STUDY_ADMIN, Role.CLINICIAN, Role.RESEARCHER)}
    for role, user in users.items():
        MembershipFactory(study=study, user=user, role=role)
    clinician = users[Role.CLINICIAN]
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    patient = PatientFactory(study=study, code="SR-001", admission_date=(now - dt.timedelta(days=9)).date(),
                             name="Synthetic Patient", hospital_number="SYN-0001")
    exams = [_scored_exam(patient, now - dt.timedelta(days=8 - 3 * i, hours=2), scores, 100 * i, clinician, severity)
             for i, (scores, severity) in enumerate(zip(AI_COURSE, ("severe", "moderate", "mild"), strict=True))]
    for exam, changes, ai in zip(exams, READ, AI_COURSE, strict=False):
        for zone, clip in {c.zone: c for c in exam.clips.all()}.items():
            reading_create(clip=clip, by=clinician, score=changes.get(zone, ai[zone]))
        exam_sign(exam=exam, by=clinician)
    others = []
    for k, (unsure, outside) in enumerate(((("R2", "L1", "L4"), ()), ((), ("R5",)))):
        other = PatientFactory(study=study, code=f"SR-00{k + 2}", admission_date=(now - dt.timedelta(days=3)).date())
        exam = _scored_exam(other, now - dt.timedelta(days=1 + k, hours=4), builders.zone_scores(CODES, 1 + k),
                            500 + 100 * k, clinician)
        ai = ZoneReading.objects.filter(clip__exam=exam, source=ReadingSource.AI)
        ai.filter(clip__zone__in=unsure).update(confidence=0.35)
        ai.filter(clip__zone__in=outside).update(in_domain=False)
        others.append(exam)
    return Course(study, patient, exams, others, clinician)
