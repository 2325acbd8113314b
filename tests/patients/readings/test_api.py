"""Readings API: a clip's readings (list, create), record, override and adjudication; the study's
worklist and disagreements; what researchers and blind readers get."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import blind_read_start, reading_create
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def test_post_a_reading_then_list_newest_first(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    clip = ward.clips["R1"]
    api = api_for(ward.clinician)
    url = f"/api/v1/clips/{clip.pk}/readings/"
    res = api.post(url, {"score": 1, "findings": {"b_lines": True, "a_lines": False}, "comment": "separate B-lines"},
                   format="json")
    assert res.status_code == 201, res.content
    body = res.json()
    assert {k: body[k] for k in ("clip", "zone", "source", "rater", "score", "findings", "comment", "blind")} == {
        "clip": clip.pk, "zone": "R1", "source": "clinician", "rater": "rw-clinician", "score": 1,
        "findings": {"a_lines": False, "b_lines": True}, "comment": "separate B-lines", "blind": False}
    listed = api.get(url).json()
    assert [(r["source"], r["rater"], r["score"]) for r in listed] == [("clinician", "rw-clinician", 1),
                                                                      ("ai", "model:test-model-1", 3)]
    assert listed[1]["confidence"] == 0.7 and "created_at" in listed[0]
    record = api.get(f"/api/v1/clips/{clip.pk}/record/").json()
    assert (record["score"], record["source"], record["ai_score"], record["reader"]) == (1, "clinician", 3,
                                                                                          "rw-clinician")
    # Researchers: the day instead of the date, and no comment (free text).
    researcher = api_for(ward.researcher).get(url).json()
    assert "created_at" not in researcher[0] and "comment" not in researcher[0]
    assert isinstance(researcher[0]["day"], float) and researcher[0]["score"] == 1


@pytest.mark.parametrize("payload, status, message", [
    ({"score": 1, "findings": {"b_lines": True, "kerley_b": True}}, 400, "unknown findings: kerley_b"),
    ({"score": 5}, 400, "score"),
    ({"findings": {"b_lines": True}}, 400, "score"),
])
def test_bad_readings_answer_400(ward: Ward, api_for: Callable[..., APIClient], payload: dict[str, Any],
                                 status: int, message: str) -> None:
    res = api_for(ward.clinician).post(f"/api/v1/clips/{ward.clips['R1'].pk}/readings/", payload, format="json")
    assert res.status_code == status and message in res.json()["error"]
    assert not ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).exists()


def test_reading_rights(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    url = f"/api/v1/clips/{ward.clips['R1'].pk}/readings/"
    assert api_for(ward.researcher).post(url, {"score": 1}, format="json").status_code == 403
    assert api_for(ward.users["outsider"]).post(url, {"score": 1}, format="json").status_code == 404
    assert api_for(ward.users["outsider"]).get(url).status_code == 404
    assert APIClient().get(url).status_code == 401


def test_the_override_endpoint_creates_a_reading(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    clip = ward.clips["R2"]
    res = api_for(ward.clinician).post(f"/api/v1/clips/{clip.pk}/override/", {"score": 3, "reason": "white lung"},
                                       format="json")
    assert res.status_code == 201
    assert set(res.json()) >= {"id", "clip", "score", "reason", "by", "at"}
    reading = ZoneReading.objects.get(source=ReadingSource.CLINICIAN)
    assert (reading.clip, reading.score, reading.comment, reading.rater) == (clip, 3, "white lung", ward.clinician)


def test_adjudication_api(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    clip = ward.clips["L2"]
    url = f"/api/v1/clips/{clip.pk}/adjudicate/"
    reading_create(clip=clip, by=ward.clinician, score=3)
    no_split = api_for(ward.admin).post(url, {"score": 2}, format="json")
    assert no_split.status_code == 400 and no_split.json()["code"] == "no_disagreement"
    reading_create(clip=clip, by=ward.users["second"], score=1)
    assert api_for(ward.clinician).post(url, {"score": 2}, format="json").status_code == 403
    disagreements = api_for(ward.researcher).get(f"/api/v1/studies/{ward.study.pk}/disagreements/").json()
    assert [(d["zone"], d["readings"], d["adjudicated"]) for d in disagreements["zones"]] == [
        ("L2", {"rw-clinician": 3, "rw-second": 1}, None)]
    assert disagreements["zones"][0]["acquired_at"] is None  # a researcher: the day only
    res = api_for(ward.admin).post(url, {"score": 2, "comment": "consensus"}, format="json")
    assert res.status_code == 201 and res.json()["source"] == "adjudication"
    exam = api_for(ward.clinician).get(f"/api/v1/exams/{ward.exam.pk}/").json()
    l2 = next(z for z in exam["scores"]["zones"] if z["zone"] == "L2")
    assert (l2["score"], l2["source"], l2["kind"], l2["ai_score"]) == (2, "clinician", "adjudication", 2)
    again = api_for(ward.admin).get(f"/api/v1/studies/{ward.study.pk}/disagreements/").json()
    assert again["zones"][0]["adjudicated"] == 2


def test_worklist_api(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    ZoneReading.objects.filter(clip=ward.clips["R3"], source=ReadingSource.AI).update(confidence=0.2)
    data = api_for(ward.clinician).get(f"/api/v1/studies/{ward.study.pk}/worklist/").json()
    assert data["count"] == 1
    item = data["exams"][0]
    assert (item["exam"], item["status"], item["unsure_zones"], item["moved_zones"], item["zones"]) == (
        ward.exam.pk, "draft", ["R3"], [], 12)
    assert item["acquired_at"].startswith("2026-03-03") and item["page_url"] == f"/exams/{ward.exam.pk}/"
    researcher = api_for(ward.researcher).get(f"/api/v1/studies/{ward.study.pk}/worklist/").json()["exams"][0]
    assert researcher["acquired_at"] is None and researcher["day"] == pytest.approx(2.375, abs=0.01)
    assert api_for(ward.users["outsider"]).get(f"/api/v1/studies/{ward.study.pk}/worklist/").status_code == 404


def test_worklist_api_label_more_order(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    """``?order=label-more``: the exams most informative first with each zone's two parts; the
    default order says it is the urgent one; an unknown order is a 400."""
    from tests.patients.readings.test_views import _informative_exam

    other = _informative_exam(ward)
    api = api_for(ward.researcher)
    url = f"/api/v1/studies/{ward.study.pk}/worklist/"
    urgent = api.get(url).json()
    assert urgent["order"] == "urgent" and [e["exam"] for e in urgent["exams"]] == [ward.exam.pk, other.pk]
    assert "informativeness" not in urgent["exams"][0]
    data = api.get(url, {"order": "label-more"}).json()
    assert (data["order"], data["novelty_basis"], data["candidates"], data["labelled_clips"], data["count"]) == (
        "label-more", "domain", 13, 0, 2)
    first, second = data["exams"]
    assert (first["exam"], first["informativeness"], second["exam"], second["informativeness"]) == (
        other.pk, 1.0, ward.exam.pk, 0.25)
    assert first["informative_zones"] == [{"zone": "R1", "clip": other.clips.get().pk, "informativeness": 1.0,
                                           "uncertainty": 1.0, "uncertainty_rank": 1.0, "novelty": 3.0,
                                           "novelty_rank": 1.0}]
    assert len(second["informative_zones"]) == 12 and {z["novelty"] for z in second["informative_zones"]} == {None}
    assert {z["uncertainty"] for z in second["informative_zones"]} == {0.6784}  # (0.7, 0.1, 0.1, 0.1)
    assert first["why"] == "Most informative unread zone R1: informativeness 1.00." and first["acquired_at"] is None
    bad = api.get(url, {"order": "random"})
    assert bad.status_code == 400 and bad.json()["error"] == "order: 'random' is not one of ['urgent', 'label-more']"


def test_a_blind_reader_sees_only_their_own_readings_of_the_clip(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    clip = ward.clips["R1"]
    reading_create(clip=clip, by=ward.clinician, score=1, comment="first reader")
    second = ward.users["second"]
    blind_read_start(exam=ward.exam, by=second)
    api = api_for(second)
    assert api.get(f"/api/v1/clips/{clip.pk}/readings/").json() == []
    assert api.get(f"/api/v1/clips/{clip.pk}/override/").json() == []
    assert api.get(f"/api/v1/clips/{clip.pk}/record/").json()["ai_score"] is None
    frames = api.get(f"/api/v1/clips/{clip.pk}/frames/").json()
    assert frames["model_version"] is None and frames["frame_probs"] == []
    api.post(f"/api/v1/clips/{clip.pk}/readings/", {"score": 2}, format="json")
    mine = api.get(f"/api/v1/clips/{clip.pk}/readings/").json()
    assert [(r["rater"], r["score"], r["blind"]) for r in mine] == [("rw-second", 2, True)]
    # The first reader still sees everything.
    theirs = api_for(ward.clinician).get(f"/api/v1/clips/{clip.pk}/readings/").json()
    assert [r["rater"] for r in theirs] == ["rw-second", "rw-clinician", "model:test-model-1"]
