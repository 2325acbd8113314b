"""An exam to report on: a 12-zone study that keeps identities, its patient's previous exam, the
AI's readings of every zone, clinicians' readings of most, blood gases around the exam."""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from patients.readings import services as readings_services
from patients.readings.models import ReadingSource, ZoneReading
from patients.records.models import Exam, Patient
from patients.studies.models import Role, Study
from patients.studies.protocols import get_protocol
from tests.factories import (
    BloodGasFactory,
    ExamFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    UserFactory,
    members_by_role,
)
from tests.patients.dashboards import builders

UTC = dt.UTC
CODES = get_protocol("12-zone").codes
#: The AI's scores of the exam, the clinicians' readings (overriding some) and the previous exam's.
AI = {z: [0, 1, 2, 3, 1, 2, 0, 1, 2, 3, 1, 2][i] for i, z in enumerate(CODES)}
CLINICIAN = {"R1": 1, "R2": 1, "R3": 3, "R4": 3, "R5": 1, "R6": 2, "L1": 0, "L2": 2, "L3": 2}  # L4-L6 left to the AI
PREVIOUS = dict.fromkeys(CODES, 1)


@dataclass
class Case:
    study: Study
    patient: Patient
    exam: Exam
    previous: Exam
    users: dict[str, Any]
    record: dict[str, int]  # zone -> the score of record
    source: dict[str, str]  # zone -> "clinician" | "ai"


def output_dir(name: str) -> Path:
    """A folder of the test output ($LUSWEB_TEST_OUTPUT/<name>) for files a person may look at."""
    folder = Path(os.environ.get("LUSWEB_TEST_OUTPUT", tempfile.gettempdir())) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read(exam: Exam, scores: dict[str, int], by: Any) -> None:
    clips = {c.zone: c for c in exam.clips.all()}
    for zone, score in scores.items():
        readings_services.reading_create(clip=clips[zone], by=by, score=score)


@pytest.fixture
def case(db: Any) -> Case:
    study = StudyFactory(name="Ward 9", protocol="12-zone", deidentify=False)
    users = members_by_role(study, "{role}-rep")
    outsider = UserFactory(username="outsider-rep")
    MembershipFactory(study=StudyFactory(name="Elsewhere"), user=outsider, role=Role.STUDY_ADMIN)
    users["outsider"] = outsider
    patient = PatientFactory(study=study, code="W9-017", name="Ana Lima Ferreira", hospital_number="H7654321",
                             admission_date=dt.date(2026, 3, 1))
    mv = builders.model_version("lus-test-7")
    previous = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 2, 9, tzinfo=UTC))
    builders.record_scores(previous, PREVIOUS, mv=mv)
    read(previous, PREVIOUS, users[Role.CLINICIAN])
    exam = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 4, 12, tzinfo=UTC), device="Venue Go",
                       study_instance_uid="1.2.826.0.1.3680043.8.498.1234")
    builders.record_scores(exam, AI, mv=mv)
    read(exam, CLINICIAN, users[Role.CLINICIAN])
    BloodGasFactory(patient=patient, sampled_at=exam.acquired_at - dt.timedelta(hours=3), pao2_mmhg=72.0,
                    paco2_mmhg=48.5, fio2=0.4, ph=7.31)
    BloodGasFactory(patient=patient, sampled_at=exam.acquired_at - dt.timedelta(hours=30), pao2_mmhg=95.0,
                    paco2_mmhg=39.0, fio2=0.21, ph=7.41)  # older: not the latest
    BloodGasFactory(patient=patient, sampled_at=exam.acquired_at + dt.timedelta(hours=1), pao2_mmhg=61.0,
                    paco2_mmhg=55.0, fio2=0.6, ph=7.22)  # after the exam: not reported
    record = {**AI, **CLINICIAN}
    source = {z: "clinician" if z in CLINICIAN else "ai" for z in CODES}
    return Case(study, patient, exam, previous, users, record, source)


def sign_all(case: Case) -> None:
    """A clinician reads the AI's zones too (keeping the AI's score) and signs the exam off."""
    clinician = case.users[Role.CLINICIAN]
    read(case.exam, {z: s for z, s in case.record.items() if case.source[z] == "ai"}, clinician)
    readings_services.exam_sign(exam=case.exam, by=clinician)
    case.source = dict.fromkeys(CODES, "clinician")


def ai_rows(exam: Exam) -> int:
    return ZoneReading.objects.filter(clip__exam=exam, source=ReadingSource.AI).count()
