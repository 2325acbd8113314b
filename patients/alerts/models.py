"""Alert rules of a study and the alerts they raised.

A rule (``AlertRule``) is one of four kinds with its threshold; a study has at most one of each.
An alert (``Alert``) is raised once per rule and cause (``key``: the exam and zone, or the gas), is
``open`` until a member acknowledges it with a comment, and names the score it used and where that
score came from (``source``: the clinician's record, or the AI's reading not yet reviewed).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from patients.records.models import BloodGas, Exam, Patient
from patients.studies.models import Study


class AlertKind(models.TextChoices):
    ZONE_WORSENED = "zone_worsened", "A zone worsened by N points since the previous exam"
    GLOBAL_SCORE = "global_score", "Global score above a fraction of the protocol's maximum"
    PF_RATIO = "pf_ratio", "P/F ratio below a threshold"
    NEW_CONSOLIDATION = "new_consolidation", "A new consolidation finding"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class AlertRule(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    enabled = models.BooleanField(default=True)
    threshold = models.FloatField(null=True, blank=True,
                                  help_text="Points (zone), fraction of the maximum (global), mmHg (P/F)")
    email = models.BooleanField(default=True, help_text="E-mail the study's clinicians when it fires")

    class Meta:
        ordering = ["study", "kind"]
        constraints = [models.UniqueConstraint(fields=["study", "kind"], name="one_alert_rule_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.threshold}) in {self.study}"


class Alert(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="alerts")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    exam = models.ForeignKey(Exam, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    blood_gas = models.ForeignKey(BloodGas, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    key = models.CharField(max_length=120, help_text="The rule's cause, so that it fires once (e.g. exam:12:zone:R1)")
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32, blank=True,
                              help_text="Which score it used: the record (clinician) or the AI, not reviewed")
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["study", "kind", "key"], name="one_alert_per_cause")]
        indexes = [models.Index(fields=["study", "state"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.state})"
