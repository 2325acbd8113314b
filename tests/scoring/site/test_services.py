"""Site models in the database: promotion switches a study's scores, rollback restores them, other
studies are untouched, too few signed readings are refused, every step is audited."""
from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from lusweb.errors import ServiceError
from patients.audit.models import AuditEvent
from patients.readings.selectors import clip_record
from patients.readings.services import exam_sign, reading_create
from patients.studies.models import Role
from scoring.models import ModelVersion, ScoringJob, SiteTraining
from scoring.selectors import current_clip_score, current_exam_score
from scoring.services import model_version_for, scoring_job_request
from scoring.site.selectors import labelled_clips, site_models
from scoring.site.services import (
    MODEL_ACTIONS,
    site_model_promote,
    site_model_rollback,
    site_training_request,
    study_model_switch,
)
from scoring.study_model import study_model_id
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db


def _scored_exam(study: Any, shipped: ModelVersion) -> Any:
    exam = ExamFactory(patient=PatientFactory(study=study), protocol="blue-6")
    builders.record_scores(exam, {"R1": 1, "R2": 2}, mv=shipped)
    return exam


def test_promote_switches_the_studys_scores_and_rollback_restores_them() -> None:
    shipped = builders.model_version("shipped-1")
    study, other = StudyFactory(protocol="blue-6"), StudyFactory(protocol="blue-6")
    admin = members_by_role(study, "sp-{role}")[Role.STUDY_ADMIN]
    exam, elsewhere = _scored_exam(study, shipped), _scored_exam(other, shipped)
    site = ModelVersion.objects.create(version="site-s1-a", weights="site-s1-a.pt", study=study)
    r1 = exam.clips.get(zone="R1")

    jobs = site_model_promote(study=study, version="site-s1-a", by=admin)
    # The exam has no score of the site model yet: one low-priority rescoring job, of that model.
    assert [(j.exam_id, j.model_version_id, j.reason) for j in jobs] == [(exam.pk, site.pk, "study-rescore")]
    assert study_model_id(study.pk) == site.pk and model_version_for(study=study) == site
    assert scoring_job_request(exam=exam).model_version == site  # a new upload scores with it too
    assert study_model_id(other.pk) == shipped.pk  # another study keeps the shipped model

    builders.record_scores(exam, {"R1": 3, "R2": 3}, mv=site)  # what the rescoring job leaves
    assert current_exam_score(exam=exam).luss == 6  # type: ignore[union-attr]
    assert current_clip_score(clip=r1).model_version == site  # type: ignore[union-attr]
    assert clip_record(clip=r1).ai_score == 3 and clip_record(clip=r1).ai_model == "site-s1-a"

    before = ScoringJob.objects.count()
    assert site_model_rollback(study=study, version="shipped-1", by=admin) == []  # nothing to rescore
    assert ScoringJob.objects.count() == before
    assert current_exam_score(exam=exam).luss == 3  # type: ignore[union-attr]
    assert clip_record(clip=r1).ai_score == 1 and clip_record(clip=r1).ai_model == "shipped-1"
    assert current_exam_score(exam=elsewhere).luss == 3  # type: ignore[union-attr]

    # Promoting it again restores its stored scores at once, without a job.
    assert site_model_promote(study=study, version="site-s1-a", by=admin) == []
    assert clip_record(clip=r1).ai_score == 3
    changes = [e.changes for e in AuditEvent.objects.filter(object_type="study_model").order_by("pk")]
    assert [(c["model"]["old"], c["model"]["new"], c["via"]) for c in changes] == [
        ("shipped-1", "site-s1-a", "promote"), ("site-s1-a", "shipped-1", "rollback"),
        ("shipped-1", "site-s1-a", "promote")]


def test_only_a_study_admin_promotes_only_its_own_site_models() -> None:
    shipped = builders.model_version("shipped-1")
    study, other = StudyFactory(), StudyFactory()
    people = members_by_role(study, "pp-{role}")
    ModelVersion.objects.create(version="site-other", weights="x.pt", study=other)
    ModelVersion.objects.create(version="site-mine", weights="y.pt", study=study)
    admin = people[Role.STUDY_ADMIN]
    with pytest.raises(PermissionDenied):
        site_model_promote(study=study, version="site-mine", by=people[Role.CLINICIAN])
    with pytest.raises(ServiceError, match="'site-other' is not a site model of study"):
        site_model_promote(study=study, version="site-other", by=admin)
    with pytest.raises(ServiceError, match="'shipped-1' is not a site model"):
        site_model_promote(study=study, version=shipped.version, by=admin)
    with pytest.raises(ServiceError, match="neither a shipped model nor a site model"):
        site_model_rollback(study=study, version="site-other", by=admin)
    with pytest.raises(ServiceError, match="already the study's model"):
        site_model_rollback(study=study, version="shipped-1", by=admin)
    assert study_model_id(study.pk) == shipped.pk


