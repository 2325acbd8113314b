"""Rough edges of the record pages (issue 16): scores and review status in the patient's exam list,
the latest score in the study's patient list, proper symbols in the forms, the entered gas unit."""
from __future__ import annotations

import datetime as dt

import pytest

from patients.readings.services import reading_create
from patients.records.forms import BloodGasForm, ClinicalInfoForm
from patients.records.services import blood_gas_create
from tests.conftest import signed_in
from tests.factories import ExamFactory
from tests.patients.readings.ward import AI, Ward, read_all

pytestmark = pytest.mark.django_db


def _cell(html: str, cls: str, after: str) -> str:
    start = html.index(after)
    cell = html.index(f'class="{cls}"', start)
    return html[cell:html.index("</td>", cell)]


def test_the_exam_list_shows_the_score_of_record_with_its_source_and_the_review_status(ward: Ward) -> None:
    empty = ExamFactory(patient=ward.exam.patient, acquired_at=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC))
    client = signed_in(ward.clinician)
    page = client.get(f"/patients/{ward.exam.patient.pk}/").content.decode()
    luss = sum(AI.values())
    row = _cell(page, "luss", f'data-exam="{ward.exam.pk}"')
    assert f'data-luss="{luss}"' in row and 'data-source="ai"' in row and "AI, not reviewed" in row
    assert "draft (not signed)" in _cell(page, "review", f'data-exam="{ward.exam.pk}"')
    assert "not scored yet" in _cell(page, "luss", f'data-exam="{empty.pk}"')
    reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1)  # the AI read 3
    row = _cell(client.get(f"/patients/{ward.exam.patient.pk}/").content.decode(), "luss", f'data-exam="{ward.exam.pk}"')
    assert f'data-luss="{luss - 2}"' in row and "1 of 12 zones read by a clinician" in row
    read_all(ward, ward.clinician, {"R1": 1})
    client.post(f"/exams/{ward.exam.pk}/sign/")
    page = client.get(f"/patients/{ward.exam.patient.pk}/").content.decode()
    assert "read by a clinician" in _cell(page, "luss", f'data-exam="{ward.exam.pk}"')
    assert ">reviewed<" in _cell(page, "review", f'data-exam="{ward.exam.pk}"')


def test_the_study_patient_list_shows_the_latest_score(ward: Ward) -> None:
    page = signed_in(ward.researcher).get(f"/studies/{ward.study.pk}/").content.decode()
    assert "Latest LUSS" in page
    assert f'data-luss="{sum(AI.values())}"' in _cell(page, "latest-luss", "id=\"patients\"")


def test_the_forms_use_the_symbols_of_the_tables() -> None:
    gas = BloodGasForm()
    labels = {name: str(field.label) for name, field in gas.fields.items()}
    assert labels["ph"] == "pH" and labels["paco2"] == "PaCO₂" and labels["pao2"] == "PaO₂"
    assert labels["hco3"].startswith("HCO₃⁻") and labels["sao2"].startswith("SaO₂") and labels["fio2"].startswith("FiO₂")
    assert str(ClinicalInfoForm().fields["spo2"].label).startswith("SpO₂")
    html = gas.as_p() + ClinicalInfoForm().as_p()
    for wrong in (">Ph:", ">Hco3", ">Sao2", ">Fio2", ">Spo2"):
        assert wrong not in html


def test_the_blood_gas_table_says_which_unit_was_entered(ward: Ward) -> None:
    patient = ward.exam.patient
    blood_gas_create(patient=patient, by=ward.clinician, sampled_at=dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC),
                     unit="kPa", paco2=5.5, pao2=10.0, fio2=0.4)
    blood_gas_create(patient=patient, by=ward.clinician, sampled_at=dt.datetime(2026, 3, 3, 10, tzinfo=dt.UTC),
                     unit="mmHg", paco2=41, pao2=75, fio2=0.4)
    page = signed_in(ward.clinician).get(f"/patients/{patient.pk}/").content.decode()
    table = page[page.index('id="blood-gases"'):]
    assert "<th>Entered in</th>" in table
    kpa = _cell(table, "unit-entered", "41.3")  # 5.5 kPa = 41.3 mmHg
    assert 'data-unit="kPa"' in kpa and "PaCO₂ 5.50, PaO₂ 10.00 kPa" in kpa
    assert 'data-unit="mmHg"' in _cell(table, "unit-entered", "41.0")
