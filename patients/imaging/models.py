"""Zone clips: the stored ultrasound clips of an exam, one per lung zone.

A clip row is created by the upload request as ``pending`` (the upload stored, nothing decoded),
taken by an ingest worker (``processing``), and ends ``ready`` (decoded, de-identified, frames
cached) or ``failed`` (the error, no files). Only ready clips are clips to the rest of the product:
the default manager ``ZoneClip.objects`` (and so ``exam.clips``) holds ready clips only; the
upload's own code and the clip API read ``ZoneClip.all_objects``.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.urls import reverse

from patients.imaging.core.framecache import frames_read
from patients.records.models import Exam


class ClipStatus(models.TextChoices):
    PENDING = "pending", "Checking the file"
    PROCESSING = "processing", "Checking the file (a worker has it)"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


#: States in which a clip occupies its zone while it waits for its check.
IN_FLIGHT = (ClipStatus.PENDING, ClipStatus.PROCESSING)


def _folder(instance: ZoneClip) -> str:
    # A fresh folder per upload (``folder``), so nothing is ever overwritten; clips stored before
    # uploads were checked in the worker live under the sha256 of their upload.
    return instance.folder or f"clips/{instance.sha256[:2]}/{instance.sha256}"


def clip_upload_to(instance: ZoneClip, filename: str) -> str:
    # In de-identifying studies the stored file is the de-identified version.
    stem = "deidentified" if instance.deidentified else "original"
    return f"{_folder(instance)}/{stem}{_suffix(filename)}"


def source_upload_to(instance: ZoneClip, filename: str) -> str:
    return f"{_folder(instance)}/source{_suffix(filename)}"


def frames_upload_to(instance: ZoneClip, filename: str) -> str:
    return f"{_folder(instance)}/frames.npz"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    suffix = filename[dot:].lower() if dot > 0 else ""
    return suffix if len(suffix) <= 6 and suffix[1:].isalnum() else ""


class ReadyClipManager(models.Manager["ZoneClip"]):
    """Clips that passed their check: what scoring, readings, pages and exports see."""

    def get_queryset(self) -> models.QuerySet[ZoneClip]:
        return super().get_queryset().filter(status=ClipStatus.READY)


class ZoneClip(models.Model):
    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="clips")
    zone = models.CharField(max_length=8)
    status = models.CharField(max_length=16, choices=ClipStatus.choices, default=ClipStatus.READY, db_index=True)
    error = models.TextField(blank=True, help_text="Why the file was refused (failed clips), as a 400 would say it")
    error_code = models.CharField(max_length=64, blank=True)
    folder = models.CharField(max_length=120, blank=True, help_text="Storage folder of this upload's files")
    file = models.FileField(upload_to=clip_upload_to, max_length=300, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    format = models.CharField(max_length=16)
    codec = models.CharField(max_length=64, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model_name = models.CharField(max_length=128, blank=True)
    transducer = models.CharField(max_length=128, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    frames = models.FileField(upload_to=frames_upload_to, max_length=300, blank=True, help_text="Decoded grey frames")
    deidentified = models.BooleanField(
        default=False, help_text="file is the de-identified version (DICOM) and the frames are redacted")
    source = models.FileField(
        upload_to=source_upload_to, max_length=300, blank=True,
        help_text="The untouched upload, kept only when the study keeps originals of de-identified clips")
    replace = models.BooleanField(default=False, help_text="when ready, replaces the zone's ready clip")
    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="when its check was last sent to the workers")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="when a worker took it")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="when it became ready or failed")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReadyClipManager()
    all_objects = models.Manager()

    class Meta:
        # Django's base manager (related-object access, deletion) stays the plain one: it sees every state.
        constraints = [
            # A zone holds one clip, and at most one upload waiting for its check; failed uploads
            # hold nothing, so the zone is free again.
            models.UniqueConstraint(fields=["exam", "zone"], condition=Q(status="ready"), name="one_clip_per_zone"),
            models.UniqueConstraint(fields=["exam", "zone"], condition=Q(status__in=["pending", "processing"]),
                                    name="one_upload_in_flight_per_zone"),
            models.CheckConstraint(
                condition=~Q(status="ready") | Q(frame_count__isnull=False, rows__isnull=False, columns__isnull=False),
                name="ready_clip_is_decoded"),
        ]
        ordering = ["exam", "zone"]

    def __str__(self) -> str:
        return f"{self.exam} {self.zone}"

    def get_absolute_url(self) -> str:
        return reverse("clip-detail", args=[self.pk])

    @property
    def is_ready(self) -> bool:
        return self.status == ClipStatus.READY

    @property
    def warnings(self) -> list[str]:
        """What a reader should know about a clip that was accepted: a very short cine (fewer than
        ``LUSWEB_SHORT_CLIP_FRAMES`` frames, but more than one: a single frame is a still image)."""
        short = int(settings.SHORT_CLIP_FRAMES)
        if self.frame_count is not None and 1 < self.frame_count < short:
            return [f"very short clip: {self.frame_count} frames (fewer than {short}); "
                    "its score rests on little of the breathing cycle"]
        return []

    @property
    def received(self) -> FieldFile:
        """The field holding the upload as received: ``source`` in de-identifying studies (until
        the check, or for good with ``keep_original``), otherwise ``file`` (kept byte for byte)."""
        return self.source if self.deidentified else self.file

    def load_frames(self) -> Any:
        """The cached decoded frames, uint8 [T, H, W]."""
        with self.frames.open("rb") as fh:
            return frames_read(fh)
