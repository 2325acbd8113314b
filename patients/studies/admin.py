"""Admin of studies and their members."""
from __future__ import annotations

from django.contrib import admin

from patients.studies.models import Membership, Study


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
