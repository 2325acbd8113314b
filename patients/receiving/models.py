"""The study inbox: received DICOM instances whose patient, exam or zone could not be resolved.

An instance lands here when the study's mapping rules (``Study.dicom_*``) do not name a patient
of the study or a zone of its protocol. The received bytes are kept (``file``) until a clinician
assigns patient, exam and zone on the inbox page; the instance then goes through the same ingest as
an upload, and the file held here is removed. Discarded items keep no file either.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from patients.imaging.models import ZoneClip
from patients.records.models import Exam, Patient
from patients.studies.models import Study


class InboxState(models.TextChoices):
    WAITING = "waiting", "Waiting for assignment"
    ASSIGNED = "assigned", "Assigned"
    DISCARDED = "discarded", "Discarded"


class ReceivedVia(models.TextChoices):
    DIMSE = "dimse", "DICOM C-STORE"
    STOW = "stow", "DICOMweb STOW-RS"


def inbox_upload_to(instance: InboxItem, filename: str) -> str:
    return f"inbox/{instance.study_id}/{instance.sha256[:2]}/{instance.sha256}.dcm"


class InboxItem(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="inbox_items")
    state = models.CharField(max_length=16, choices=InboxState.choices, default=InboxState.WAITING, db_index=True)
    reason = models.TextField(help_text="Why the instance could not be filed on its own")
    file = models.FileField(upload_to=inbox_upload_to, max_length=300, blank=True,
                            help_text="The instance as received, kept until assigned or discarded")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    received_via = models.CharField(max_length=8, choices=ReceivedVia.choices)
    calling_aet = models.CharField(max_length=16, blank=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True, help_text="As received (before remapping)")
    series_instance_uid = models.CharField(max_length=64, blank=True)
    # What the sender said, to help the clinician assign it (clinicians and study admins only).
    patient_identifier = models.CharField(max_length=64, blank=True, help_text="PatientID as received")
    series_description = models.CharField(max_length=200, blank=True)
    image_comments = models.CharField(max_length=200, blank=True)
    zone_hint = models.CharField(max_length=8, blank=True, help_text="The zone the mapping rule read, if any")
    acquired_at = models.DateTimeField(null=True, blank=True)
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="The patient the mapping resolved, if any")
    exam = models.ForeignKey(Exam, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    clip = models.ForeignKey(ZoneClip, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             help_text="The clip made of it once assigned")
    received_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        ordering = ["study", "-received_at"]
        constraints = [
            # The same instance sent twice waits once.
            models.UniqueConstraint(fields=["study", "sha256"], condition=models.Q(state="waiting"),
                                    name="inbox_one_waiting_copy"),
        ]

    def __str__(self) -> str:
        return f"inbox {self.pk} of {self.study}"

    def get_absolute_url(self) -> str:
        return reverse("study-inbox", args=[self.study_id])
