"""A 12-zone exam with the AI's readings of every zone, and one member per role (plus a second
clinician, and an outsider who is a clinician of another study): the ``ward`` fixture of
``tests/patients/conftest.py``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.models import Role, Study
from patients.studies.protocols import get_protocol
from tests.factories import (
    ByRole,
    ExamFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    UserFactory,
    members_by_role,
)
from tests.patients.dashboards import builders

#: The AI's scores of the exam's zones (R1 read 3 by the AI, which the tests then read 1).
AI = {"R1": 3, "R2": 1, "R3": 0, "R4": 2, "R5": 1, "R6": 0, "L1": 1, "L2": 2, "L3": 0, "L4": 1, "L5": 3, "L6": 0}


@dataclass
class Ward(ByRole):
    study: Study
    exam: Exam
    clips: dict[str, ZoneClip]
    users: dict[str, Any]


def make_ward() -> Ward:
    study = StudyFactory(name="Review ward", protocol="12-zone")
    users = members_by_role(study, "rw-{role}")
    users["second"] = UserFactory(username="rw-second")
    MembershipFactory(study=study, user=users["second"], role=Role.CLINICIAN)
    users["outsider"] = UserFactory(username="rw-outsider")
    MembershipFactory(study=StudyFactory(name="Another ward"), user=users["outsider"], role=Role.CLINICIAN)
    patient = PatientFactory(study=study, code="RW-1", admission_date=dt.date(2026, 3, 1))
    exam = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC))
    builders.record_scores(exam, AI, mv=builders.model_version())
    clips = {c.zone: c for c in exam.clips.all()}
    assert set(clips) == set(get_protocol("12-zone").codes) == set(AI)
    return Ward(study, exam, clips, users)


def read_all(ward: Ward, user: Any, scores: dict[str, int] | None = None) -> None:
    """``user`` reads every zone of the exam (the AI's score unless ``scores`` says otherwise)."""
    from patients.readings.services import reading_create

    for zone, clip in ward.clips.items():
        reading_create(clip=clip, by=user, score=(scores or {}).get(zone, AI[zone]))
