"""Researchers never see a calendar date: pages and API give days since the patient's day 0.

Clinicians and study admins see the same pages with dates (so the check below can fail).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patients.readings.models import ExamSignature, ReadingSource, ZoneReading
from tests.factories import ZoneReadingFactory
from tests.patients.dashboards.conftest import Cohort

pytestmark = pytest.mark.django_db

# Any ISO date, and the textual forms Django's default filters would print (e.g. "March 1, 2026").
DATE = re.compile(r"\b20\d\d-\d\d-\d\d|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, 20\d\d")


def _urls(c: Cohort) -> tuple[list[str], list[str]]:
    s, p = c.study.pk, c.patient.pk
    clip = c.exams[0].clips.get(zone="R1")
    pages = [f"/studies/{s}/", f"/studies/{s}/overview/", f"/studies/{s}/correlation/", f"/patients/{p}/",
             f"/patients/{p}/timeline/", f"/patients/{p}/correlation/", f"/clips/{clip.pk}/",
             f"/clips/{c.exams[2].clips.get(zone='R1').pk}/viewer/"]
    pages += [f"/exams/{e.pk}/" for e in c.exams]
    api = [f"/api/v1/patients/{p}/", f"/api/v1/patients/?study={s}", f"/api/v1/exams/?patient={p}",
           f"/api/v1/patients/{p}/blood-gases/", f"/api/v1/patients/{p}/clinical/", f"/api/v1/clips/{clip.pk}/",
           f"/api/v1/clips/{clip.pk}/override/", f"/api/v1/patients/{p}/timeline/",
           f"/api/v1/studies/{s}/correlation/", f"/api/v1/patients/{p}/correlation/", "/api/v1/jobs/",
           f"/api/v1/clips/{clip.pk}/readings/", f"/api/v1/clips/{clip.pk}/record/",
           f"/api/v1/exams/{c.exams[0].pk}/history/", f"/api/v1/studies/{s}/worklist/",
           f"/api/v1/studies/{s}/disagreements/"]
    api += [f"/api/v1/exams/{e.pk}/" for e in c.exams]
    return pages, api


def _bodies(c: Cohort, role: str, api_for: Callable[..., Any]) -> dict[str, str]:
    clip = c.exams[0].clips.get(zone="R1")
    if not ZoneReading.objects.filter(clip=clip, source=ReadingSource.CLINICIAN).exists():
        ZoneReadingFactory(clip=clip, score=2, comment="reviewed", rater=c.users["clinician"])
        # A second clinician disagrees, and the exam is signed: dates of readings and signatures too.
        ZoneReadingFactory(clip=clip, score=0, comment="reviewed again", rater=c.users["study_admin"])
        ExamSignature.objects.create(exam=c.exams[0], by=c.users["clinician"], by_name="clinician-user")
    web = Client()
    web.force_login(c.users[role])
    api = api_for(c.users[role])
    pages, endpoints = _urls(c)
    out: dict[str, str] = {}
    for url in pages:
        res = web.get(url)
        assert res.status_code == 200, (url, res.status_code)
        out[url] = res.content.decode()
    for url in endpoints:
        res = api.get(url)
        assert res.status_code == 200, (url, res.status_code)
        out[url] = res.content.decode()
    return out


def test_researcher_sees_no_calendar_date(cohort: Cohort, api_for: Callable[..., Any]) -> None:
    bodies = _bodies(cohort, "researcher", api_for)
    leaks = {url: DATE.findall(body)[:3] for url, body in bodies.items() if DATE.search(body)}
    assert leaks == {}
    # Where a date was withheld the page says "day N.N", never a bare "None".
    pages, _api = _urls(cohort)
    assert [url for url in pages if ">None<" in bodies[url]] == []
    assert re.search(r">day \d+\.\d</a></td>", bodies[f"/studies/{cohort.study.pk}/correlation/"])


@pytest.mark.parametrize("role", ["clinician", "study_admin"])
def test_clinical_roles_see_dates(cohort: Cohort, api_for: Callable[..., Any], role: str) -> None:
    bodies = _bodies(cohort, role, api_for)
    dated = [url for url, body in bodies.items() if DATE.search(body)]
    # Every page and endpoint that shows a patient moment shows it as a date to them.
    assert f"/patients/{cohort.patient.pk}/" in dated and f"/api/v1/exams/{cohort.exams[0].pk}/" in dated
    assert f"/api/v1/patients/{cohort.patient.pk}/blood-gases/" in dated
    assert "2026-03-02" in bodies[f"/patients/{cohort.patient.pk}/"]  # exam 1 (10:00 UTC)
    overview = bodies[f"/studies/{cohort.study.pk}/overview/"]
    assert "exam 2026-03-05" in overview and "2026-03-08 10:00" in overview  # latest scored / last exam


def test_researcher_api_gives_days_since_day_zero(cohort: Cohort, api_for: Callable[..., Any]) -> None:
    api = api_for(cohort.users["researcher"])
    exam = api.get(f"/api/v1/exams/{cohort.exams[0].pk}/").json()
    assert "acquired_at" not in exam and "created_at" not in exam
    assert "notes" not in exam  # free text
    assert "notes" in api_for(cohort.users["clinician"]).get(f"/api/v1/exams/{cohort.exams[0].pk}/").json()
    assert exam["day"] == pytest.approx(1 + 10 / 24, abs=0.01) and exam["day_zero"] == "admission"  # 2026-03-02 10:00
    patient = api.get(f"/api/v1/patients/{cohort.patient.pk}/").json()
    assert "admission_date" not in patient
    gases = api.get(f"/api/v1/patients/{cohort.patient.pk}/blood-gases/").json()
    assert sorted(g["day"] for g in gases) == pytest.approx(sorted([1 + 8 / 24, 1 + 12 / 24, 4 + 15 / 24]), abs=0.01)
    timeline = api.get(f"/api/v1/patients/{cohort.patient.pk}/timeline/").json()
    assert timeline["time_axis"] == "day" and timeline["admission_date"] is None
    assert [e["x"] for e in timeline["exams"]] == pytest.approx([1 + 10 / 24, 4 + 10 / 24, 7 + 10 / 24], abs=0.01)
    assert [e["day"] for e in timeline["exams"]] == [1, 4, 7]
    other = api.get(f"/api/v1/patients/{cohort.others[0].pk}/timeline/").json()
    assert other["day_zero"] == "first exam" and other["exams"][0]["x"] == 0.0
    # The clinician's timeline is on a date axis.
    clin = api_for(cohort.users["clinician"]).get(f"/api/v1/patients/{cohort.patient.pk}/timeline/").json()
    assert clin["time_axis"] == "date" and clin["exams"][0]["x"].startswith("2026-03-02")


def test_researcher_sees_no_operator_or_override_reason(cohort: Cohort, api_for: Callable[..., Any]) -> None:
    """Names of staff and free text can identify the patient: researchers get neither, clinicians both."""
    from patients.records.models import Exam

    Exam.objects.filter(pk__in=[e.pk for e in cohort.exams]).update(operator="Dr Greta Operatorson")
    clip = cohort.exams[0].clips.get(zone="R1")
    ZoneReadingFactory(clip=clip, score=3, comment="seen at bedside by Dr Reasonwright", rater=cohort.users["clinician"])
    secret = re.compile(r"Operatorson|Reasonwright")
    researcher = _bodies(cohort, "researcher", api_for)
    assert {url: secret.findall(b) for url, b in researcher.items() if secret.search(b)} == {}
    clinician = _bodies(cohort, "clinician", api_for)
    assert "Operatorson" in clinician[f"/exams/{cohort.exams[0].pk}/"]
    assert "Operatorson" in clinician[f"/patients/{cohort.patient.pk}/"]
    assert "Operatorson" in clinician[f"/api/v1/exams/{cohort.exams[0].pk}/"]
    assert "Reasonwright" in clinician[f"/exams/{cohort.exams[0].pk}/"]
    assert "Reasonwright" in clinician[f"/api/v1/clips/{clip.pk}/override/"]
    # The researcher still sees that a clinician overrode the zone, and to what.
    overrides = api_for(cohort.users["researcher"]).get(f"/api/v1/clips/{clip.pk}/override/").json()
    latest = overrides[0] if isinstance(overrides, list) else overrides
    assert "reason" not in latest and latest["score"] in (2, 3)
