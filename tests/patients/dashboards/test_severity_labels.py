"""Severity, named for what it is on every page, the API and the export: "severity now" (the exam
day's state from the clinical record and blood gas) beside "risk of a severe course" (the model's
calibrated risk of the stay, never shown as 0 % or 100 %, with its cross-validated figures and the
zone attention explained). The cohort is the course reported in issue 17."""
from __future__ import annotations

import csv
import datetime as dt
import html as html_lib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from patients.records.models import Exam
from patients.studies.models import Role, Study
from scoring.models import SeverityPrediction
from scoring.severity import ATTENTION_NOTE, severity_model_card
from tests.conftest import signed_in
from tests.factories import (
    BloodGasFactory,
    ClinicalInfoFactory,
    ExamFactory,
    PatientFactory,
    StudyFactory,
    members_by_role,
)
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@dataclass
class Course:
    study: Study
    users: dict[str, Any]
    first: Exam
    later: Exam
    version: str


@pytest.fixture
def course(db: Any) -> Course:
    """BLUE-6: a first exam of 13/18 with three zones at 3, on nasal oxygen with SpO2 91 % - stored
    by the old model as "moderate, P(severe or critical) 0 %" with 72 % of the attention on the one
    normal zone; four days later 4/18, off oxygen, normal gas - stored as "severe, 100 %"."""
    card = severity_model_card()
    assert card is not None and card["calibrated"], "the shipped severity weights carry their calibrator"
    study = StudyFactory(name="Issue 17 ward", protocol="blue-6")
    users = members_by_role(study, "sev-{role}")
    patient = PatientFactory(study=study, code="P-17", admission_date=dt.date(2026, 3, 1))
    mv = builders.model_version()
    first = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 1, 10, tzinfo=UTC), protocol="blue-6")
    later = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 5, 10, tzinfo=UTC), protocol="blue-6")
    stored = ((first, {"R1": 3, "R2": 3, "R3": 3, "L1": 2, "L2": 2, "L3": 0}, "moderate", [0.3, 0.7, 0.0, 0.0],
               {"L3": 0.72, "R1": 0.08, "R2": 0.05, "R3": 0.05, "L1": 0.05, "L2": 0.05}),
              (later, {"R1": 1, "R2": 1, "R3": 1, "L1": 1, "L2": 0, "L3": 0}, "severe", [0.0, 0.0, 0.2, 0.8],
               {"R1": 0.5, "R2": 0.1, "R3": 0.1, "L1": 0.1, "L2": 0.1, "L3": 0.1}))
    for exam, zones, label, probs, attention in stored:
        result = builders.record_scores(exam, zones, mv=mv)
        SeverityPrediction.objects.create(exam=exam, job_id=result.job_id, model_version=card["version"], label=label,
                                          probs=probs, severe_probability=probs[2] + probs[3], zone_attention=attention)
    ClinicalInfoFactory(patient=patient, recorded_at=first.acquired_at - dt.timedelta(hours=1),
                        oxygen_support="nasal_cannula", spo2=91.0, respiratory_rate=24.0)
    ClinicalInfoFactory(patient=patient, recorded_at=later.acquired_at + dt.timedelta(hours=2),
                        oxygen_support="none", spo2=96.0, respiratory_rate=17.0)
    BloodGasFactory(patient=patient, sampled_at=later.acquired_at - dt.timedelta(hours=3), paco2_mmhg=40.0,
                    pao2_mmhg=85.0, fio2=0.21)
    return Course(study, users, first, later, card["version"])


def _section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start:html.index("</section>", start)]


