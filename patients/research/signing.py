"""A dataset's expert scores as a clinician's signed readings (``import_covid_blues --signed-by``).

A ward that brings its own labelled archive, or a simulation of site training on COVID-BLUES,
needs the expert's scores to be what a clinician of the study stands behind: a clinician reading
of every zone by that user, then the exam signed. Idempotent: a zone the signer has already read
with the same score, and an exam already signed and unchanged since, are left alone.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.selectors import review_states
from patients.readings.services import exam_sign, reading_create
from patients.records.models import Exam
from patients.studies import permissions
from patients.studies.models import Role, Study
from patients.studies.services import membership_set


@dataclass(frozen=True)
class ExpertLabel:
    """One zone's expert score, findings and comment from the dataset."""

    clip: ZoneClip
    score: int
    findings: dict[str, bool]
    comment: str


def expert_readings_sign(*, study: Study, by: Any, signer: Any, exams: dict[Exam, list[ExpertLabel]],
                         log: Callable[[str], None] = lambda message: None) -> tuple[int, list[str]]:
    """Store each label as ``signer``'s clinician reading and sign every exam whose zones all have
    one. ``signer`` is made a clinician of the study when they cannot write to it yet (audited by
    ``by``, the study admin running the import). Returns (exams signed, reasons exams were not)."""
    if permissions.role_in_study(signer, study) not in permissions.WRITE_ROLES:
        membership_set(study=study, username=signer.get_username(), role=Role.CLINICIAN, by=by)
        signer = type(signer).objects.get(pk=signer.pk)  # a fresh object: the old one remembers no role
    signed, unsigned = 0, []
    for exam, labels in exams.items():
        with transaction.atomic():
            for label in labels:
                mine = (ZoneReading.objects.filter(clip=label.clip, rater=signer, source=ReadingSource.CLINICIAN)
                        .order_by("-created_at", "-pk").values_list("score", flat=True).first())
                if mine != label.score:
                    reading_create(clip=label.clip, by=signer, score=label.score, findings=label.findings,
                                   comment=label.comment or "expert score of the dataset (imported)")
            unlabelled = sorted(set(exam.clips.values_list("zone", flat=True)) - {lb.clip.zone for lb in labels})
            if unlabelled:
                unsigned.append(f"exam {exam.pk}: zone{'s' if len(unlabelled) > 1 else ''} "
                                f"{', '.join(unlabelled)} ha{'ve' if len(unlabelled) > 1 else 's'} no expert score")
                continue
            if review_states(exam_ids=[exam.pk])[exam.pk].status != "reviewed":
                exam_sign(exam=exam, by=signer)
                signed += 1
                log(f"  exam {exam.pk} signed by {signer.get_username()}")
    return signed, unsigned
