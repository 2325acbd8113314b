"""Studies and their members: who may see and change a study's data, and in which role."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from patients.studies.protocols import PROTOCOL_CHOICES


class Role(models.TextChoices):
    STUDY_ADMIN = "study_admin", "Study admin"
    CLINICIAN = "clinician", "Clinician"
    RESEARCHER = "researcher", "Researcher"


class DicomPatientMatch(models.TextChoices):
    HOSPITAL_NUMBER = "hospital_number", "Hospital number"
    CODE = "code", "Patient code (pseudonym)"


#: A zone code such as ``R1`` or ``L6`` standing on its own in the zone tag's value.
DEFAULT_ZONE_PATTERN = r"(?<![A-Za-z0-9])([RL][1-8])(?![0-9])"


def new_study_secret() -> str:
    """256 random bits, hex: the key of the study's pseudonyms and UID remapping."""
    return secrets.token_hex(32)


class Study(models.Model):
    name = models.CharField(max_length=200, unique=True)
    protocol = models.CharField(max_length=16, choices=PROTOCOL_CHOICES, default="12-zone")
    description = models.TextField(blank=True)
    archived = models.BooleanField(default=False, help_text="Archived studies are read-only.")
    # Never shown or exported: whoever holds it can recompute pseudonyms from patient ids.
    secret = models.CharField(max_length=64, default=new_study_secret, editable=False,
                              help_text="Key of export pseudonyms and de-identified DICOM UIDs.")
    deidentify = models.BooleanField(
        default=True, help_text="De-identify DICOM headers and redact burned-in text outside the sector at upload.")
    keep_original = models.BooleanField(
        default=False, help_text="Also keep the untouched uploaded file (clinicians and study admins only).")
    # DICOM receiving (``lus_dicom_scp``, STOW-RS): who may send and how instances map to records.
    dicom_calling_aets = models.JSONField(
        default=list, blank=True,
        help_text="Calling AE titles allowed to send to this study over DICOM; an unknown caller is rejected.")
    dicom_patient_match = models.CharField(
        max_length=16, choices=DicomPatientMatch.choices, default=DicomPatientMatch.HOSPITAL_NUMBER,
        help_text="Which patient field a received instance's PatientID names.")
    dicom_zone_tag = models.CharField(
        max_length=64, default="SeriesDescription",
        help_text="DICOM keyword whose value names the lung zone (SeriesDescription, ImageComments, ...).")
    dicom_zone_pattern = models.CharField(
        max_length=200, default=DEFAULT_ZONE_PATTERN,
        help_text="Regular expression on that value; its first group (or whole match) is the zone code.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    members = models.ManyToManyField(  # type: ignore[var-annotated]
        settings.AUTH_USER_MODEL, through="Membership", related_name="studies"
    )

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("study-detail", args=[self.pk])


class Membership(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="unique_membership")]
        ordering = ["study", "user"]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.study}"
