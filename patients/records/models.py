"""Clinical records: patients, their exams, clinical information and blood gases."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from patients.studies.models import Study
from patients.studies.protocols import PROTOCOL_CHOICES, get_protocol


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
    study_instance_uid = models.CharField(
        max_length=64, blank=True,
        help_text="The DICOM Study Instance UID this exam was received as (remapped in de-identifying studies).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "acquired_at"]
        indexes = [models.Index(fields=["patient", "acquired_at"])]
        constraints = [
            # Instances of one DICOM study sent over concurrent associations make one exam.
            models.UniqueConstraint(fields=["patient", "study_instance_uid"], condition=~models.Q(study_instance_uid=""),
                                    name="one_exam_per_dicom_study"),
        ]

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

    @property
    def other_protocol(self) -> bool:
        """The exam's protocol is not its study's default (chosen explicitly; marked on pages)."""
        return self.protocol != self.patient.study.protocol

    def missing_zones(self) -> list[str]:
        """Zones of the protocol with no clip yet, in anatomical order."""
        present = set(self.clips.values_list("zone", flat=True))
        return [code for code in self.zone_codes if code not in present]


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
