"""Each role x each endpoint x own study / other study: allowed or denied, and no identifying
fields for researchers. Denied reads of another study answer 404 so its existence does not leak."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.readings.models import BlindRead, ExamSignature, ZoneReading
from patients.readings.services import imported_reading_set
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.studies.models import Membership, Role, Study
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory, ZoneReadingFactory
from tests.patients.conftest import png_bytes

pytestmark = pytest.mark.django_db

ROLES = ["study_admin", "clinician", "researcher"]


@dataclass
class World:
    user: Any
    own: dict[str, Any]
    other: dict[str, Any]


def _study_objects(owner: Any, label: str) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    study = StudyFactory(name=f"{label} study")
    Membership.objects.create(study=study, user=owner, role=Role.STUDY_ADMIN)
    patient = PatientFactory(study=study)
    exam = ExamFactory(patient=patient)
    clip = clip_ingest(exam=exam, upload=SimpleUploadedFile("a.png", png_bytes(hash(label) % 1000)),
                       zone="R1", by=owner).clip
    # A scored and rated clip, so that override and agreement have something to act on.
    from scoring.models import ClipScore, ModelVersion, ScoringJob

    version, _ = ModelVersion.objects.get_or_create(version="matrix-v1", defaults={"is_active": True})
    job = ScoringJob.objects.create(exam=exam, model_version=version, status="succeeded")
    ClipScore.objects.create(job=job, clip=clip, zone=clip.zone, model_version=version, score=1, probs=[0.1, 0.6, 0.2, 0.1],
                             findings={}, aggregator="ensemble", frame_count=1, frame_probs_f16=b"\x00" * 8)
    imported_reading_set(clip=clip, rater_name="second-reader", by=owner, score=2)
    # Two clinicians who disagree: the exam can be signed and the zone adjudicated.
    ZoneReadingFactory(clip=clip, rater=owner, score=1)
    ZoneReadingFactory(clip=clip, score=3)
    return {"study": study, "patient": patient, "exam": exam, "clip": clip}


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    role = request.param
    owner = UserFactory(username="owner")
    own = _study_objects(owner, "own")
    other = _study_objects(owner, "other")
    user = UserFactory(username=f"the_{role}")
    Membership.objects.create(study=own["study"], user=user, role=role)
    return World(user, own, other)


# (name, method, path template, body factory, expected status by role for own study, for other study)


def _all(code: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, code)


def _admin(ok: int, others: int = 403) -> dict[str, int]:
    return {"study_admin": ok, "clinician": others, "researcher": others}


def _writers(ok: int, researcher: int = 403) -> dict[str, int]:
    return {"study_admin": ok, "clinician": ok, "researcher": researcher}


Body = Callable[[dict[str, Any]], dict[str, Any]]
CASES: list[tuple[str, str, str, Body | None, dict[str, int], dict[str, int]]] = [
    ("study detail", "get", "/api/v1/studies/{study}/", None, _all(200), _all(404)),
    ("study update", "patch", "/api/v1/studies/{study}/", lambda o: {"description": "x"},
     {"study_admin": 200, "clinician": 403, "researcher": 403}, _all(404)),
    ("members list", "get", "/api/v1/studies/{study}/members/", None, _all(200), _all(404)),
    ("members add", "post", "/api/v1/studies/{study}/members/", lambda o: {"username": "owner", "role": "study_admin"},
     {"study_admin": 200, "clinician": 403, "researcher": 403}, _all(404)),
    ("patient detail", "get", "/api/v1/patients/{patient}/", None, _all(200), _all(404)),
    ("patient create", "post", "/api/v1/patients/", lambda o: {"study": o["study"].pk, "code": "NEW1"},
     _writers(201), _all(400)),
    ("patient update", "patch", "/api/v1/patients/{patient}/", lambda o: {"sex": "M"}, _writers(200), _all(404)),
    ("exam detail", "get", "/api/v1/exams/{exam}/", None, _all(200), _all(404)),
    ("exam create", "post", "/api/v1/exams/",
     lambda o: {"patient": o["patient"].pk, "acquired_at": "2026-03-02T10:00:00Z"}, _writers(201), _all(400)),
    ("exam delete", "delete", "/api/v1/exams/{exam}/", None, _writers(204), _all(404)),
    ("clip upload", "post", "/api/v1/exams/{exam}/clips/", "upload", _writers(202), _all(404)),
    ("clip upload via exam field", "post", "/api/v1/clips/", "upload-exam", _writers(202), _all(400)),
    ("clip detail", "get", "/api/v1/clips/{clip}/", None, _all(200), _all(404)),
    ("clip delete", "delete", "/api/v1/clips/{clip}/", None, _writers(204), _all(404)),
    ("blood gases list", "get", "/api/v1/patients/{patient}/blood-gases/", None, _all(200), _all(404)),
    ("blood gas create", "post", "/api/v1/patients/{patient}/blood-gases/",
     lambda o: {"sampled_at": "2026-03-02T10:00:00Z", "paco2": 6.1, "unit": "kPa"}, _writers(201), _all(404)),
    ("clinical list", "get", "/api/v1/patients/{patient}/clinical/", None, _all(200), _all(404)),
    ("clinical create", "post", "/api/v1/patients/{patient}/clinical/",
     lambda o: {"recorded_at": "2026-03-02T10:00:00Z", "spo2": 91}, _writers(201), _all(404)),
    ("study page", "page", "/studies/{study}/", None, _all(200), _all(404)),
    ("members page", "page", "/studies/{study}/members/", None, _all(200), _all(404)),
    ("patient page", "page", "/patients/{patient}/", None, _all(200), _all(404)),
    ("exam page", "page", "/exams/{exam}/", None, _all(200), _all(404)),
    ("clip page", "page", "/clips/{clip}/", None, _all(200), _all(404)),
    ("clip original", "page", "/clips/{clip}/original/", None, _all(200), _all(404)),
    ("clip frame", "page", "/clips/{clip}/frames/0.png", None, _all(200), _all(404)),
    ("clip strip", "page", "/clips/{clip}/strip.png", None, _all(200), _all(404)),
    # Dashboards (issue 6)
    ("study overview page", "page", "/studies/{study}/overview/", None, _all(200), _all(404)),
    ("study correlation page", "page", "/studies/{study}/correlation/", None, _all(200), _all(404)),
    ("study correlation api", "get", "/api/v1/studies/{study}/correlation/", None, _all(200), _all(404)),
    ("patient timeline page", "page", "/patients/{patient}/timeline/", None, _all(200), _all(404)),
    ("patient timeline api", "get", "/api/v1/patients/{patient}/timeline/", None, _all(200), _all(404)),
    ("patient correlation page", "page", "/patients/{patient}/correlation/", None, _all(200), _all(404)),
    ("patient correlation api", "get", "/api/v1/patients/{patient}/correlation/", None, _all(200), _all(404)),
    ("clip viewer page", "page", "/clips/{clip}/viewer/", None, _all(200), _all(404)),
    # Research and administration (issue 7)
    ("export api", "get", "/api/v1/studies/{study}/export/?level=zone", None, _all(200), _all(404)),
    ("export page", "page", "/studies/{study}/export/", None, _all(200), _all(404)),
    ("audit api", "get", "/api/v1/studies/{study}/audit/", None, _admin(200), _all(404)),
    ("audit page", "page", "/studies/{study}/audit/", None, _admin(200), _all(404)),
    ("agreement api", "get", "/api/v1/studies/{study}/agreement/", None, _all(200), _all(404)),
    ("agreement page", "page", "/studies/{study}/agreement/", None, _all(200), _all(404)),
    ("settings page", "page", "/studies/{study}/settings/", None, _admin(200), _all(404)),
    ("archive", "post", "/api/v1/studies/{study}/archive/", lambda o: {"archived": True}, _admin(200), _all(404)),
    ("score override", "post", "/api/v1/clips/{clip}/override/", lambda o: {"score": 2, "reason": "reviewed"},
     _writers(201), _all(404)),
    # Clinician-led scoring (issue 14)
    ("readings list", "get", "/api/v1/clips/{clip}/readings/", None, _all(200), _all(404)),
    ("reading create", "post", "/api/v1/clips/{clip}/readings/", lambda o: {"score": 2, "findings": {"b_lines": True}},
     _writers(201), _all(404)),
    ("zone record", "get", "/api/v1/clips/{clip}/record/", None, _all(200), _all(404)),
    ("adjudicate", "post", "/api/v1/clips/{clip}/adjudicate/", lambda o: {"score": 2}, _admin(201), _all(404)),
    ("exam sign", "post", "/api/v1/exams/{exam}/sign/", None, _writers(200), _all(404)),
    ("blind read start", "post", "/api/v1/exams/{exam}/blind/", None, _writers(200), _all(404)),
    ("blind read submit without one", "post", "/api/v1/exams/{exam}/blind/submit/", None, _writers(400),
     _all(404)),
    ("exam history", "get", "/api/v1/exams/{exam}/history/", None, _all(200), _all(404)),
    ("worklist api", "get", "/api/v1/studies/{study}/worklist/", None, _all(200), _all(404)),
    ("disagreements api", "get", "/api/v1/studies/{study}/disagreements/", None, _all(200), _all(404)),
]


def _request(world: World, api: APIClient, page: Client, case: tuple[Any, ...], scope: str) -> Any:
    _name, method, template, body, *_ = case
    objs = world.own if scope == "own" else world.other
    path = template.format(**{k: v.pk for k, v in objs.items()})
    if method == "page":
        return page.get(path)
    if body in ("upload", "upload-exam"):
        from django.core.files.uploadedfile import SimpleUploadedFile

        data: dict[str, Any] = {"zone": "L1", "file": SimpleUploadedFile("b.png", png_bytes(77))}
        if body == "upload-exam":
            data["exam"] = objs["exam"].pk
        return api.post(path, data, format="multipart")
    payload = body(objs) if callable(body) else None
    return getattr(api, method)(path, payload, format="json") if payload is not None else getattr(api, method)(path)


@pytest.mark.parametrize("world", ROLES, indirect=True)
@pytest.mark.parametrize("scope", ["own", "other"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matrix(world: World, scope: str, case: tuple[Any, ...], api_for: Callable[..., APIClient]) -> None:
    role = next(m.role for m in Membership.objects.filter(user=world.user))
    expected = (case[4] if scope == "own" else case[5])[role]
    page = Client()
    page.force_login(world.user)
    counts_before = _counts()
    response = _request(world, api_for(world.user), page, case, scope)
    assert response.status_code == expected, (case[0], role, scope, getattr(response, "data", None))
    if expected >= 400:
        # A denied request changes nothing.
        assert _counts() == counts_before
        if response.status_code != 404 and hasattr(response, "data"):
            assert response.data["error"]


def _counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (Study, Membership, Patient, Exam, ZoneClip, BloodGas, ClinicalInfo,
                                             ZoneReading, ExamSignature, BlindRead)) + (
        Study.objects.filter(archived=True).count(),)


@pytest.mark.parametrize("world", ROLES, indirect=True)
def test_study_and_patient_lists_are_scoped(world: World, api_for: Callable[..., APIClient]) -> None:
    api = api_for(world.user)
    studies = api.get("/api/v1/studies/").data["results"]
    assert [s["id"] for s in studies] == [world.own["study"].pk]
    patients = api.get("/api/v1/patients/").data["results"]
    assert [p["id"] for p in patients] == [world.own["patient"].pk]
    assert api.get(f"/api/v1/patients/?study={world.other['study'].pk}").data["results"] == []
    assert api.get(f"/api/v1/exams/?patient={world.other['patient'].pk}").data["results"] == []
    assert [c["id"] for c in api.get("/api/v1/clips/").data["results"]] == [world.own["clip"].pk]


@pytest.mark.parametrize("world", ROLES, indirect=True)
def test_identifying_fields_only_for_clinicians_and_admins(world: World, api_for: Callable[..., APIClient]) -> None:
    role = Membership.objects.get(user=world.user).role
    api = api_for(world.user)
    patient = world.own["patient"]
    detail = api.get(f"/api/v1/patients/{patient.pk}/").data
    listed = api.get(f"/api/v1/patients/?study={patient.study_id}").data["results"][0]
    page = Client()
    page.force_login(world.user)
    html = page.get(f"/patients/{patient.pk}/").content.decode() + page.get(f"/studies/{patient.study_id}/").content.decode()
    if role == "researcher":
        for data in (detail, listed):
            assert "name" not in data and "hospital_number" not in data
        assert patient.name not in html and patient.hospital_number not in html
        assert patient.name not in str(api.get(f"/api/v1/exams/{world.own['exam'].pk}/").data)
    else:
        assert detail["name"] == patient.name and detail["hospital_number"] == patient.hospital_number
        assert listed["name"] == patient.name
        assert patient.name in html and patient.hospital_number in html


def test_anonymous_is_refused_everywhere(client: Client) -> None:
    for path in ("/api/v1/studies/", "/api/v1/patients/", "/api/v1/exams/", "/api/v1/clips/"):
        assert APIClient().get(path).status_code == 401
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("role", ROLES)
def test_archived_study_is_read_only(role: str, api_for: Callable[..., APIClient]) -> None:
    study = StudyFactory(archived=True)
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=role)
    patient = PatientFactory(study=study)
    api = api_for(user)
    assert api.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    response = api.post("/api/v1/patients/", {"study": study.pk, "code": "X9"}, format="json")
    assert response.status_code == 403
    assert "archived" in response.data["error"] or "read-only" in response.data["error"]
    assert not Patient.objects.filter(code="X9").exists()
