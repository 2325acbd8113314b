"""Severity now from the stored records: the clinical record and the blood gas with P/F nearest the
exam within 24 h, in one query."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from patients.records.selectors import clinical_and_gases, severity_now_for
from tests.factories import BloodGasFactory, ClinicalInfoFactory, ExamFactory, PatientFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC)


def test_the_nearest_record_and_gas_within_a_day_decide(django_assert_num_queries: Any) -> None:
    patient = PatientFactory()
    exam = ExamFactory(patient=patient, acquired_at=AT)
    # A record 30 h before says "invasive": out of the window. The one 5 h after is used.
    ClinicalInfoFactory(patient=patient, recorded_at=AT - dt.timedelta(hours=30), oxygen_support="invasive")
    used = ClinicalInfoFactory(patient=patient, recorded_at=AT + dt.timedelta(hours=5), oxygen_support="mask",
                               spo2=95.0, respiratory_rate=22.0)
    # The nearest gas has no FiO2 (no P/F); the one 6 h before has it and is used: P/F 240.
    BloodGasFactory(patient=patient, sampled_at=AT + dt.timedelta(hours=1), pao2_mmhg=70.0, fio2=None)
    gas = BloodGasFactory(patient=patient, sampled_at=AT - dt.timedelta(hours=6), pao2_mmhg=96.0, fio2=0.4)
    # Another patient's records never count.
    other = ExamFactory(acquired_at=AT)
    ClinicalInfoFactory(patient=other.patient, recorded_at=AT, oxygen_support="ecmo")
    with django_assert_num_queries(1):
        states = severity_now_for(exams=[(exam.pk, patient.pk, AT), (other.pk, other.patient_id, AT)])
    state = states[exam.pk]
    assert (state.clinical_record, state.clinical_hours, state.blood_gas, state.gas_hours) == (used.pk, 5.0, gas.pk, -6.0)
    assert (state.now.who_text, state.now.guideline, state.now.pf_ratio) == ("5", "severe", 240.0)
    assert state.now.criteria == ("P/F 240 <= 300 mmHg",)
    assert states[other.pk].now.guideline == "critical" and states[other.pk].now.who_text == "9"


def test_nothing_near_the_exam_names_what_is_missing() -> None:
    patient = PatientFactory()
    exam = ExamFactory(patient=patient, acquired_at=AT)
    ClinicalInfoFactory(patient=patient, recorded_at=AT - dt.timedelta(hours=24, seconds=1), oxygen_support="none")
    BloodGasFactory(patient=patient, sampled_at=AT + dt.timedelta(hours=25))
    state = severity_now_for(exams=[(exam.pk, patient.pk, AT)])[exam.pk]
    assert state.clinical_record is None and state.blood_gas is None
    assert state.now.missing == ("oxygen support", "respiratory rate", "SpO2", "P/F, or SpO2 known to be on room air")
    assert state.as_dict()["guideline_text"] == "undetermined (mild or moderate to critical)"
    assert state.as_dict()["window_hours"] == 24.0


def test_clinical_and_gases_splits_one_query_in_time_order(django_assert_num_queries: Any) -> None:
    patient = PatientFactory()
    BloodGasFactory(patient=patient, sampled_at=AT + dt.timedelta(hours=2), paco2_mmhg=44.0, pao2_mmhg=90.0, fio2=0.3,
                    ph=7.38)
    BloodGasFactory(patient=patient, sampled_at=AT, paco2_mmhg=41.0, pao2_mmhg=None, fio2=0.3)
    ClinicalInfoFactory(patient=patient, recorded_at=AT, oxygen_support="", spo2=None, respiratory_rate=None)
    with django_assert_num_queries(1):
        records, gases = clinical_and_gases(patient_ids=[patient.pk])
    assert [(r["oxygen_support"], r["spo2"]) for r in records] == [("", None)]
    assert [(g["paco2_mmhg"], g["pf_ratio"], g["ph"]) for g in gases] == [(41.0, None, None), (44.0, 300.0, 7.38)]
