from __future__ import annotations

from typing import Any

from django.contrib import admin

from patients.models import (
    AuditEvent,
    BloodGas,
    ClinicalInfo,
    Exam,
    Membership,
    Patient,
    ScoreOverride,
    Study,
    ZoneAnnotation,
    ZoneClip,
)


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "protocol", "archived", "deidentify", "keep_original", "created_at"]
    list_filter = ["protocol", "archived", "deidentify", "keep_original"]
    search_fields = ["name", "description"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "study", "role", "created_at"]
    list_filter = ["role", "study"]
    search_fields = ["user__username", "study__name"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["code", "study", "sex", "birth_year", "admission_date"]
    list_filter = ["study", "sex"]
    search_fields = ["code", "name", "hospital_number"]
    date_hierarchy = "admission_date"


class ZoneClipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ZoneClip
    extra = 0
    fields = ("zone", "format", "frame_count", "fps", "manufacturer", "sha256")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Exam)
class ExamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["patient", "acquired_at", "protocol", "device", "operator"]
    list_filter = ["protocol", "patient__study", "device"]
    search_fields = ["patient__code", "device", "probe", "operator", "notes"]
    date_hierarchy = "acquired_at"
    inlines = [ZoneClipInline]


@admin.register(ZoneClip)
class ZoneClipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["exam", "zone", "format", "frame_count", "fps", "rows", "columns", "manufacturer", "deidentified"]
    list_filter = ["format", "manufacturer", "deidentified", "exam__patient__study"]
    search_fields = ["sha256", "original_filename", "sop_instance_uid", "study_instance_uid", "exam__patient__code"]
    readonly_fields = ["sha256", "size_bytes", "meta"]


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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the trail is written by the services, never edited by hand."""

    list_display = ["at", "actor_username", "action", "study_name", "object_type", "object_id", "row_count", "ip"]
    list_filter = ["action", "study", "object_type"]
    search_fields = ["actor_username", "study_name", "object_type", "object_id", "ip"]
    date_hierarchy = "at"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ZoneAnnotation)
class ZoneAnnotationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["clip", "rater", "score", "created_by", "at"]
    list_filter = ["rater", "score", "clip__exam__patient__study"]
    search_fields = ["rater", "comment", "clip__exam__patient__code"]
    date_hierarchy = "at"
    raw_id_fields = ["clip"]


@admin.register(ScoreOverride)
class ScoreOverrideAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["clip", "score", "by", "at", "reason"]
    list_filter = ["score", "clip__exam__patient__study"]
    search_fields = ["reason", "by__username", "clip__exam__patient__code"]
    date_hierarchy = "at"
    raw_id_fields = ["clip"]
