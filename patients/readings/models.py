"""Readings of a clip besides the AI's: raters' annotations and clinicians' score overrides."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from patients.imaging.models import ZoneClip


class ZoneAnnotation(models.Model):
    """A rater's reading of one zone clip (imported expert labels, a second reader ...)."""

    clip = models.ForeignKey(ZoneClip, on_delete=models.CASCADE, related_name="annotations")
    rater = models.CharField(max_length=64, help_text='who scored, e.g. "covid-blues-expert"')
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Soldati score 0-3; empty if unscored")
    findings = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clip", "rater"]
        constraints = [
            models.UniqueConstraint(fields=["clip", "rater"], name="one_annotation_per_rater"),
            models.CheckConstraint(condition=models.Q(score__isnull=True) | models.Q(score__lte=3),
                                   name="annotation_score_range"),
        ]

    def __str__(self) -> str:
        return f"{self.clip} {self.rater}={self.score}"


class ScoreOverride(models.Model):
    """A clinician's score for a zone replacing the AI's; the latest wins, the history stays."""

    clip = models.ForeignKey(ZoneClip, on_delete=models.CASCADE, related_name="overrides")
    score = models.PositiveSmallIntegerField()
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["clip", "-at", "-pk"]
        constraints = [models.CheckConstraint(condition=models.Q(score__lte=3), name="override_score_range")]

    def __str__(self) -> str:
        return f"{self.clip} override={self.score}"
