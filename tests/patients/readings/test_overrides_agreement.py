"""Clinician overrides (latest wins, history kept, shown, exported) and AI-vs-rater agreement."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from lusweb.errors import ServiceError
from patients.imaging.models import ZoneClip
from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.selectors import clinician_history
from patients.readings.services import score_override_create
from patients.research import agreement
from patients.studies.models import Role
from scoring.models import ClipScore, ExamScore, ModelVersion, ScoringJob
from tests.factories import ExamFactory, PatientFactory, StudyFactory, ai_readings, members_by_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "agr-{role}")
    exam = ExamFactory(patient=PatientFactory(study=study))
    clips = [ZoneClip.objects.create(exam=exam, zone=z, file=f"t/{z}", frames=f"t/{z}.npz", sha256=z, size_bytes=1,
                                     format="png", frame_count=1, rows=1, columns=1)
             for z in ("R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6")]
    model = ModelVersion.objects.create(version="m-1", weights="x", is_active=True)
    job = ScoringJob.objects.create(exam=exam, model_version=model, status="succeeded")
    ai = [0, 1, 2, 3, 0, 1, 2, 3, 1, 1, 2, 0]
    for clip, score in zip(clips, ai, strict=True):
        ClipScore.objects.create(job=job, clip=clip, zone=clip.zone, model_version=model, score=score,
                                 probs=[0.25] * 4, findings={}, aggregator="max", frame_count=1,
                                 frame_probs_f16=b"\x00" * 8)
    ai_readings(job)
    ExamScore.objects.create(job=job, exam=exam, model_version=model, luss=sum(ai), max_luss=36, mean_score=1.3,
                             worst_zone="R4", worst_score=3, zones_ge2=5, coverage=1.0, missing_zones=[])
    expert = [0, 1, 2, 2, 1, 1, 3, 3, 0, 1, 2]  # the last clip has no expert score
    for clip, score in zip(clips, expert, strict=False):
        ZoneReading.objects.create(clip=clip, source=ReadingSource.IMPORTED, rater_name="expert", score=score)
    return {"study": study, "users": users, "exam": exam, "clips": clips, "ai": ai, "expert": expert}


def test_override_latest_wins_history_kept(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    clip = world["clips"][0]
    api = api_for(world["users"][Role.CLINICIAN])
    url = f"/api/v1/clips/{clip.pk}/override/"
    assert api.post(url, {"score": 2, "reason": "subpleural consolidation"}, format="json").status_code == 201
    assert api.post(url, {"score": 3, "reason": "on review: white lung"}, format="json").status_code == 201
    history = api.get(url).json()
    assert [(h["score"], h["by"]) for h in history] == [(3, "agr-clinician"), (2, "agr-clinician")]
    assert clinician_history(clip=clip).first().score == 3
    assert ZoneReading.objects.filter(clip=clip, source=ReadingSource.CLINICIAN).count() == 2


@pytest.mark.parametrize("payload, message", [
    ({"score": 4, "reason": "x"}, "score"),
    ({"score": "two", "reason": "x"}, "score"),
    ({"score": 1}, "reason"),
    ({"score": 1, "reason": "   "}, "reason"),
])
def test_bad_overrides_answer_400(world: dict[str, Any], api_for: Callable[..., APIClient],
                                  payload: dict[str, Any], message: str) -> None:
    response = api_for(world["users"][Role.CLINICIAN]).post(f"/api/v1/clips/{world['clips'][0].pk}/override/",
                                                             payload, format="json")
    assert response.status_code == 400 and message in response.json()["error"]
    assert not ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).exists()


def test_service_validates_overrides(world: dict[str, Any]) -> None:
    clip, clinician = world["clips"][0], world["users"][Role.CLINICIAN]
    with pytest.raises(ServiceError, match="outside 0-3"):
        score_override_create(clip=clip, score=7, reason="x", by=clinician)
    with pytest.raises(ServiceError, match="needs a reason"):
        score_override_create(clip=clip, score=1, reason="", by=clinician)


def test_researchers_cannot_override(world: dict[str, Any], api_for: Callable[..., APIClient], client: Any) -> None:
    clip = world["clips"][0]
    api = api_for(world["users"][Role.RESEARCHER])
    assert api.post(f"/api/v1/clips/{clip.pk}/override/", {"score": 1, "reason": "x"}, format="json").status_code == 403
    client.force_login(world["users"][Role.RESEARCHER])
    assert client.post(f"/clips/{clip.pk}/override/", {"score": 1, "reason": "x"}).status_code == 403
    assert not ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).exists()


def test_exam_page_shows_override_next_to_ai(world: dict[str, Any], client: Any) -> None:
    clip = world["clips"][1]
    client.force_login(world["users"][Role.STUDY_ADMIN])
    response = client.post(f"/clips/{clip.pk}/override/", {"score": "3", "reason": "missed B-lines"})
    assert response.status_code == 302
    page = client.get(f"/exams/{world['exam'].pk}/").content.decode()
    row = page[page.index('<tr data-zone="R2"'):]
    row = row[: row.index("</tr>")]
    ai = row[row.index('<td class="ai">'):]
    assert 'title="AI' in ai and ">1</span>" in ai  # the AI score ...
    record = row[row.index('<td class="record"'):row.index('<td class="ai">')]
    assert 'data-score="3" data-source="clinician"' in record and "read by agr-study_admin" in record  # ... the record
    assert "“missed B-lines”" in row  # ... and the reason, for those who may read free text


def test_agreement_matches_a_direct_computation(world: dict[str, Any], api_for: Callable[..., APIClient],
                                                client: Any) -> None:
    study = world["study"]
    ai, expert = world["ai"][:11], world["expert"]
    data = api_for(world["users"][Role.RESEARCHER]).get(f"/api/v1/studies/{study.pk}/agreement/",
                                                         {"rater": "expert"}).json()
    assert (data["rater"], data["model"], data["n"]) == ("expert", "m-1", 11)
    assert data["raters"] == ["expert", "clinician-override"] and data["models"] == ["m-1"]
    assert data["accuracy"] == pytest.approx(np.mean(np.array(ai) == np.array(expert)))
    assert data["within1"] == pytest.approx(np.mean(np.abs(np.array(ai) - np.array(expert)) <= 1))
    assert data["qwk"] == pytest.approx(cohen_kappa_score(expert, ai, weights="quadratic"))
    assert data["confusion"] == confusion_matrix(expert, ai, labels=[0, 1, 2, 3]).tolist()
    client.force_login(world["users"][Role.RESEARCHER])
    page = client.get(f"/studies/{study.pk}/agreement/", {"rater": "expert", "model": "m-1"})
    assert page.status_code == 200
    assert f'data-qwk="{data["qwk"]}"'.encode() in page.content
    assert f'<td id="agreement-accuracy">{data["accuracy"]:.3f}</td>'.encode() in page.content


def test_overrides_are_a_rater(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    clinician = world["users"][Role.CLINICIAN]
    for clip, score in zip(world["clips"][:3], (0, 2, 2), strict=True):
        score_override_create(clip=clip, score=3, reason="first", by=clinician)
        score_override_create(clip=clip, score=score, reason="second", by=clinician)
    data = api_for(clinician).get(f"/api/v1/studies/{world['study'].pk}/agreement/",
                                  {"rater": "clinician-override"}).json()
    assert data["n"] == 3 and data["accuracy"] == pytest.approx(2 / 3)  # AI 0,1,2 vs overrides 0,2,2


@pytest.mark.parametrize("params, message", [
    ({"rater": "nobody"}, "rater='nobody' has no scores in this study; raters: expert, clinician-override"),
    ({"model": "m-9"}, "model='m-9' has not scored this study; models: m-1"),
])
def test_agreement_bad_input(world: dict[str, Any], api_for: Callable[..., APIClient], client: Any,
                             params: dict[str, str], message: str) -> None:
    response = api_for(world["users"][Role.RESEARCHER]).get(f"/api/v1/studies/{world['study'].pk}/agreement/",
                                                            params)
    assert response.status_code == 400 and response.json()["error"] == message
    client.force_login(world["users"][Role.RESEARCHER])
    page = client.get(f"/studies/{world['study'].pk}/agreement/", params)
    assert page.status_code == 400 and b"has no scores" in page.content or b"has not scored" in page.content


def test_agreement_maths_edge_cases() -> None:
    empty = agreement.agreement([], [])
    assert (empty.n, empty.accuracy, empty.qwk) == (0, None, None) and empty.confusion == [[0] * 4] * 4
    perfect = agreement.agreement([0, 1, 2, 3], [0, 1, 2, 3])
    assert (perfect.accuracy, perfect.within1, perfect.qwk) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="outside 0-3"):
        agreement.agreement([4], [0])
    with pytest.raises(ValueError, match="rater scores"):
        agreement.agreement([1, 2], [1])
