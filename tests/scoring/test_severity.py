"""Severity from the score of record: the pipeline stores the AI's readings and each zone's
severity features; a clinician's reading sends a refresh on commit (cpu queue) that recomputes the
severity from the stored features with the reading's one-hot score and findings - no CNN."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from patients.imaging.ingest import clip_ingest
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import reading_create
from patients.studies.models import Membership, Role
from scoring import pipeline, runtime, services, severity, tasks
from scoring.core.labels import FINDINGS
from scoring.core.severity.features import with_reading
from scoring.models import ClipScore, SeverityPrediction
from tests.factories import ExamFactory, UserFactory
from tests.patients.conftest import png_bytes

pytestmark = pytest.mark.django_db


def test_with_reading_replaces_the_read_out_only() -> None:
    vectors = np.arange(2 * 14, dtype=np.float32).reshape(2, 14) / 100
    out = with_reading(vectors, 2, {"b_lines": True, "effusion": False})
    assert out[:, :4].tolist() == [[0, 0, 1, 0]] * 2
    b, e, a = 4 + FINDINGS.index("b_lines"), 4 + FINDINGS.index("effusion"), 4 + FINDINGS.index("a_lines")
    assert (out[:, b] == 1).all() and (out[:, e] == 0).all()
    assert np.array_equal(out[:, a], vectors[:, a])  # a finding the reader did not state keeps the AI's
    assert np.array_equal(out[:, 10:], vectors[:, 10:]) and not np.shares_memory(out, vectors)


@pytest.fixture
def scored(django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    """A two-zone exam scored by the real default scorer (two small images)."""
    version = services.model_version_register(activate=True)
    exam = ExamFactory()
    user = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    with django_capture_on_commit_callbacks(execute=False):
        for seed, zone in ((1, "R1"), (2, "L1")):
            clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(seed)), zone=zone, by=user, filename=f"{zone}.png")
        job = services.scoring_job_request(exam=exam, reason="test", model_version=version)
    assert pipeline.scoring_job_execute(job_id=job.pk, worker="w") == "succeeded"
    return {"exam": exam, "user": user, "job": job, "version": version}


def test_the_pipeline_stores_ai_readings_and_severity_features(scored: dict[str, Any]) -> None:
    job, version = scored["job"], scored["version"]
    for cs in ClipScore.objects.filter(job=job):
        ai = ZoneReading.objects.get(clip=cs.clip, source=ReadingSource.AI)
        assert (ai.rater_name, ai.score, ai.rater) == (f"model:{version.version}", cs.score, None)
        assert ai.confidence == pytest.approx(cs.probs[cs.score], abs=1e-3)
        assert ai.findings == {k: v > 0.5 for k, v in cs.findings.items()}
        sets = severity.unpack_features(cs.extra["severity_features"])
        assert sets is not None and sets.shape[0] == 5 and sets.shape[1] > 10  # 5 sampled sets of [4 + 6 + D]
        assert sets[0, :4] == pytest.approx(cs.probs, abs=1e-3)  # the AI's read-out, stored as float16
    prediction = SeverityPrediction.objects.get(job=job)
    assert prediction.input_source == "ai"


def test_a_clinician_reading_refreshes_the_severity_from_the_record_without_the_cnn(
        scored: dict[str, Any], monkeypatch: pytest.MonkeyPatch, settings: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    exam, user = scored["exam"], scored["user"]
    r1 = exam.clips.get(zone="R1")
    ai = ZoneReading.objects.get(clip=r1, source=ReadingSource.AI).score
    read = (ai + 2) % 4
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.severity_refresh, "apply_async",
                        lambda args=None, kwargs=None, **options: sent.append({"args": list(args), **options}))
    settings.SEVERITY_ON_READING = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reading_create(clip=r1, by=user, score=read, findings={"consolidation": True})
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sent == [{"args": [exam.pk], "queue": "cpu"}]

    def no_cnn(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the refresh must not run the CNN")

    monkeypatch.setattr(runtime, "get_scorer", no_cnn)
    model = severity.severity_model()
    assert model is not None
    seen: list[dict[str, np.ndarray]] = []
    predict = model.predict_exam
    monkeypatch.setattr(model, "predict_exam", lambda features, clinical: seen.append(features) or predict(
        features, clinical))
    assert tasks.severity_refresh(exam.pk) == "refreshed"  # what the worker runs
    mapping = severity.zone_mapping(exam.protocol, model.trained.zones)
    stored = {cs.zone: severity.unpack_features(cs.extra["severity_features"])
              for cs in ClipScore.objects.filter(job=scored["job"])}
    assert len(seen) == 5
    for i, features in enumerate(seen):
        r1_vector = features[mapping["R1"]]
        assert r1_vector[:4].tolist() == np.eye(4)[read].tolist()
        assert r1_vector[4 + FINDINGS.index("consolidation")] == 1.0
        assert np.array_equal(r1_vector[10:], stored["R1"][i, 10:])  # the CNN's pooled features, unchanged
        assert np.array_equal(features[mapping["L1"]], stored["L1"][i])  # a zone on the AI's reading
    prediction = SeverityPrediction.objects.get(job=scored["job"])  # the job's prediction, replaced
    assert prediction.input_source == "record"


def test_no_refresh_is_sent_for_an_exam_the_ai_has_not_scored(monkeypatch: pytest.MonkeyPatch, settings: Any,
                                                             django_capture_on_commit_callbacks: Any) -> None:
    exam = ExamFactory()
    user = UserFactory()
    Membership.objects.create(study=exam.patient.study, user=user, role=Role.CLINICIAN)
    clip = clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(3)), zone="R1", by=user, filename="r1.png").clip
    sent: list[Any] = []
    monkeypatch.setattr(tasks.severity_refresh, "apply_async", lambda *a, **k: sent.append(a))
    settings.SEVERITY_ON_READING = True
    with django_capture_on_commit_callbacks(execute=True):
        reading_create(clip=clip, by=user, score=1)
    assert sent == [] and tasks.severity_refresh(exam.pk) == "skipped"
