"""Studies, members, patients, exams, zone clips, clinical information and blood gases."""
from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from patients.protocols import PROTOCOL_CHOICES, get_protocol

KPA_TO_MMHG = 7.50062


class Role(models.TextChoices):
    STUDY_ADMIN = "study_admin", "Study admin"
    CLINICIAN = "clinician", "Clinician"
    RESEARCHER = "researcher", "Researcher"


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


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Patient(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="patients")
    code = models.CharField(max_length=64, help_text="Pseudonym, unique within the study.")
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    admission_date = models.DateField(null=True, blank=True)
    # Identifying fields: never shown to researchers.
    name = models.CharField(max_length=200, blank=True)
    hospital_number = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    IDENTIFYING_FIELDS = ("name", "hospital_number")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="unique_patient_code")]
        ordering = ["study", "code"]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("patient-detail", args=[self.pk])


class Exam(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="exams")
    acquired_at = models.DateTimeField()
    protocol = models.CharField(max_length=16, choices=PROTOCOL_CHOICES)
    device = models.CharField(max_length=200, blank=True, help_text="Ultrasound system")
    probe = models.CharField(max_length=200, blank=True)
    operator = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "acquired_at"]
        indexes = [models.Index(fields=["patient", "acquired_at"])]

    def __str__(self) -> str:
        return f"{self.patient.code} {self.acquired_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self) -> str:
        return reverse("exam-detail", args=[self.pk])

    @property
    def study(self) -> Study:
        return self.patient.study

    @property
    def zone_codes(self) -> tuple[str, ...]:
        return get_protocol(self.protocol).codes

    def missing_zones(self) -> list[str]:
        """Zones of the protocol with no clip yet, in anatomical order."""
        present = set(self.clips.values_list("zone", flat=True))
        return [code for code in self.zone_codes if code not in present]


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
        import numpy as np

        with self.frames.open("rb") as fh, np.load(fh) as data:
            return data["frames"]


class OxygenSupport(models.TextChoices):
    NONE = "none", "None (room air)"
    NASAL = "nasal_cannula", "Nasal cannula"
    MASK = "mask", "Face mask"
    HFNC = "hfnc", "High-flow nasal cannula"
    NIV = "niv", "Non-invasive ventilation"
    INVASIVE = "invasive", "Invasive ventilation"
    ECMO = "ecmo", "ECMO"


class ClinicalInfo(models.Model):
    """A clinical record at a point in time; every item may be unknown (null)."""

    COMORBIDITIES = (
        "cardiovascular", "respiratory", "digestive", "nervous", "diabetes", "hypertension",
        "immunosuppression",
    )
    SYMPTOMS = (
        "fever", "cough", "dyspnea", "sore_throat", "diarrhea", "headache", "fatigue", "loss_of_smell_taste",
    )

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="clinical_records")
    recorded_at = models.DateTimeField()
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    cardiovascular = models.BooleanField(null=True, blank=True)
    respiratory = models.BooleanField(null=True, blank=True)
    digestive = models.BooleanField(null=True, blank=True)
    nervous = models.BooleanField(null=True, blank=True)
    diabetes = models.BooleanField(null=True, blank=True)
    hypertension = models.BooleanField(null=True, blank=True)
    immunosuppression = models.BooleanField(null=True, blank=True)
    fever = models.BooleanField(null=True, blank=True)
    cough = models.BooleanField(null=True, blank=True)
    dyspnea = models.BooleanField(null=True, blank=True)
    sore_throat = models.BooleanField(null=True, blank=True)
    diarrhea = models.BooleanField(null=True, blank=True)
    headache = models.BooleanField(null=True, blank=True)
    fatigue = models.BooleanField(null=True, blank=True)
    loss_of_smell_taste = models.BooleanField(null=True, blank=True)
    oxygen_support = models.CharField(max_length=16, choices=OxygenSupport.choices, blank=True)
    spo2 = models.FloatField(null=True, blank=True, help_text="%")
    respiratory_rate = models.FloatField(null=True, blank=True, help_text="breaths/min")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "recorded_at"]
        verbose_name = "clinical record"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(spo2__isnull=True) | models.Q(spo2__gte=0, spo2__lte=100),
                name="clinical_spo2_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient.code} clinical {self.recorded_at:%Y-%m-%d}"


class GasUnit(models.TextChoices):
    MMHG = "mmHg", "mmHg"
    KPA = "kPa", "kPa"


class BloodGas(models.Model):
    """Arterial blood gas; pressures stored in mmHg whatever unit was entered."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="blood_gases")
    sampled_at = models.DateTimeField()
    ph = models.FloatField(null=True, blank=True)
    paco2_mmhg = models.FloatField(null=True, blank=True)
    pao2_mmhg = models.FloatField(null=True, blank=True)
    hco3 = models.FloatField(null=True, blank=True, help_text="mmol/L")
    lactate = models.FloatField(null=True, blank=True, help_text="mmol/L")
    sao2 = models.FloatField(null=True, blank=True, help_text="%")
    fio2 = models.FloatField(null=True, blank=True, help_text="fraction 0.21-1.0")
    unit_entered = models.CharField(max_length=4, choices=GasUnit.choices, default=GasUnit.MMHG)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "sampled_at"]
        verbose_name = "blood gas"
        indexes = [models.Index(fields=["patient", "sampled_at"])]

    def __str__(self) -> str:
        return f"{self.patient.code} gas {self.sampled_at:%Y-%m-%d %H:%M}"

    @property
    def pf_ratio(self) -> float | None:
        """PaO2/FiO2 in mmHg, the ARDS oxygenation index."""
        if self.pao2_mmhg is None or not self.fio2:
            return None
        return self.pao2_mmhg / self.fio2


# --- audit, annotations, overrides ------------------------------------------------------------


class AuditAction(models.TextChoices):
    VIEW_IDENTIFYING = "view_identifying", "Viewed identifying data"
    EXPORT = "export", "Exported"
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    OVERRIDE = "override", "Overrode a score"
    LOGIN = "login", "Logged in"


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written only by ``patients.audit``.

    ``study`` and ``actor`` survive as names (``study_name``, ``actor_username``) when the
    rows they point to are deleted, so the trail outlives what it describes.
    """

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
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
