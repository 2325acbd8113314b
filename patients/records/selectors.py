"""Clinical record reads, always scoped to what the user may see."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.studies.models import Study
from patients.studies.permissions import role_or_404


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


def blood_gas_list(*, patient: Patient) -> QuerySet[BloodGas]:
    return BloodGas.objects.filter(patient=patient).order_by("sampled_at")


def clinical_info_list(*, patient: Patient) -> QuerySet[ClinicalInfo]:
    return ClinicalInfo.objects.filter(patient=patient).order_by("recorded_at")


def patient_for(*, user: Any, pk: int) -> tuple[Patient, str]:
    """The patient (with its study) and the user's role; 404 for outsiders too."""
    patient = get_object_or_404(Patient.objects.select_related("study"), pk=pk)
    return patient, role_or_404(user, patient.study)


def exam_for(*, user: Any, pk: int) -> tuple[Exam, str]:
    """The exam (with its patient and study) and the user's role; 404 for outsiders too."""
    exam = get_object_or_404(Exam.objects.select_related("patient__study"), pk=pk)
    return exam, role_or_404(user, exam.study)
