"""Admin of zone readings, exam signatures and blind reads (read mostly: writes go through services)."""
from __future__ import annotations

from django.contrib import admin

from patients.readings.models import BlindRead, ExamSignature, ZoneReading


@admin.register(ZoneReading)
class ZoneReadingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["clip", "source", "rater_name", "score", "blind", "created_at"]
    list_filter = ["source", "score", "blind", "clip__exam__patient__study"]
    search_fields = ["rater_name", "comment", "clip__exam__patient__code"]
    date_hierarchy = "created_at"
    raw_id_fields = ["clip", "rater"]


@admin.register(ExamSignature)
class ExamSignatureAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["exam", "by_name", "at"]
    list_filter = ["exam__patient__study"]
    search_fields = ["by_name", "exam__patient__code"]
    date_hierarchy = "at"
    raw_id_fields = ["exam", "by"]


@admin.register(BlindRead)
class BlindReadAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["exam", "reader", "started_at", "submitted_at"]
    list_filter = ["exam__patient__study"]
    raw_id_fields = ["exam", "reader"]