def _text(html: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_the_exam_page_shows_severity_now_beside_the_calibrated_risk(course: Course) -> None:
    card = severity_model_card()
    assert card is not None
    html = signed_in(course.users[Role.CLINICIAN]).get(f"/exams/{course.first.pk}/").content.decode()
    now = _text(_section(html, "severity-now"))
    assert "Severity now" in now and "severe (Chinese COVID-19 guideline)" in now and "WHO 5" in now
    assert "oxygen by mask or nasal prongs" in now and "SpO2 91 % <= 93 %" in now
    assert "Read from the clinical record 1 h before the exam and no blood gas with PaO₂ and FiO₂" in now
    risk = _text(_section(html, "severity"))
    assert "Risk of a severe course" in risk
    # Stored 0.0 by the model, shown as 1 %, never 0 %; the course class is named as such.
    assert re.search(r'id="risk-pct">1 %<', html) and not re.search(r"\b0 %", risk)
    assert "calibrated" in risk and "not calibrated" not in risk
    assert "oxygen therapy, ICU admission or death on any day of the stay" in risk
    assert "Predicted course class: moderate" in risk
    # The model's cross-validated figures beside the risk, read from the weights' metadata.
    assert f"tells a severe course from a milder one right {round(100 * card['severe_accuracy'])} %" in risk
    assert f"out-of-fold calibration error (ECE) {card['ece']:.2f}" in risk
    # The attention is shown with what it is, and is not a zone's disease.
    assert ATTENTION_NOTE in risk and "Not a measure of how diseased the zone is" in risk
    assert "L3 72 %" in risk

    later = signed_in(course.users[Role.CLINICIAN]).get(f"/exams/{course.later.pk}/").content.decode()
    assert "mild or moderate" in _text(_section(later, "severity-now")) and "WHO 1-4" in _text(later)
    assert re.search(r'id="risk-pct">99 %<', later) and "100 %" not in _text(_section(later, "severity"))


def test_the_exam_api_names_both_and_never_serves_0_or_1(course: Course, api_for: Callable[..., APIClient]) -> None:
    api = api_for(course.users[Role.RESEARCHER])
    first = api.get(f"/api/v1/exams/{course.first.pk}/").json()
    now = first["severity_now"]
    assert (now["guideline_class"], now["who_scale"], now["who_low"], now["who_high"]) == ("severe", "5", 5, 5)
    # A met criterion decides "severe": the missing gas could not change it, so nothing is missing.
    assert now["criteria"] == ["SpO2 91 % <= 93 %"] and now["missing"] == []
    assert now["clinical_hours"] == -1.0 and now["blood_gas"] is None
    risk = first["risk_severe_course"]
    assert risk["probability"] == 0.01 and risk["calibrated"] is True and risk["course_class"] == "moderate"
    assert risk["class_probabilities"] == [0.3, 0.7, 0.01, 0.01]
    assert risk["model"]["version"] == course.version and risk["model"]["ece"] <= 0.10
    assert 0.5 < risk["model"]["severe_accuracy"] < 1 and risk["zone_attention"]["L3"] == 0.72
    assert "not a measure of how diseased" in risk["attention_note"].lower()
    assert first["severity"]["label"] == "moderate"  # the old block, kept for older scripts
    later = api.get(f"/api/v1/exams/{course.later.pk}/").json()
    assert later["risk_severe_course"]["probability"] == 0.99
    assert later["severity_now"]["guideline_class"] == "mild_or_moderate"
    assert later["severity_now"]["pf_ratio"] == pytest.approx(404.8, abs=0.05)
    assert (later["severity_now"]["who_low"], later["severity_now"]["who_high"]) == (1, 4)


def test_an_older_models_risk_is_marked_uncalibrated(course: Course, api_for: Callable[..., APIClient]) -> None:
    SeverityPrediction.objects.filter(exam=course.first).update(model_version="severity-ma_clr-old")
    risk = api_for(course.users[Role.CLINICIAN]).get(f"/api/v1/exams/{course.first.pk}/").json()["risk_severe_course"]
    assert risk["calibrated"] is False and risk["model"] is None and risk["probability"] == 0.01
    html = signed_in(course.users[Role.CLINICIAN]).get(f"/exams/{course.first.pk}/").content.decode()
    assert "not calibrated" in _text(_section(html, "severity"))


def test_the_timeline_and_overview_label_both(course: Course, api_for: Callable[..., APIClient]) -> None:
    api = api_for(course.users[Role.CLINICIAN])
    exams = api.get(f"/api/v1/patients/{course.first.patient_id}/timeline/").json()["exams"]
    assert [e["severity_now"]["guideline_class"] for e in exams] == ["severe", "mild_or_moderate"]
    assert [e["risk_severe_course"]["probability"] for e in exams] == [0.01, 0.99]
    assert [e["severe_probability"] for e in exams] == [0.01, 0.99]
    assert all(0.01 <= p <= 0.99 for e in exams for p in e["severity_probs"])
    page = _text(signed_in(course.users[Role.CLINICIAN]).get(
        f"/patients/{course.first.patient_id}/timeline/").content.decode())
    assert "Marker colour = severity now" in page and "Risk of a severe course over time (model)" in page

    web = signed_in(course.users[Role.CLINICIAN])
    html = web.get(f"/studies/{course.study.pk}/overview/").content.decode()
    head = _text(html[html.index("<thead>"):html.index("</thead>")])
    assert "Risk of a severe course (model)" in head and "Severity now" in head
    row = html[html.index(f'data-patient="{course.first.patient_id}"'):]
    row = row[:row.index("</tr>")]
    assert "99 %" in _text(row[row.index('class="risk"'):]) and "mild or moderate" in _text(row)
    assert "WHO 1-4" in _text(row)


def test_the_export_names_both(course: Course, api_for: Callable[..., APIClient]) -> None:
    res: Any = api_for(course.users[Role.RESEARCHER]).get(f"/api/v1/studies/{course.study.pk}/export/",
                                                          {"level": "exam"})
    rows = list(csv.DictReader(io.StringIO(b"".join(res.streaming_content).decode())))
    got = [(r["severity_now"], r["who_scale"], r["risk_severe_course"], r["risk_calibrated"], r["severity"],
            r["severe_probability"]) for r in rows]
    assert got == [("severe", "5", "0.01", "1", "moderate", "0.01"),
                   ("mild_or_moderate", "1-4", "0.99", "1", "severe", "0.99")]
    assert rows[0]["severity_now_missing"] == "" and rows[1]["severity_now_missing"] == ""
    dictionary: Any = api_for(course.users[Role.RESEARCHER]).get(
        f"/api/v1/studies/{course.study.pk}/export/", {"level": "exam", "dictionary": "1"})
    text = b"".join(dictionary.streaming_content).decode() if hasattr(dictionary, "streaming_content") else (
        dictionary.content.decode())
    assert "not the state at the exam" in text and "clipped to 0.01-0.99" in text
