from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from patients.records.models import Patient
from patients.studies.models import Role, Study
from patients.studies.protocols import get_protocol
from tests.factories import (
    BloodGasFactory,
    ClinicalInfoFactory,
    ExamFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    UserFactory,
    members_by_role,
)
from tests.patients.dashboards import builders

UTC = dt.UTC


@dataclass
class Cohort:
    study: Study
    patient: Patient
    others: list[Patient]
    users: dict[str, Any]
    exams: list[Any]
    luss: list[int | None]
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def cohort(db: Any) -> Cohort:
    """A 12-zone study: patient A with 3 exams (2 scored, the last not), patients B and C with one
    scored exam each, blood gases near most exams, an outsider with a study of their own."""
    study = StudyFactory(name="Ward 7", protocol="12-zone")
    users = members_by_role(study, "{role}-user")
    outsider = UserFactory(username="outsider")
    MembershipFactory(study=StudyFactory(name="Other ward"), user=outsider, role=Role.STUDY_ADMIN)
    users["outsider"] = outsider
    codes = get_protocol("12-zone").codes
    mv = builders.model_version()
    a = PatientFactory(study=study, code="A-001", admission_date=dt.date(2026, 3, 1), name="Alice Secret",
                       hospital_number="H-SECRET-1")
    e1 = ExamFactory(patient=a, acquired_at=dt.datetime(2026, 3, 2, 10, tzinfo=UTC))
    e2 = ExamFactory(patient=a, acquired_at=dt.datetime(2026, 3, 5, 10, tzinfo=UTC))
    e3 = ExamFactory(patient=a, acquired_at=dt.datetime(2026, 3, 8, 10, tzinfo=UTC))
    s1 = builders.zone_scores(codes, 1, skip=["L6"])          # L6 missing at the first exam
    s2 = {**builders.zone_scores(codes, 2), "R1": 3}          # R1: 0 -> 3, a jump of >= 2
    builders.record_scores(e1, s1, mv=mv)
    builders.record_scores(e2, s2, mv=mv, severity="severe")
    builders.fake_clip(e3, "R1")                              # uploaded, not scored yet
    BloodGasFactory(patient=a, sampled_at=e1.acquired_at + dt.timedelta(hours=2), paco2_mmhg=40.0, pao2_mmhg=90.0,
                    fio2=0.3)
    BloodGasFactory(patient=a, sampled_at=e1.acquired_at - dt.timedelta(hours=2), paco2_mmhg=38.0, pao2_mmhg=92.0,
                    fio2=0.3)  # tie with the one above: the earlier (this one) wins
    BloodGasFactory(patient=a, sampled_at=e2.acquired_at + dt.timedelta(hours=5), paco2_mmhg=52.0, pao2_mmhg=60.0,
                    fio2=0.5)
    ClinicalInfoFactory(patient=a, recorded_at=e1.acquired_at)
    others = []
    for i, (base, paco2) in enumerate([(0, 36.0), (3, 55.0)]):
        p = PatientFactory(study=study, code=f"B-00{i + 1}", admission_date=None)
        e = ExamFactory(patient=p, acquired_at=dt.datetime(2026, 3, 3, 9, tzinfo=UTC))
        builders.record_scores(e, builders.zone_scores(codes, base), mv=mv, severity="mild" if base == 0 else "critical")
        BloodGasFactory(patient=p, sampled_at=e.acquired_at + dt.timedelta(hours=11), paco2_mmhg=paco2, pao2_mmhg=85.0,
                        fio2=0.21)
        BloodGasFactory(patient=p, sampled_at=e.acquired_at + dt.timedelta(hours=30), paco2_mmhg=99.0)  # outside
        others.append(p)
    luss = [sum(s1.values()), sum(s2.values()), None]
    return Cohort(study=study, patient=a, others=others, users=users, exams=[e1, e2, e3], luss=luss,
                  extra={"s1": s1, "s2": s2, "mv": mv, "codes": codes})
