"""Admin of patients, clinical records and blood gases (exams: ``patients.imaging.admin``, which
lists each exam's clips)."""
from __future__ import annotations

from django.contrib import admin

from patients.records.models import BloodGas, ClinicalInfo, Patient


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["code", "study", "sex", "birth_year", "admission_date"]
    list_filter = ["study", "sex"]
    search_fields = ["code", "name", "hospital_number"]
    date_hierarchy = "admission_date"


class ExamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The exam's admin; registered by ``patients.imaging.admin`` with the exam's clips inline."""

    list_display = ["patient", "acquired_at", "protocol", "device", "operator"]
    list_filter = ["protocol", "patient__study", "device"]
    search_fields = ["patient__code", "device", "probe", "operator", "notes"]
    date_hierarchy = "acquired_at"


@admin.register(ClinicalInfo)
class ClinicalInfoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["patient", "recorded_at", "age", "oxygen_support", "spo2", "respiratory_rate"]
    list_filter = ["oxygen_support", "patient__study", "diabetes", "hypertension"]
    search_fields = ["patient__code"]
    date_hierarchy = "recorded_at"


@admin.register(BloodGas)
class BloodGasAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["patient", "sampled_at", "ph", "paco2_mmhg", "pao2_mmhg", "fio2", "unit_entered"]
    list_filter = ["unit_entered", "patient__study"]
    search_fields = ["patient__code"]
    date_hierarchy = "sampled_at"
