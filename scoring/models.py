"""Django side of scoring: registered model versions, durable jobs, and compact results."""
from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.db import models

from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.models import Study


class ModelVersion(models.Model):
    """A set of scorer weights the platform knows; exactly one is active at a time."""

    version = models.CharField(max_length=128, unique=True, help_text="scorer.version, stored with every score")
    weights = models.CharField(max_length=500, help_text="name or path given to load_scorer()")
    metadata = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              help_text="a site model: the study whose signed readings trained it (empty: shipped)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self) -> str:
        return self.version + (" (active)" if self.is_active else "")


class StudyModel(models.Model):
    """The model a study scores with, set by a promotion or a rollback. A study without a row uses
    the active model (:attr:`ModelVersion.is_active`)."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    set_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"study {self.study_id} -> {self.model_version_id}"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ScoringJob(models.Model):
    """Scoring of one exam with one model version. The row is the source of truth; the Celery
    message only carries its id, so a lost or repeated message cannot lose or duplicate work."""

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="scoring_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    reason = models.CharField(max_length=32, default="upload", help_text="upload, rescore, retry, demo")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="last time a message was sent")
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["exam", "-created_at"])]

    def __str__(self) -> str:
        return f"job {self.pk} exam {self.exam_id} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ClipScore(models.Model):
    """One zone's score from one job. Per-frame probabilities are one float16 array per clip."""

    job = models.ForeignKey(ScoringJob, on_delete=models.CASCADE, related_name="clip_scores")
    clip = models.ForeignKey(ZoneClip, on_delete=models.CASCADE, related_name="scores")
    zone = models.CharField(max_length=8)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    score = models.PositiveSmallIntegerField()
    probs = models.JSONField(help_text="clip probabilities of scores 0-3")
    findings = models.JSONField(default=dict)
    aggregator = models.CharField(max_length=32)
    frame_count = models.PositiveIntegerField()
    frame_probs_f16 = models.BinaryField(help_text="float16 [T, 4], row-major")
    extra = models.JSONField(default=dict, blank=True, help_text="six-class scale and other per-clip outputs")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "zone"]
        constraints = [models.UniqueConstraint(fields=["job", "clip"], name="one_score_per_clip_per_job")]

    def __str__(self) -> str:
        return f"{self.zone}={self.score} ({self.model_version_id})"

    @property
    def frame_probs(self) -> Any:
        """float32 array [T, 4]."""
        raw = np.frombuffer(bytes(self.frame_probs_f16), dtype=np.float16)
        return raw.reshape(self.frame_count, 4).astype(np.float32)

    @staticmethod
    def pack_frame_probs(probs: Any) -> bytes:
        return np.ascontiguousarray(np.asarray(probs, dtype=np.float16)).tobytes()


class ExamScore(models.Model):
    """Exam-level scores of one job. Missing zones are listed, never counted as 0."""

    job = models.OneToOneField(ScoringJob, on_delete=models.CASCADE, related_name="exam_score")
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="exam_scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    luss = models.PositiveSmallIntegerField(help_text="global LUS score: sum of the present zones' scores")
    max_luss = models.PositiveSmallIntegerField(help_text="3 x the number of protocol zones")
    mean_score = models.FloatField(null=True)
    worst_zone = models.CharField(max_length=8, blank=True)
    worst_score = models.PositiveSmallIntegerField(null=True)
    zones_ge2 = models.PositiveSmallIntegerField()
    coverage = models.FloatField(help_text="present zones / protocol zones")
    missing_zones = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"exam {self.exam_id} LUSS {self.luss}/{self.max_luss}"


class SeverityClass(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    CRITICAL = "critical", "Critical"


class SeverityInput(models.TextChoices):
    AI = "ai", "AI scores"
    RECORD = "record", "Scores of record"


SEVERITY_ORDER = [SeverityClass.MILD, SeverityClass.MODERATE, SeverityClass.SEVERE, SeverityClass.CRITICAL]


class SeverityPrediction(models.Model):
    """Patient severity at an exam, from its zones and the latest clinical record (DSA-MIL + MA-CLR)."""

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="severity_predictions")
    job = models.ForeignKey(ScoringJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="severities")
    model_version = models.CharField(max_length=128)
    label = models.CharField(max_length=16, choices=SeverityClass.choices)
    probs = models.JSONField(help_text="probabilities of mild, moderate, severe, critical")
    severe_probability = models.FloatField(help_text="P(severe or critical)")
    zone_attention = models.JSONField(default=dict, help_text="zone -> attention weight (sums to 1)")
    clinical_record = models.ForeignKey(
        "patients.ClinicalInfo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    input_source = models.CharField(
        max_length=8, choices=SeverityInput.choices, default=SeverityInput.AI,
        help_text="the zone scores it used: the AI's (ai) or the score of record (record)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["exam", "job"], name="one_severity_per_exam_job"),
        ]

    def __str__(self) -> str:
        return f"exam {self.exam_id}: {self.label}"


class SiteTraining(models.Model):
    """A site-model training of one study: a worker job (claimed with a conditional UPDATE) whose
    result is the candidate's CV, the champion's CV on the same folds and the learning curve."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    include_shipped = models.BooleanField(default=False, help_text="pool the shipped training set with the site's")
    champion = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+",
                                 help_text="the study's model when the training was asked for")
    candidate = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"site training {self.pk} of study {self.study_id} ({self.status})"
