"""The API contract other parts and outside checks rely on: names, fields, units."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from patients.records.models import BloodGas
from patients.records.units import KPA_TO_MMHG
from patients.studies.models import Membership, Role, Study
from tests.assets import external_asset_refs
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user() -> object:
    user = UserFactory(username="boss")
    user.user_permissions.add(Permission.objects.get(codename="add_study"))
    return user


def test_token_login_returns_token_and_authenticates() -> None:
    UserFactory(username="ann")
    api = APIClient()
    bad = api.post("/api/v1/auth/token/", {"username": "ann", "password": "wrong"}, format="json")
    assert bad.status_code == 400 and bad.data["error"]
    response = api.post("/api/v1/auth/token/", {"username": "ann", "password": "pw-for-tests-1"}, format="json")
    assert response.status_code == 200
    token = response.data["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/studies/").status_code == 200


def test_study_create_makes_creator_admin_and_members_endpoint(admin_user: object, api_for: Callable[..., APIClient]) -> None:
    api = api_for(admin_user)
    response = api.post("/api/v1/studies/", {"name": "Ward 7", "protocol": "blue-6"}, format="json")
    assert response.status_code == 201, response.data
    assert response.data["protocol"] == "blue-6"
    assert response.data["zones"] == ["R1", "R2", "R3", "L1", "L2", "L3"]
    assert response.data["role"] == "study_admin"
    study_id = response.data["id"]
    UserFactory(username="nurse")
    added = api.post(f"/api/v1/studies/{study_id}/members/", {"username": "nurse", "role": "clinician"}, format="json")
    assert added.status_code == 201 and added.data == {"username": "nurse", "role": "clinician", "account_created": False}
    changed = api.post(f"/api/v1/studies/{study_id}/members/", {"username": "nurse", "role": "researcher"}, format="json")
    assert changed.status_code == 200
    assert Membership.objects.get(study_id=study_id, user__username="nurse").role == "researcher"
    unknown = api.post(f"/api/v1/studies/{study_id}/members/", {"username": "ghost", "role": "clinician"}, format="json")
    assert unknown.status_code == 400 and "no user named 'ghost'" in unknown.data["error"]
    demote = api.post(f"/api/v1/studies/{study_id}/members/", {"username": "boss", "role": "clinician"}, format="json")
    assert demote.status_code == 400 and "at least one study admin" in demote.data["error"]


def test_study_create_requires_permission_and_valid_protocol(admin_user: object, api_for: Callable[..., APIClient]) -> None:
    plain = UserFactory()
    assert api_for(plain).post("/api/v1/studies/", {"name": "X", "protocol": "12-zone"}, format="json").status_code == 403
    bad = api_for(admin_user).post("/api/v1/studies/", {"name": "X", "protocol": "13-zone"}, format="json")
    assert bad.status_code == 400 and "protocol" in bad.data["error"]
    assert not Study.objects.filter(name="X").exists()


@pytest.fixture
def clinician() -> tuple[object, Study]:
    study = StudyFactory(protocol="12-zone")
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    return user, study


def test_patient_and_exam_flow_with_filters(clinician: tuple[object, Study], api_for: Callable[..., APIClient]) -> None:
    user, study = clinician
    api = api_for(user)
    created = api.post("/api/v1/patients/", {"study": study.pk, "code": "C-001", "sex": "M", "birth_year": 1954,
                                             "admission_date": "2026-02-01", "name": "John Roe",
                                             "hospital_number": "H1"}, format="json")
    assert created.status_code == 201, created.data
    pid = created.data["id"]
    assert created.data["page_url"] == f"/patients/{pid}/"
    dup = api.post("/api/v1/patients/", {"study": study.pk, "code": "C-001"}, format="json")
    assert dup.status_code == 400 and "already used" in dup.data["error"]
    PatientFactory(study=study, code="C-002")
    assert [p["code"] for p in api.get(f"/api/v1/patients/?study={study.pk}").data["results"]] == ["C-001", "C-002"]
    exam = api.post("/api/v1/exams/", {"patient": pid, "acquired_at": "2026-02-02T08:30:00Z", "device": "Lumify"},
                    format="json")
    assert exam.status_code == 201, exam.data
    assert exam.data["protocol"] == "12-zone"  # inherited from the study
    assert exam.data["missing_zones"] == ["R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L4", "L5", "L6"]
    ExamFactory(patient=PatientFactory(study=study))
    listed = api.get(f"/api/v1/exams/?patient={pid}").data["results"]
    assert [e["id"] for e in listed] == [exam.data["id"]]
    assert api.get("/api/v1/exams/?patient=abc").status_code == 400


def test_blood_gas_units_are_normalised(clinician: tuple[object, Study], api_for: Callable[..., APIClient]) -> None:
    user, study = clinician
    patient = PatientFactory(study=study)
    api = api_for(user)
    url = f"/api/v1/patients/{patient.pk}/blood-gases/"
    kpa = api.post(url, {"sampled_at": "2026-02-02T08:00:00Z", "paco2": 6.0, "pao2": 9.5, "unit": "kPa",
                         "ph": 7.38, "fio2": 0.4}, format="json")
    assert kpa.status_code == 201, kpa.data
    assert kpa.data["paco2_mmhg"] == pytest.approx(6.0 * KPA_TO_MMHG)
    assert kpa.data["pao2_mmhg"] == pytest.approx(9.5 * KPA_TO_MMHG)
    assert kpa.data["unit_entered"] == "kPa"
    assert kpa.data["pf_ratio"] == pytest.approx(9.5 * KPA_TO_MMHG / 0.4)
    mmhg = api.post(url, {"sampled_at": "2026-02-03T08:00:00Z", "paco2": 41}, format="json")
    assert mmhg.data["paco2_mmhg"] == 41 and mmhg.data["unit_entered"] == "mmHg"
    # 41 "kPa" would be 307 mmHg: the unit is almost certainly wrong, say so.
    wrong = api.post(url, {"sampled_at": "2026-02-03T08:00:00Z", "paco2": 41, "unit": "kPa"}, format="json")
    assert wrong.status_code == 400 and "is the unit right?" in wrong.data["error"]
    bad_fio2 = api.post(url, {"sampled_at": "2026-02-03T08:00:00Z", "fio2": 40}, format="json")
    assert bad_fio2.status_code == 400 and "FiO2 40" in bad_fio2.data["error"]
    listing = api.get(url).data
    assert [round(g["paco2_mmhg"], 2) for g in listing] == [round(6.0 * KPA_TO_MMHG, 2), 41.0]
    assert BloodGas.objects.filter(patient=patient).count() == 2


def test_clinical_records(clinician: tuple[object, Study], api_for: Callable[..., APIClient]) -> None:
    user, study = clinician
    patient = PatientFactory(study=study)
    api = api_for(user)
    url = f"/api/v1/patients/{patient.pk}/clinical/"
    ok = api.post(url, {"recorded_at": "2026-02-02T08:00:00Z", "age": 71, "diabetes": True, "fever": True,
                        "oxygen_support": "hfnc", "spo2": 89, "respiratory_rate": 28}, format="json")
    assert ok.status_code == 201, ok.data
    assert ok.data["diabetes"] is True and ok.data["cough"] is None  # unknown stays unknown
    bad = api.post(url, {"recorded_at": "2026-02-02T08:00:00Z", "spo2": 120}, format="json")
    assert bad.status_code == 400 and "SpO2 120" in bad.data["error"]
    assert len(api.get(url).data) == 1


def test_openapi_schema_and_docs(clinician: tuple[object, Study], api_for: Callable[..., APIClient]) -> None:
    user, _ = clinician
    api = api_for(user)
    schema = api.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/auth/token/", "/api/v1/studies/", "/api/v1/studies/{id}/members/", "/api/v1/patients/",
                 "/api/v1/exams/", "/api/v1/exams/{id}/clips/", "/api/v1/clips/{id}/",
                 "/api/v1/patients/{id}/blood-gases/", "/api/v1/patients/{id}/clinical/"):
        assert path in paths, path
    docs = api.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert external_asset_refs(docs.content.decode()) == []  # assets are served locally (sidecar)
