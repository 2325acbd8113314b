"""The exam resource's review: sign-off (rights, unread zones, amended), blind reads hiding the
AI's and the other readings in the exam detail and the timeline until submitted, and the history."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from patients.readings.services import reading_create
from tests.patients.readings.ward import AI, Ward, read_all

pytestmark = pytest.mark.django_db


def test_sign_rights_unread_zones_and_amended(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    url = f"/api/v1/exams/{ward.exam.pk}/sign/"
    denied = api_for(ward.researcher).post(url)
    assert denied.status_code == 403 and "read-only" in denied.json()["error"]
    assert api_for(ward.users["outsider"]).post(url).status_code == 404  # a clinician of another study
    for zone in ("R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L5"):
        reading_create(clip=ward.clips[zone], by=ward.clinician, score=AI[zone])
    unread = api_for(ward.clinician).post(url)
    assert unread.status_code == 400
    assert unread.json() == {"error": "zones L4, L6 have no clinician reading", "code": "unread_zones"}
    for zone in ("L4", "L6"):
        reading_create(clip=ward.clips[zone], by=ward.clinician, score=AI[zone])
    signed = api_for(ward.clinician).post(url)
    assert signed.status_code == 200, signed.content
    body = signed.json()
    assert (body["id"], body["review_status"], body["signed_by"]) == (ward.exam.pk, "reviewed", "rw-clinician")
    assert body["signed_at"] and body["scores"]["reviewed_zones"] == 12
    # A reading changed after sign-off: amended, everywhere the status is shown.
    api_for(ward.admin).post(f"/api/v1/clips/{ward.clips['R1'].pk}/readings/", {"score": 1}, format="json")
    assert api_for(ward.clinician).get(f"/api/v1/exams/{ward.exam.pk}/").json()["review_status"] == "amended"
    timeline = api_for(ward.clinician).get(f"/api/v1/patients/{ward.exam.patient_id}/timeline/").json()
    assert timeline["exams"][0]["review_status"] == "amended"
    researcher = api_for(ward.researcher).get(f"/api/v1/exams/{ward.exam.pk}/").json()
    assert "signed_at" not in researcher and researcher["signed_day"] is not None
    history = api_for(ward.clinician).get(f"/api/v1/exams/{ward.exam.pk}/history/").json()
    kinds = [(h["kind"], h["rater"]) for h in history["history"][:3]]
    assert kinds == [("reading", "rw-study_admin"), ("signature", "rw-clinician"), ("reading", "rw-clinician")]
    assert history["review_status"] == "amended"


def test_blind_read_hides_the_ai_and_the_first_reading_until_submit(ward: Ward,
                                                                   api_for: Callable[..., APIClient]) -> None:
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1, comment="first reader")
    second = api_for(ward.users["second"])
    exam_url = f"/api/v1/exams/{ward.exam.pk}/"
    timeline_url = f"/api/v1/patients/{ward.exam.patient_id}/timeline/"
    started = second.post(exam_url + "blind/")
    assert started.status_code == 200 and started.json()["scores"]["zones"] == []
    exam = second.get(exam_url).json()
    scores = exam["scores"]
    assert (scores["luss"], scores["luss_ai"], scores["zones"], scores["model_version"]) == (None, None, [], None)
    assert exam["severity"] is None
    timeline = second.get(timeline_url).json()["exams"][0]
    assert (timeline["luss"], timeline["luss_ai"], timeline["blind"]) == (None, None, True)
    assert set(timeline["zones"].values()) == {None}
    # Their own reading is all they see.
    second.post(f"/api/v1/clips/{ward.clips['R2'].pk}/readings/", {"score": 2}, format="json")
    r2 = second.get(exam_url).json()["scores"]["zones"]
    assert [(z["zone"], z["score"], z["ai_score"], z["probs"], z["reader"]) for z in r2] == [
        ("R2", 2, None, None, "rw-second")]
    assert second.get(timeline_url).json()["exams"][0]["zones"]["R2"] == 2
    refused = second.post(exam_url + "blind/submit/")
    assert refused.status_code == 400 and "no reading of yours" in refused.json()["error"]
    read_all(ward, ward.users["second"], {"R1": 2})
    done = second.post(exam_url + "blind/submit/")
    assert done.status_code == 200
    zones = {z["zone"]: z for z in done.json()["scores"]["zones"]}
    assert (zones["R1"]["score"], zones["R1"]["ai_score"], zones["R1"]["reader"]) == (1, 3, "rw-clinician")
    assert second.get(timeline_url).json()["exams"][0]["luss_ai"] == sum(AI.values())


def test_the_exam_detail_asks_about_a_blind_read_once(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from patients.readings.models import BlindRead

    table = BlindRead._meta.db_table
    client = api_for(ward.users["second"])
    url = f"/api/v1/exams/{ward.exam.pk}/"
    for blind in (False, True):
        if blind:
            assert client.post(url + "blind/").status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(url).json()
        asked = [q["sql"] for q in ctx.captured_queries if f'"{table}"' in q["sql"]]
        assert len(asked) == 1, asked  # scores, severity and risk share the answer
        hidden = (body["scores"]["luss_ai"], body["severity"], body["risk_severe_course"])
        assert (hidden == (None, None, None)) if blind else body["scores"]["luss_ai"] == sum(AI.values())
