"""Admin of zone clips, and of exams with their clips inline."""
from __future__ import annotations

from django.contrib import admin

from patients.imaging.models import ZoneClip
from patients.records.admin import ExamAdmin
from patients.records.models import Exam


class ZoneClipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ZoneClip
    extra = 0
    fields = ("zone", "format", "frame_count", "fps", "manufacturer", "sha256")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Exam)
class ExamWithClipsAdmin(ExamAdmin):
    inlines = [ZoneClipInline]


@admin.register(ZoneClip)
class ZoneClipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["exam", "zone", "format", "frame_count", "fps", "rows", "columns", "manufacturer", "deidentified"]
    list_filter = ["format", "manufacturer", "deidentified", "exam__patient__study"]
    search_fields = ["sha256", "original_filename", "sop_instance_uid", "study_instance_uid", "exam__patient__code"]
    readonly_fields = ["sha256", "size_bytes", "meta"]
