"""The audit trail's rows: who did what to which object, when and from where."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    VIEW_IDENTIFYING = "view_identifying", "Viewed identifying data"
    EXPORT = "export", "Exported"
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    OVERRIDE = "override", "Overrode a score"
    LOGIN = "login", "Logged in"
    SIGN = "sign", "Signed exam"
    LOCKOUT = "lockout", "Locked out after failed sign-ins"


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written only by ``patients.audit.services``.

    ``study`` and ``actor`` survive as names (``study_name``, ``actor_username``) when the
    rows they point to are deleted, so the trail outlives what it describes.
    """

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    study = models.ForeignKey("patients.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    study_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=24, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": {"old": ..., "new": ...}} or details')
    row_count = models.PositiveIntegerField(null=True, blank=True, help_text="rows exported")
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["study", "-at"]), models.Index(fields=["actor", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username or '-'} {self.action} {self.object_type} {self.object_id}"
