"""Readings of zone clips and the review of exams.

Every score of a zone is a :class:`ZoneReading`: the AI's (rater ``model:<version>``), a
clinician's, a study admin's adjudication, or an imported reference label. The score of record of
a zone is its latest adjudication, else its latest clinician reading, else its latest AI reading
(:mod:`patients.readings.selectors`). An exam is signed off with an :class:`ExamSignature`; a
second clinician reads blind with a :class:`BlindRead`.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from patients.imaging.models import ZoneClip
from patients.records.models import Exam

#: Finding keys of a reading, in the AI's order (``scoring.core.labels.FINDINGS``; a test keeps
#: them equal - readings sits below scoring and cannot import it).
FINDINGS: tuple[str, ...] = (
    "a_lines",
    "b_lines",
    "confluent_b_lines",
    "consolidation",
    "pleural_irregularity",
    "effusion",
)


class ReadingSource(models.TextChoices):
    AI = "ai", "AI"
    CLINICIAN = "clinician", "Clinician"
    ADJUDICATION = "adjudication", "Adjudication"
    IMPORTED = "imported", "Imported"


class ZoneReading(models.Model):
    """One reading of one zone clip: a score 0-3, findings, a comment, its rater and time."""

    clip = models.ForeignKey(ZoneClip, on_delete=models.CASCADE, related_name="readings")
    source = models.CharField(max_length=16, choices=ReadingSource.choices, db_index=True)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="the user (clinician and adjudication readings)")
    rater_name = models.CharField(max_length=64, help_text='username, "model:<version>" or a dataset rater')
    score = models.PositiveSmallIntegerField(null=True, blank=True,
                                             help_text="Soldati score 0-3; empty only for imported readings")
    findings = models.JSONField(default=dict, blank=True, help_text="finding key -> present")
    comment = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True, help_text="AI: the model's probability of its score")
    in_domain = models.BooleanField(null=True, blank=True, help_text="AI: the clip looks like the training clips")
    blind = models.BooleanField(default=False, help_text="made during a blind read")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["clip", "-created_at", "-pk"]
        indexes = [models.Index(fields=["clip", "source", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(score__isnull=True) | models.Q(score__lte=3),
                                   name="reading_score_range"),
            models.CheckConstraint(condition=models.Q(score__isnull=False) | models.Q(source="imported"),
                                   name="reading_score_required"),
            models.UniqueConstraint(fields=["clip", "rater_name"], condition=models.Q(source="imported"),
                                    name="one_imported_reading_per_rater"),
        ]

    def __str__(self) -> str:
        return f"{self.clip} {self.rater_name}={self.score} ({self.source})"


class ExamSignature(models.Model):
    """A sign-off of an exam: who, when, and the record scores signed."""

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="signatures")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+")
    by_name = models.CharField(max_length=150, blank=True, help_text="the signer's username, kept if the user goes")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    record = models.JSONField(default=dict, help_text="zone -> record score signed")

    class Meta:
        ordering = ["exam", "-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.exam} signed by {self.by_name} at {self.at:%Y-%m-%d %H:%M}"


class BlindRead(models.Model):
    """A clinician reading an exam blind: open (``submitted_at`` empty) until they submit."""

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="blind_reads")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["exam", "started_at"]
        constraints = [models.UniqueConstraint(fields=["exam", "reader"], name="one_blind_read_per_reader")]

    def __str__(self) -> str:
        return f"{self.exam} blind read by {self.reader_id} ({'open' if self.submitted_at is None else 'submitted'})"

    @property
    def is_open(self) -> bool:
        return self.submitted_at is None
