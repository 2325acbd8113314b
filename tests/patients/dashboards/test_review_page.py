"""The exam page offers the review mode (templates/dashboards/_review.html) to those who may write."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patients.studies.models import Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db


def _page(user: Any, exam: Any) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/exams/{exam.pk}/")
    assert response.status_code == 200
    return str(response.content.decode())


def test_review_mode_only_for_writers_of_exams_with_clips() -> None:
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "rv-{role}")
    patient = PatientFactory(study=study)
    exam, empty = ExamFactory(patient=patient), ExamFactory(patient=patient)
    builders.fake_clip(exam, "R1")
    for role in (Role.CLINICIAN, Role.STUDY_ADMIN):
        html = _page(users[role], exam)
        assert 'id="review-open"' in html and "js/review.js" in html and "css/review.css" in html
        assert f'data-exam="{exam.pk}"' in html and '<li data-zone="R1">Right anterior upper</li>' in html
    html = _page(users[Role.RESEARCHER], exam)
    assert "review-open" not in html and "review.js" not in html
    assert 'id="review-open"' not in _page(users[Role.CLINICIAN], empty)  # nothing to read
    study.archived = True
    study.save()
    assert 'id="review-open"' not in _page(users[Role.CLINICIAN], exam)
