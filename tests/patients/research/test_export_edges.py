"""Rough edges of the export page (issue 16): patient + wide is answered in the site's layout, and
zone/wide is a different export from exam/wide (one row per patient x zone, a column group per exam)."""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest

from patients.readings.services import reading_create
from tests.conftest import signed_in
from tests.factories import ExamFactory
from tests.patients.dashboards import builders
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def _csv(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_patient_wide_is_refused_in_the_page_layout_with_the_form(ward: Ward) -> None:
    url = f"/studies/{ward.study.pk}/export/download/?level=patient&format=wide&window_hours=12"
    response = signed_in(ward.clinician).get(url)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'id="export-error"' in html and "format=wide needs level=exam or level=zone" in html
    assert 'class="topbar"' in html and 'id="export-form"' in html  # the site's layout, the form again
    assert response.context["form"].data["level"] == "patient"
    form = response.context["form"]
    assert not form.is_valid() and "wide format needs the zone or exam level" in str(form.non_field_errors())
    api = signed_in(ward.clinician).get(f"/api/v1/studies/{ward.study.pk}/export/?level=patient&format=wide")
    assert api.status_code == 400 and "format=wide" in api.json()["error"]


def test_zone_wide_is_the_zone_course_and_differs_from_exam_wide(ward: Ward) -> None:
    later = ExamFactory(patient=ward.exam.patient, acquired_at=dt.datetime(2026, 3, 5, 9, tzinfo=dt.UTC))
    builders.record_scores(later, {"R1": 2, "R2": 2}, mv=builders.model_version())
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1)
    client = signed_in(ward.clinician)
    base = f"/studies/{ward.study.pk}/export/download/?format=wide&level="
    exam_rows, zone_rows = _csv(client.get(base + "exam")), _csv(client.get(base + "zone"))
    assert len(exam_rows) == 2 and len(zone_rows) == 12  # per exam vs per patient x zone
    assert set(zone_rows[0]) != set(exam_rows[0])
    r1 = next(r for r in zone_rows if r["zone"] == "R1")
    assert (r1["protocol"], r1["exam1_day"], r1["exam2_day"]) == ("12-zone", "2.375", "4.375")
    assert (r1["exam1_record"], r1["exam1_source"]) == ("1", "clinician")  # the clinician's reading of the AI's 3
    assert (r1["exam2_record"], r1["exam2_source"]) == ("2", "ai")
    l6 = next(r for r in zone_rows if r["zone"] == "L6")
    assert (l6["exam1_record"], l6["exam2_record"], l6["exam2_source"]) == ("0", "", "")  # not scanned at exam 2
    dictionary = client.get(base + "zone&dictionary=1").content.decode()
    assert "exam2_record,integer,0-3" in dictionary
