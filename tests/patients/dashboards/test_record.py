"""One score of record everywhere: zone R1 read 3 by the AI and 1 by a clinician is 1 in the exam
detail, the chest diagram, the timeline (and its heatmap), the overview, the correlation and the
export, with the AI's 3 still there, labelled as the AI's."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from patients.dashboards.overview import study_overview
from patients.dashboards.selectors import chest_diagram_zones, load_exams
from patients.readings.services import reading_create
from patients.records.models import Exam
from tests.factories import BloodGasFactory, ExamFactory
from tests.patients.dashboards import builders
from tests.patients.readings.ward import AI, Ward

pytestmark = pytest.mark.django_db

RECORD = {**AI, "R1": 1}


def _read_r1(ward: Ward) -> None:
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1, findings={"b_lines": True})


def test_the_exam_detail_and_chest_diagram_say_the_record(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    _read_r1(ward)
    exam = api_for(ward.clinician).get(f"/api/v1/exams/{ward.exam.pk}/").json()
    scores = exam["scores"]
    assert (scores["luss"], scores["luss_ai"], scores["max_luss"]) == (sum(RECORD.values()), sum(AI.values()), 36)
    assert scores["mean_score"] == pytest.approx(sum(RECORD.values()) / 12)
    assert (scores["worst_zone"], scores["zones_ge2"], scores["coverage"]) == ("L5", 3, 1.0)  # R1 was the worst
    assert exam["review_status"] == "draft" and exam["signed_by"] is None
    zones = {z["zone"]: z for z in scores["zones"]}
    r1 = zones["R1"]
    assert (r1["score"], r1["source"], r1["ai_score"], r1["reader"], r1["findings"]) == (
        1, "clinician", 3, "rw-clinician", {"b_lines": True})
    assert r1["probs"] == builders.clip_probs(3) and r1["confidence"] == 0.7  # the AI's, labelled
    assert (zones["R2"]["score"], zones["R2"]["source"], zones["R2"]["reader"]) == (1, "ai", None)
    chest = {z["code"]: z for z in chest_diagram_zones(exam=ward.exam)}
    assert (chest["R1"]["score"], chest["R1"]["source"], chest["R1"]["ai_score"]) == (1, "clinician", 3)
    assert chest["R2"]["source"] == "ai"


def test_the_timeline_heatmap_overview_and_correlation_say_the_record(ward: Ward,
                                                                     api_for: Callable[..., APIClient]) -> None:
    # A second exam so the overview has a trend; gases so that the correlation has pairs.
    later = ExamFactory(patient=ward.exam.patient, acquired_at=ward.exam.acquired_at + dt.timedelta(days=2))
    builders.record_scores(later, {**AI, "R1": 0}, mv=builders.model_version())
    for exam in (ward.exam, later):
        BloodGasFactory(patient=exam.patient, sampled_at=exam.acquired_at + dt.timedelta(hours=1))
    _read_r1(ward)
    api = api_for(ward.clinician)
    timeline = api.get(f"/api/v1/patients/{ward.exam.patient_id}/timeline/").json()
    first = timeline["exams"][0]
    assert (first["luss"], first["luss_ai"], first["zones"]["R1"], first["review_status"]) == (
        sum(RECORD.values()), sum(AI.values()), 1, "draft")
    detail = first["zone_details"]["R1"]
    assert (detail["source"], detail["ai_score"], detail["reader"]) == ("clinician", 3, "rw-clinician")
    assert first["zone_details"]["R2"]["source"] == "ai"
    row = study_overview(study=ward.study, user=ward.clinician)["patients"][0]
    later_luss = sum(AI.values()) - 3
    assert (row["luss"], row["delta"]) == (later_luss, later_luss - sum(RECORD.values()))
    corr = api.get(f"/api/v1/studies/{ward.study.pk}/correlation/").json()
    assert sorted(p["score"] for p in corr["pairs"]) == sorted([float(sum(RECORD.values())), float(later_luss)])
    assert corr["n_by_choice"] == {"all": 2, "reviewed": 0} and corr["reviewed"] is False
    reviewed = api.get(f"/api/v1/studies/{ward.study.pk}/correlation/?reviewed=1").json()
    assert (reviewed["n"], reviewed["n_by_choice"]) == (0, {"all": 2, "reviewed": 0})
    bad = api.get(f"/api/v1/studies/{ward.study.pk}/correlation/?reviewed=maybe")
    assert bad.status_code == 400 and "reviewed" in bad.json()["error"]
    rows = load_exams(Exam.objects.filter(pk=ward.exam.pk))
    assert (rows[0]["score"]["luss"], rows[0]["score_ai"]["luss"], rows[0]["zones"]["R1"]["ai_score"]) == (
        sum(RECORD.values()), sum(AI.values()), 3)


def test_the_export_says_the_record(ward: Ward, api_for: Callable[..., APIClient]) -> None:
    _read_r1(ward)
    api = api_for(ward.researcher)

    def rows(**params: str) -> list[dict[str, str]]:
        res = api.get(f"/api/v1/studies/{ward.study.pk}/export/", params)
        return list(csv.DictReader(io.StringIO(b"".join(res.streaming_content).decode())))

    zone = {r["zone"]: r for r in rows(level="zone")}
    r1 = zone["R1"]
    assert (r1["score"], r1["ai_score"], r1["clinician_score"], r1["record_score"], r1["final_score"]) == (
        "3", "3", "1", "1", "1")
    assert (r1["record_source"], r1["reviewer"], r1["override_score"]) == ("clinician", "rw-clinician", "1")
    assert (zone["R2"]["record_source"], zone["R2"]["reviewer"], zone["R2"]["record_score"]) == ("ai", "", "1")
    assert (r1["luss"], r1["luss_final"], r1["review_status"], r1["signed_day"]) == (
        str(sum(RECORD.values())), str(sum(RECORD.values())), "draft", "")
    exam = rows(level="exam")[0]
    assert (exam["luss"], exam["luss_ai"], exam["luss_final"], exam["luss_model"], exam["overrides"]) == (
        str(sum(RECORD.values())), str(sum(AI.values())), str(sum(RECORD.values())), str(sum(AI.values())), "1")
    assert (exam["worst_zone"], exam["zones_ge2"]) == ("L5", "3")  # R1 (AI 3, read 1) is no longer the worst
    wide = rows(level="exam", format="wide")[0]
    assert (wide["zone_12-zone:R1_score"], wide["zone_12-zone:R1_override"], wide["record_12-zone:R1"],
            wide["record_12-zone:R2"]) == (
        "3", "1", "1", "1")
    patient = rows(level="patient")[0]
    assert (patient["last_luss"], patient["last_luss_final"], patient["exams_reviewed"]) == (
        str(sum(RECORD.values())), str(sum(RECORD.values())), "0")


def _page(user: object, url: str) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_the_clip_page_and_viewer_say_the_record_beside_the_ai(ward: Ward) -> None:
    _read_r1(ward)
    clip = ward.clips["R1"]
    page = _page(ward.clinician, f"/clips/{clip.pk}/")
    record = page[page.index('id="clip-record"'):page.index('id="clip-ai"')]
    assert 'data-score="1" data-source="clinician"' in record and "read by rw-clinician" in record
    ai = page[page.index('id="clip-ai"'):]
    assert '<span class="score s3">3</span>' in ai[:200] and "70 %" in ai[:400] and "test-model-1" in ai[:600]
    r2 = _page(ward.researcher, f"/clips/{ward.clips['R2'].pk}/")
    assert "AI, not reviewed" in r2[r2.index('id="clip-record"'):r2.index('id="clip-ai"')]
    viewer = _page(ward.clinician, f"/clips/{clip.pk}/viewer/")
    player = viewer[viewer.index('class="player-record"'):]
    assert player.startswith('class="player-record" data-score="1" data-source="clinician"')
    assert "AI's clip score" in viewer


def test_the_overview_and_correlation_pages_label_the_record(ward: Ward) -> None:
    from patients.readings.services import exam_sign
    from tests.patients.readings.ward import read_all

    later = ExamFactory(patient=ward.exam.patient, acquired_at=ward.exam.acquired_at + dt.timedelta(days=2))
    builders.record_scores(later, {**AI, "R1": 0}, mv=builders.model_version())
    for exam in (ward.exam, later):
        BloodGasFactory(patient=exam.patient, sampled_at=exam.acquired_at + dt.timedelta(hours=1))
    read_all(ward, ward.clinician, RECORD)
    exam_sign(exam=ward.exam, by=ward.clinician)
    overview = _page(ward.clinician, f"/studies/{ward.study.pk}/overview/")
    assert "Global LUS score of record" in overview
    row = overview[overview.index(f'data-patient="{ward.exam.patient_id}"'):]
    review = row[row.index('<td class="review">'):row.index('<td class="flags">')]
    assert ">draft</span>" in review and "1 exam to review" in review  # the later exam, the AI's draft
    assert '"review_status": ["draft"]' in overview  # the bar of the chart is hatched
    page = _page(ward.clinician, f"/studies/{ward.study.pk}/correlation/")
    assert 'id="n-all">2<' in page and 'id="n-reviewed">1<' in page
    assert 'name="reviewed" value="0" checked' in page and "Global LUS score of record vs" in page
    page = _page(ward.clinician, f"/studies/{ward.study.pk}/correlation/?reviewed=1")
    assert 'name="reviewed" value="1" checked' in page and "n = <strong>1</strong> paired reviewed exam" in page
