"""patients.chrono: day 0, labels and plot coordinates, hand-computed."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from patients.records import chrono
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory

UTC = dt.UTC


def test_day_zero_is_admission_midnight_else_first_exam() -> None:
    first = dt.datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    origin, kind = chrono.day_zero(dt.date(2026, 3, 1), first)
    assert kind == chrono.ADMISSION
    assert origin == dt.datetime(2026, 3, 1, tzinfo=timezone.get_current_timezone())
    assert chrono.day_zero(None, first) == (first, chrono.FIRST_EXAM)
    assert chrono.day_zero(None, None) == (None, "")


def test_researcher_clock_counts_days_and_never_prints_a_date() -> None:
    origin = dt.datetime(2026, 3, 1, tzinfo=UTC)
    clock = chrono.PatientClock(False, origin, chrono.ADMISSION)
    at = dt.datetime(2026, 3, 4, 12, tzinfo=UTC)  # 3 days 12 h after admission 00:00
    assert clock.day(at) == 3.5
    assert clock.label(at) == "day 3.5"
    assert clock.x(at) == 3.5
    assert clock.day(dt.datetime(2026, 2, 28, 18, tzinfo=UTC)) == -0.25  # before admission: negative
    assert clock.date(dt.date(2026, 3, 1)) is None
    assert clock.axis == "day" and clock.axis_title == "Days since admission"
    assert chrono.PatientClock(False, None, "").label(at) == "day ?"


def test_clinician_clock_prints_local_dates() -> None:
    clock = chrono.PatientClock(True, dt.datetime(2026, 3, 1, tzinfo=UTC), chrono.ADMISSION)
    at = dt.datetime(2026, 3, 4, 12, 5, tzinfo=UTC)
    local = timezone.localtime(at)
    assert clock.label(at) == local.strftime("%Y-%m-%d %H:%M")
    assert clock.label(at, with_time=False) == local.strftime("%Y-%m-%d")
    assert clock.x(at) == local.strftime("%Y-%m-%d %H:%M:%S")
    assert clock.date(dt.date(2026, 3, 1)) == "2026-03-01"
    assert clock.axis == "date" and clock.label(None) == "–"


@pytest.mark.django_db
def test_clock_for_uses_the_role_and_the_first_exam() -> None:
    study = StudyFactory()
    researcher, clinician = UserFactory(), UserFactory()
    MembershipFactory(study=study, user=researcher, role="researcher")
    MembershipFactory(study=study, user=clinician, role="clinician")
    patient = PatientFactory(study=study, admission_date=None)
    late = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 6, 8, tzinfo=UTC))
    ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 2, 8, tzinfo=UTC))
    r = chrono.clock_for(user=researcher, patient=patient)
    assert not r.shows_dates and r.origin_kind == chrono.FIRST_EXAM
    assert r.day(late.acquired_at) == 4.0 and r.axis_title == "Days since first exam"
    assert chrono.clock_for(user=clinician, patient=patient).shows_dates
