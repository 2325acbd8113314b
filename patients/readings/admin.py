"""Admin of raters' annotations and clinicians' score overrides."""
from __future__ import annotations

from django.contrib import admin

from patients.readings.models import ScoreOverride, ZoneAnnotation


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
