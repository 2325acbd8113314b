"""Rough edges of the exam page (issue 16): status in words, no Rescore on an exam without clips."""
from __future__ import annotations

import datetime as dt

import pytest

from patients.templatetags.words import status_words
from tests.conftest import signed_in
from tests.factories import ExamFactory
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def test_the_scoring_status_is_shown_in_words(ward: Ward) -> None:
    empty = ExamFactory(patient=ward.exam.patient, acquired_at=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC))
    page = signed_in(ward.clinician).get(f"/exams/{empty.pk}/").content.decode()
    assert '<strong id="job-status" data-code="not_scored">not scored yet</strong>' in page
    assert ">not_scored<" not in page
    page = signed_in(ward.clinician).get(f"/exams/{ward.exam.pk}/").content.decode()
    assert '<strong id="job-status" data-code="succeeded">scored</strong>' in page
    assert status_words("some_new_state") == "some new state" and status_words("amended") == "amended after sign-off"


def test_rescore_is_offered_only_on_an_exam_with_clips(ward: Ward) -> None:
    empty = ExamFactory(patient=ward.exam.patient, acquired_at=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC))
    client = signed_in(ward.clinician)
    assert 'id="rescore-form"' not in client.get(f"/exams/{empty.pk}/").content.decode()
    assert "Rescore with the active model" not in client.get(f"/exams/{empty.pk}/").content.decode()
    assert 'id="rescore-form"' in client.get(f"/exams/{ward.exam.pk}/").content.decode()
