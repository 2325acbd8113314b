"""factory_boy factories for the data model."""
from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from patients.readings.models import ReadingSource, ZoneReading
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.studies.models import Membership, Role, Study
from scoring.models import ClipScore, ModelVersion, ScoringJob
from scoring.pipeline import ai_reading_of


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")
    protocol = "12-zone"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    study = factory.SubFactory(StudyFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.CLINICIAN


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    study = factory.SubFactory(StudyFactory)
    code = factory.Sequence(lambda n: f"P{n:04d}")
    sex = "F"
    birth_year = 1960
    admission_date = dt.date(2026, 3, 1)
    name = factory.Sequence(lambda n: f"Jane Doe {n}")
    hospital_number = factory.Sequence(lambda n: f"H{n:07d}")


class ExamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exam

    patient = factory.SubFactory(PatientFactory)
    acquired_at = factory.LazyFunction(timezone.now)
    protocol = factory.LazyAttribute(lambda o: o.patient.study.protocol)


class ClinicalInfoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClinicalInfo

    patient = factory.SubFactory(PatientFactory)
    recorded_at = factory.LazyFunction(timezone.now)
    age = 66
    spo2 = 93.0


class BloodGasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BloodGas

    patient = factory.SubFactory(PatientFactory)
    sampled_at = factory.LazyFunction(timezone.now)
    paco2_mmhg = 40.0
    pao2_mmhg = 80.0
    fio2 = 0.21


def members_by_role(study: Study, username: str) -> dict[str, Any]:
    """One member of ``study`` per role, keyed by role; ``username`` formats ``{role}`` into a name."""
    users = {role: UserFactory(username=username.format(role=role)) for role in Role.values}
    for role, user in users.items():
        Membership.objects.create(study=study, user=user, role=role)
    return users


class ByRole:
    """The members of a test study by role, for builders that keep them in ``users`` (keyed by role)."""

    users: dict[str, Any]

    @property
    def clinician(self) -> Any:
        return self.users[Role.CLINICIAN]

    @property
    def admin(self) -> Any:
        return self.users[Role.STUDY_ADMIN]

    @property
    def researcher(self) -> Any:
        return self.users[Role.RESEARCHER]


class ZoneReadingFactory(factory.django.DjangoModelFactory):
    """A clinician's reading of a clip (pass ``clip``; ``rater`` defaults to a new user)."""

    class Meta:
        model = ZoneReading

    source = ReadingSource.CLINICIAN
    rater = factory.SubFactory(UserFactory)
    rater_name = factory.LazyAttribute(lambda o: o.rater.username if o.rater else "")
    score = 1
    findings = factory.LazyFunction(dict)


def ai_readings(job: Any) -> list[Any]:
    """The AI's readings of a finished job's clip scores, as the pipeline stores them."""
    return [r for cs in ClipScore.objects.filter(job=job).select_related("clip", "model_version")
            if (r := ai_reading_of(cs)) is not None]


def _test_model() -> ModelVersion:
    mv, _ = ModelVersion.objects.get_or_create(version="test-model-1", defaults={"weights": "default", "is_active": True})
    return mv


class ClipScoreFactory(factory.django.DjangoModelFactory):
    """A stored clip score of ``clip`` (pass it) with the given ``probs`` (its score is their
    arg-max) and ``extra`` (``{"domain": {...}, "severity_features": ...}``), in a succeeded job of
    the active test model, with the AI's reading of the zone beside it as the pipeline stores it
    (``ai_reading=False``: without)."""

    class Meta:
        model = ClipScore
        skip_postgeneration_save = True

    model_version = factory.LazyFunction(_test_model)
    job = factory.LazyAttribute(lambda o: ScoringJob.objects.create(
        exam=o.clip.exam, model_version=o.model_version, status="succeeded", progress=1.0))
    zone = factory.LazyAttribute(lambda o: o.clip.zone)
    probs = factory.LazyFunction(lambda: [0.25, 0.25, 0.25, 0.25])
    score = factory.LazyAttribute(lambda o: max(range(len(o.probs)), key=lambda i: o.probs[i]))
    findings = factory.LazyFunction(dict)
    aggregator = "mean"
    frame_count = 1
    frame_probs_f16 = factory.LazyAttribute(lambda o: ClipScore.pack_frame_probs([o.probs]))
    extra = factory.LazyFunction(dict)

    @factory.post_generation
    def ai_reading(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted is not False:
            ai_reading_of(self)  # type: ignore[arg-type]

