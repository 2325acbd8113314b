"""Zone clips: the stored ultrasound clips of an exam, one per lung zone."""
from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.db import models
from django.urls import reverse

from patients.records.models import Exam


def clip_upload_to(instance: ZoneClip, filename: str) -> str:
    # Content-addressed path: the sha256 of the upload names the folder, so nothing is ever
    # overwritten. In de-identifying studies the stored file is the de-identified version.
    stem = "deidentified" if instance.deidentified else "original"
    return f"clips/{instance.sha256[:2]}/{instance.sha256}/{stem}{_suffix(filename)}"


def source_upload_to(instance: ZoneClip, filename: str) -> str:
    return f"clips/{instance.sha256[:2]}/{instance.sha256}/source{_suffix(filename)}"


def frames_upload_to(instance: ZoneClip, filename: str) -> str:
    return f"clips/{instance.sha256[:2]}/{instance.sha256}/frames.npz"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    suffix = filename[dot:].lower() if dot > 0 else ""
    return suffix if len(suffix) <= 6 and suffix[1:].isalnum() else ""


class ZoneClip(models.Model):
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="clips")
    zone = models.CharField(max_length=8)
    file = models.FileField(upload_to=clip_upload_to, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    format = models.CharField(max_length=16)
    codec = models.CharField(max_length=64, blank=True)
    frame_count = models.PositiveIntegerField()
    fps = models.FloatField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    manufacturer = models.CharField(max_length=128, blank=True)
    model_name = models.CharField(max_length=128, blank=True)
    transducer = models.CharField(max_length=128, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    frames = models.FileField(upload_to=frames_upload_to, max_length=300, help_text="Decoded grey frames")
    deidentified = models.BooleanField(
        default=False, help_text="file is the de-identified version (DICOM) and the frames are redacted")
    source = models.FileField(
        upload_to=source_upload_to, max_length=300, blank=True,
        help_text="The untouched upload, kept only when the study keeps originals of de-identified clips")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exam", "zone"], name="one_clip_per_zone")]
        ordering = ["exam", "zone"]

    def __str__(self) -> str:
        return f"{self.exam} {self.zone}"

    def get_absolute_url(self) -> str:
        return reverse("clip-detail", args=[self.pk])

    def load_frames(self) -> Any:
        """The cached decoded frames, uint8 [T, H, W]."""
        with self.frames.open("rb") as fh, np.load(fh) as data:
            return data["frames"]
