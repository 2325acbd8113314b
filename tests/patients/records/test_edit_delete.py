"""Edit and delete from the pages (issue 16): patients, exams, clinical records and blood gases,
each delete behind a confirmation page, each change audited; clinicians and study admins only."""
from __future__ import annotations

import datetime as dt

import pytest

from patients.audit.models import AuditAction, AuditEvent
from patients.imaging.models import ZoneClip
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.records.services import blood_gas_create
from tests.conftest import signed_in
from tests.factories import ClinicalInfoFactory
from tests.patients.readings.ward import Ward

pytestmark = pytest.mark.django_db


def test_edit_pages_fill_the_form_save_through_the_service_and_audit(ward: Ward) -> None:
    patient = ward.exam.patient
    client = signed_in(ward.clinician)
    assert f'href="/records/patient/{patient.pk}/edit/"' in client.get(f"/patients/{patient.pk}/").content.decode()
    form = client.get(f"/records/patient/{patient.pk}/edit/")
    assert form.status_code == 200 and form.context["form"].initial["code"] == "RW-1"
    data = {**form.context["form"].initial, "code": "RW-1b", "admission_date": "2026-03-01"}
    data = {k: ("" if v is None else v) for k, v in data.items() if k != "id" and k != "study"}
    assert client.post(f"/records/patient/{patient.pk}/edit/", data)["Location"] == f"/patients/{patient.pk}/"
    assert Patient.objects.get(pk=patient.pk).code == "RW-1b"
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, object_type="patient").latest("pk")
    assert event.changes == {"code": {"old": "RW-1", "new": "RW-1b"}}

    exam_form = client.get(f"/records/exam/{ward.exam.pk}/edit/").context["form"]
    assert exam_form.initial["acquired_at"] == "2026-03-03T09:00" or exam_form.initial["acquired_at"].endswith(":00")
    client.post(f"/records/exam/{ward.exam.pk}/edit/", {"acquired_at": exam_form.initial["acquired_at"],
                                                        "protocol": "12-zone", "device": "Sonosite PX"})
    assert Exam.objects.get(pk=ward.exam.pk).device == "Sonosite PX"

    gas = blood_gas_create(patient=patient, by=ward.clinician, sampled_at=dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC),
                           unit="kPa", paco2=5.5, pao2=10.0, fio2=0.4)
    initial = {k: v for k, v in client.get(f"/records/gas/{gas.pk}/edit/").context["form"].initial.items()
               if v is not None and k not in ("id", "patient")}
    assert (initial["unit"], initial["paco2"], initial["pao2"]) == ("kPa", 5.5, 10.0)  # as entered
    bad = client.post(f"/records/gas/{gas.pk}/edit/", {**initial, "paco2": 55, "fio2": 0.4})  # 55 kPa: implausible
    assert bad.status_code == 400 and "PACO2 412.5 mmHg is outside" in bad.content.decode()
    client.post(f"/records/gas/{gas.pk}/edit/", {**initial, "unit": "mmHg", "paco2": 45, "pao2": 80, "fio2": 0.5})
    gas.refresh_from_db()
    assert (gas.paco2_mmhg, gas.unit_entered, gas.fio2) == (45.0, "mmHg", 0.5)

    record = ClinicalInfoFactory(patient=patient, spo2=90)
    initial = client.get(f"/records/clinical/{record.pk}/edit/").context["form"].initial
    post = {k: v for k, v in initial.items() if v not in (None, False) and k not in ("id", "patient")}
    client.post(f"/records/clinical/{record.pk}/edit/", {**post, "spo2": 94, "oxygen_support": "mask"})
    assert ClinicalInfo.objects.get(pk=record.pk).spo2 == 94


def test_delete_needs_the_confirmation_page_and_is_audited(ward: Ward) -> None:
    patient = ward.exam.patient
    client = signed_in(ward.clinician)
    gas = blood_gas_create(patient=patient, by=ward.clinician, sampled_at=dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC),
                           paco2=41, pao2=80, fio2=0.4)
    confirm = client.get(f"/records/gas/{gas.pk}/delete/")
    assert confirm.status_code == 200 and "This cannot be undone" in confirm.content.decode()
    assert BloodGas.objects.filter(pk=gas.pk).exists()  # a GET deletes nothing
    assert client.post(f"/records/gas/{gas.pk}/delete/")["Location"] == f"/patients/{patient.pk}/"
    assert not BloodGas.objects.filter(pk=gas.pk).exists()
    deleted = AuditEvent.objects.get(action=AuditAction.DELETE, object_type="bloodgas")
    assert deleted.changes["paco2_mmhg"] == {"old": 41.0, "new": None}

    page = client.get(f"/records/exam/{ward.exam.pk}/delete/").content.decode()
    assert "12 clip(s) with their files" in page
    client.post(f"/records/exam/{ward.exam.pk}/delete/")
    assert not Exam.objects.filter(pk=ward.exam.pk).exists() and not ZoneClip.all_objects.exists()

    assert "1 clinical record" not in client.get(f"/records/patient/{patient.pk}/delete/").content.decode()
    assert client.post(f"/records/patient/{patient.pk}/delete/")["Location"] == f"/studies/{ward.study.pk}/"
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.DELETE, object_type="patient").count() == 1


def test_only_clinicians_and_study_admins_edit_or_delete(ward: Ward) -> None:
    patient = ward.exam.patient
    gas = blood_gas_create(patient=patient, by=ward.clinician, sampled_at=dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC),
                           paco2=41)
    urls = [f"/records/{kind}/{pk}/{what}/" for kind, pk in (("patient", patient.pk), ("exam", ward.exam.pk),
                                                              ("gas", gas.pk)) for what in ("edit", "delete")]
    researcher, outsider = signed_in(ward.researcher), signed_in(ward.users["outsider"])
    for url in urls:
        assert researcher.get(url).status_code == 403 and researcher.post(url).status_code == 403
        assert outsider.get(url).status_code == 404 and outsider.post(url).status_code == 404
    assert signed_in(ward.admin).get(urls[1]).status_code == 200
    assert signed_in(ward.clinician).get(f"/records/study/{ward.study.pk}/edit/").status_code == 404
    assert "Edit patient" not in researcher.get(f"/patients/{patient.pk}/").content.decode()
    assert Patient.objects.filter(pk=patient.pk).exists() and BloodGas.objects.filter(pk=gas.pk).exists()
