"""Reads, always scoped to what the user may see."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from patients.models import BloodGas, ClinicalInfo, Exam, Patient, Study, ZoneClip


def study_list(*, user: Any) -> QuerySet[Study]:
    qs = Study.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    return qs.annotate(patient_count=Count("patients", distinct=True)).order_by("name")


def patient_list(*, user: Any, study: Study | int | None = None) -> QuerySet[Patient]:
    qs = Patient.objects.select_related("study")
    if not user.is_superuser:
        qs = qs.filter(study__memberships__user=user)
    if study is not None:
        qs = qs.filter(study=study)
    return qs.order_by("study__name", "code")


def exam_list(*, user: Any, patient: Patient | int | None = None) -> QuerySet[Exam]:
    qs = Exam.objects.select_related("patient", "patient__study")
    if not user.is_superuser:
        qs = qs.filter(patient__study__memberships__user=user)
    if patient is not None:
        qs = qs.filter(patient=patient)
    return qs.order_by("patient__code", "acquired_at")


def clip_list(*, user: Any, exam: Exam | int | None = None) -> QuerySet[ZoneClip]:
    qs = ZoneClip.objects.select_related("exam", "exam__patient", "exam__patient__study")
    if not user.is_superuser:
        qs = qs.filter(exam__patient__study__memberships__user=user)
    if exam is not None:
        qs = qs.filter(exam=exam)
    return qs


def blood_gas_list(*, patient: Patient) -> QuerySet[BloodGas]:
    return BloodGas.objects.filter(patient=patient).order_by("sampled_at")


def clinical_info_list(*, patient: Patient) -> QuerySet[ClinicalInfo]:
    return ClinicalInfo.objects.filter(patient=patient).order_by("recorded_at")
