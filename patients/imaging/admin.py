"""Admin of zone clips, and of exams with their clips inline."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from patients.imaging.models import ZoneClip
from patients.records.admin import ExamAdmin
from patients.records.models import Exam


class ZoneClipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ZoneClip
    extra = 0
    fields = ("zone", "status", "format", "frame_count", "fps", "manufacturer", "sha256")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Exam)
class ExamWithClipsAdmin(ExamAdmin):
    inlines = [ZoneClipInline]


@admin.register(ZoneClip)
class ZoneClipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["exam", "zone", "status", "format", "frame_count", "fps", "rows", "columns", "manufacturer",
                    "deidentified"]
    list_filter = ["status", "format", "manufacturer", "deidentified", "exam__patient__study"]
    search_fields = ["sha256", "original_filename", "sop_instance_uid", "study_instance_uid", "exam__patient__code"]
    readonly_fields = ["sha256", "size_bytes", "meta", "status", "error", "error_code", "attempts", "dispatched_at",
                       "claimed_at", "checked_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ZoneClip]:
        return ZoneClip.all_objects.select_related("exam")  # uploads being checked and failed ones too
