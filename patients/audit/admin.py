"""Admin of the audit trail: read-only."""
from __future__ import annotations

from typing import Any

from django.contrib import admin

from patients.audit.models import AuditEvent


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