def _signed_patients(study: Any, n: int, clinician: Any, *, sign: bool = True, start: int = 0) -> list[Any]:
    exams = []
    for i in range(start, start + n):
        exam = ExamFactory(patient=PatientFactory(study=study, code=f"SP-{i:02d}"), protocol="blue-6")
        for zone, score in (("R1", i % 4), ("L1", (i + 1) % 4)):
            reading_create(clip=builders.fake_clip(exam, zone), by=clinician, score=score)
        if sign:
            exam_sign(exam=exam, by=clinician)
        exams.append(exam)
    return exams


def test_labelled_clips_are_the_signed_clinician_readings() -> None:
    builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "lc-{role}")
    signed = _signed_patients(study, 3, people[Role.CLINICIAN])
    draft = _signed_patients(study, 1, people[Role.CLINICIAN], sign=False, start=3)[0]
    amended = signed[2]
    reading_create(clip=amended.clips.get(zone="R1"), by=people[Role.CLINICIAN], score=3)  # changed after signing
    ai_only = ExamFactory(patient=PatientFactory(study=study), protocol="blue-6")
    builders.record_scores(ai_only, {"R1": 2}, mv=builders.model_version("shipped-1"))
    clips = labelled_clips(study=study)
    assert [(c.patient, c.zone, c.score) for c in clips] == [("SP-00", "R1", 0), ("SP-00", "L1", 1),
                                                             ("SP-01", "R1", 1), ("SP-01", "L1", 2)]
    assert all(c.path.endswith(".png") and c.sha256 for c in clips)
    assert not set(draft.clips.values_list("pk", flat=True)) & {c.clip_id for c in clips}


def test_training_is_refused_with_the_reason_and_queued_once(django_capture_on_commit_callbacks: Any) -> None:
    shipped = builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    people = members_by_role(study, "tr-{role}")
    _signed_patients(study, 9, people[Role.CLINICIAN])
    with pytest.raises(ServiceError, match="9 patients with signed readings \\(18 clips\\); a site model needs at "
                                           "least 10 to cross-validate"):
        site_training_request(study=study, by=people[Role.STUDY_ADMIN])
    assert not SiteTraining.objects.exists()
    _signed_patients(study, 1, people[Role.CLINICIAN], start=9)
    with pytest.raises(PermissionDenied):
        site_training_request(study=study, by=people[Role.CLINICIAN])
    with django_capture_on_commit_callbacks() as sent:
        training = site_training_request(study=study, by=people[Role.STUDY_ADMIN], include_shipped=True)
    assert len(sent) == 1  # dispatched once the request commits
    assert (training.status, training.champion, training.include_shipped) == ("pending", shipped, True)
    with pytest.raises(ServiceError, match=f"training {training.pk} of this study is pending"):
        site_training_request(study=study, by=people[Role.STUDY_ADMIN])
    event = AuditEvent.objects.get(object_type="sitetraining")
    assert event.changes["site_training"] == {"include_shipped": True, "champion": "shipped-1", "clips": 20,
                                              "patients": 10}
    listed = site_models(study=study)
    assert listed["active"]["version"] == "shipped-1" and listed["candidates"] == []
    assert [t["status"] for t in listed["trainings"]] == ["pending"]


def test_a_switch_is_run_by_its_name_and_an_unknown_name_is_refused() -> None:
    shipped = builders.model_version("shipped-1")
    study = StudyFactory(protocol="blue-6")
    admin = members_by_role(study, "sw-{role}")[Role.STUDY_ADMIN]
    exam = _scored_exam(study, shipped)
    site = ModelVersion.objects.create(version="site-s1-b", weights="site-s1-b.pt", study=study)
    assert set(MODEL_ACTIONS) == {"promote", "rollback", "choose"}
    with pytest.raises(ServiceError, match="no site-model action 'retrain'") as refused:
        study_model_switch(study=study, action="retrain", version="site-s1-b", by=admin)
    assert refused.value.status == 404 and study_model_id(study.pk) == shipped.pk  # nothing changed
    jobs = study_model_switch(study=study, action="promote", version="site-s1-b", by=admin)
    assert [(j.exam_id, j.model_version_id) for j in jobs] == [(exam.pk, site.pk)]
    assert study_model_id(study.pk) == site.pk
    assert study_model_switch(study=study, action="rollback", version="shipped-1", by=admin) == []
    assert study_model_id(study.pk) == shipped.pk
