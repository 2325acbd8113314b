"""A study with one member per role (each with an e-mail address) and a patient whose exams are
built zone by zone: clinician readings through the real service, the AI's readings as the
pipeline stores them (``ClipScoreFactory``)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from patients.imaging.models import ZoneClip
from patients.readings.services import reading_create
from patients.records.models import Exam, Patient
from patients.studies.models import Study
from tests.factories import ByRole, ClipScoreFactory, ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards.builders import clip_probs, fake_clip

T0 = timezone.make_aware(dt.datetime(2026, 3, 2, 9, 0))


@dataclass
class Cohort(ByRole):
    study: Study
    patient: Patient
    users: dict[str, Any]
    exams: list[Exam] = field(default_factory=list)

    def exam(self, *, day: int, read: Mapping[str, int] | None = None, ai: Mapping[str, int] | None = None,
             findings: Mapping[str, dict[str, bool]] | None = None, ai_consolidation: tuple[str, ...] = (),
             protocol: str | None = None) -> Exam:
        """An exam on ``day`` (days after T0): ``read`` zones read by the clinician (with
        ``findings``), ``ai`` zones only the AI read (``ai_consolidation``: zones whose AI finding
        "consolidation" is present); ``protocol``: the exam's, when not the study's."""
        exam = ExamFactory(patient=self.patient, acquired_at=T0 + dt.timedelta(days=day),
                           protocol=protocol or self.study.protocol)
        for zone, score in (ai or {}).items():
            clip = fake_clip(exam, zone)
            ClipScoreFactory(clip=clip, probs=clip_probs(score),
                             findings={"consolidation": 0.9 if zone in ai_consolidation else 0.1})
        for zone, score in (read or {}).items():
            clip = ZoneClip.objects.filter(exam=exam, zone=zone).first() or fake_clip(exam, zone)
            reading_create(clip=clip, by=self.clinician, score=score, findings=(findings or {}).get(zone, {}))
        self.exams.append(exam)
        return exam


def cohort(protocol: str = "8-zone", *, name: str = "ward") -> Cohort:
    study = StudyFactory(protocol=protocol)
    users = members_by_role(study, f"{name}-{{role}}")
    for role, user in users.items():
        user.email = f"{name}-{role}@hospital.test"
        user.save(update_fields=["email"])
    return Cohort(study, PatientFactory(study=study, code=f"{name.upper()}-01"), users)
