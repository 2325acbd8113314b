"""Audit trail: every kind of event, old/new values, scoping to the admin's own studies, filters."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from patients.audit.middleware import AuditContextMiddleware
from patients.audit.models import AuditEvent
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.services import clip_delete
from patients.readings.services import score_override_create
from patients.records.services import (
    blood_gas_create,
    clinical_info_create,
    exam_create,
    exam_delete,
    exam_update,
    patient_create,
    patient_update,
)
from patients.studies.models import Membership, Role, Study
from patients.studies.services import membership_remove, membership_set, study_create, study_set_archived, study_update
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory, members_by_role
from tests.patients.conftest import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    study = StudyFactory(protocol="12-zone", deidentify=False)
    users = members_by_role(study, "aud-{role}")
    other = StudyFactory(protocol="12-zone")
    other_admin = UserFactory(username="aud-other-admin")
    Membership.objects.create(study=other, user=other_admin, role=Role.STUDY_ADMIN)
    return {"study": study, "users": users, "other": other, "other_admin": other_admin}


def _events(study: Study, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(study=study, action=action).order_by("pk"))


def test_creates_updates_and_deletes_are_recorded_with_old_and_new_values(world: dict[str, Any]) -> None:
    study, clinician = world["study"], world["users"][Role.CLINICIAN]
    patient = patient_create(study=study, code="A-1", by=clinician, name="Ann Example", birth_year=1950)
    created = _events(study, "create")[-1]
    assert (created.actor, created.object_type, created.object_id) == (clinician, "patient", str(patient.pk))
    assert created.changes["name"] == {"old": None, "new": "Ann Example"}
    patient_update(patient=patient, by=clinician, birth_year=1951, sex="F")
    updated = _events(study, "update")[-1]
    assert updated.changes == {"birth_year": {"old": 1950, "new": 1951}, "sex": {"old": "U", "new": "F"}}
    exam = exam_create(patient=patient, acquired_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), by=clinician)
    exam_update(exam=exam, by=clinician, device="Lumify")
    assert _events(study, "update")[-1].changes == {"device": {"old": "", "new": "Lumify"}}
    import io

    clip = clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(1)), zone="R1", by=clinician,
                                filename="a.png").clip
    assert _events(study, "create")[-1].object_type == "zoneclip"
    clinical_info_create(patient=patient, by=clinician, recorded_at=exam.acquired_at, spo2=90.0)
    blood_gas_create(patient=patient, by=clinician, sampled_at=exam.acquired_at, paco2=6.0, unit="kPa")
    gas = _events(study, "create")[-1]
    assert gas.object_type == "bloodgas" and gas.changes["unit_entered"]["new"] == "kPa"
    clip_id = clip.pk
    clip_delete(clip=clip, by=clinician)
    deleted = _events(study, "delete")[-1]
    assert (deleted.object_type, deleted.object_id, deleted.changes["zone"]) == ("zoneclip", str(clip_id),
                                                                                {"old": "R1", "new": None})
    exam_delete(exam=exam, by=clinician)
    assert _events(study, "delete")[-1].object_type == "exam"


def test_membership_and_study_changes(world: dict[str, Any]) -> None:
    study, admin = world["study"], world["users"][Role.STUDY_ADMIN]
    newcomer = UserFactory(username="aud-new")
    membership_set(study=study, username="aud-new", role=Role.RESEARCHER, by=admin)
    membership_set(study=study, username="aud-new", role=Role.CLINICIAN, by=admin)
    membership_remove(study=study, username="aud-new", by=admin)
    changes = [(e.action, e.object_id, e.changes["role"]) for e in AuditEvent.objects.filter(
        study=study, object_type="membership").order_by("pk")]
    assert changes == [
        ("create", "aud-new", {"old": None, "new": "researcher"}),
        ("update", "aud-new", {"old": "researcher", "new": "clinician"}),
        ("delete", "aud-new", {"old": "clinician", "new": None}),
    ]
    assert not Membership.objects.filter(user=newcomer).exists()
    study_update(study=study, by=admin, deidentify=True, description="ward 5")
    assert _events(study, "update")[-1].changes == {"deidentify": {"old": False, "new": True},
                                                     "description": {"old": "", "new": "ward 5"}}
    study_set_archived(study=study, archived=True, by=admin)
    assert _events(study, "update")[-1].changes == {"archived": {"old": False, "new": True}}


def test_study_creation_is_recorded(world: dict[str, Any]) -> None:
    creator = UserFactory(username="aud-creator")
    creator.user_permissions.add(Permission.objects.get(codename="add_study"))
    creator = type(creator).objects.get(pk=creator.pk)
    study = study_create(name="Audited", protocol="8-zone", created_by=creator)
    event = AuditEvent.objects.get(study=study, action="create")
    assert event.changes["protocol"] == {"old": None, "new": "8-zone"} and len(study.secret) == 64


def test_viewing_identifying_data_is_recorded(world: dict[str, Any], client: Any,
                                              api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    patient = PatientFactory(study=study)
    client.force_login(users[Role.CLINICIAN])
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    assert client.get(f"/studies/{study.pk}/").status_code == 200
    api = api_for(users[Role.STUDY_ADMIN])
    assert api.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    assert api.get(f"/api/v1/patients/?study={study.pk}").status_code == 200
    events = _events(study, "view_identifying")
    assert [(e.actor.username, e.object_type, e.object_id) for e in events] == [
        ("aud-clinician", "patient", str(patient.pk)),
        ("aud-clinician", "patient", "list"),
        ("aud-study_admin", "patient", str(patient.pk)),
        ("aud-study_admin", "patient", "list"),
    ]
    assert events[1].row_count == 1 and events[3].changes["patients"] == [patient.pk]
    # Researchers never see identifying data, so nothing to record.
    client.force_login(users[Role.RESEARCHER])
    client.get(f"/patients/{patient.pk}/")
    api_for(users[Role.RESEARCHER]).get(f"/api/v1/patients/{patient.pk}/")
    assert len(_events(study, "view_identifying")) == 4


def test_overrides_and_logins_are_recorded(world: dict[str, Any], client: Any) -> None:
    study, clinician = world["study"], world["users"][Role.CLINICIAN]
    exam = ExamFactory(patient=PatientFactory(study=study))
    clip = ZoneClip.objects.create(exam=exam, zone="R1", file="x", frames="y", sha256="s", size_bytes=1,
                                   format="png", frame_count=1, rows=1, columns=1)
    score_override_create(clip=clip, score=2, reason="confluent B-lines", by=clinician)
    score_override_create(clip=clip, score=3, reason="white lung", by=clinician)
    events = _events(study, "override")
    assert events[0].changes["score"] == {"old": None, "new": 2}
    assert events[1].changes["score"] == {"old": 2, "new": 3}
    assert events[1].changes["reason"] == {"old": "confluent B-lines", "new": "white lung"}
    response = client.post("/login/", {"username": "aud-clinician", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    login = AuditEvent.objects.get(action="login")
    assert login.actor == clinician and login.study is None and login.ip == "127.0.0.1"


def test_export_events_carry_the_row_count(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study = world["study"]
    PatientFactory(study=study)
    response = api_for(world["users"][Role.RESEARCHER]).get(f"/api/v1/studies/{study.pk}/export/?level=patient")
    b"".join(response.streaming_content)
    event = AuditEvent.objects.get(action="export")
    assert (event.row_count, event.actor.username, event.changes["level"]) == (1, "aud-researcher", "patient")


def test_middleware_records_the_client_address(world: dict[str, Any], rf: Any) -> None:
    request = rf.get("/", REMOTE_ADDR="10.1.2.3")

    def view(_request: Any) -> Any:
        study_update(study=world["study"], by=world["users"][Role.STUDY_ADMIN], description="x")
        return None

    AuditContextMiddleware(view)(request)
    assert _events(world["study"], "update")[-1].ip == "10.1.2.3"


# --- reading the trail --------------------------------------------------------------------------


def test_api_is_for_the_study_admins_of_that_study(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    patient_create(study=study, code="X", by=users[Role.CLINICIAN])
    admin_api = api_for(users[Role.STUDY_ADMIN])
    data = admin_api.get(f"/api/v1/studies/{study.pk}/audit/").json()
    assert data["count"] == 1 and data["results"][0]["actor"] == "aud-clinician"
    assert set(data["results"][0]) == {"id", "at", "actor", "action", "object_type", "object_id", "changes",
                                       "row_count", "ip"}
    assert api_for(users[Role.CLINICIAN]).get(f"/api/v1/studies/{study.pk}/audit/").status_code == 403
    assert api_for(users[Role.RESEARCHER]).get(f"/api/v1/studies/{study.pk}/audit/").status_code == 403
    # Another study's admin cannot see this log (nor learn the study exists) ...
    other_api = api_for(world["other_admin"])
    assert other_api.get(f"/api/v1/studies/{study.pk}/audit/").status_code == 404
    # ... and their own log does not contain this study's events.
    assert other_api.get(f"/api/v1/studies/{world['other'].pk}/audit/").json()["count"] == 0


def test_filters_and_their_errors(world: dict[str, Any], api_for: Callable[..., APIClient]) -> None:
    study, users = world["study"], world["users"]
    patient_create(study=study, code="F1", by=users[Role.CLINICIAN])
    study_update(study=study, by=users[Role.STUDY_ADMIN], description="d")
    api = api_for(users[Role.STUDY_ADMIN])
    url = f"/api/v1/studies/{study.pk}/audit/"
    assert [r["action"] for r in api.get(url, {"action": "update"}).json()["results"]] == ["update"]
    assert [r["actor"] for r in api.get(url, {"user": "aud-clinician"}).json()["results"]] == ["aud-clinician"]
    today = dt.date.today().isoformat()
    assert api.get(url, {"since": today, "until": today}).json()["count"] == 2
    assert api.get(url, {"until": "2000-01-01"}).json()["count"] == 0
    for params, message in (({"action": "peek"}, "action='peek': expected one of"),
                            ({"since": "yesterday"}, "since='yesterday' is not a date"),
                            ({"since": "2026-02-02", "until": "2026-01-01"}, "since=2026-02-02 is after until")):
        response = api.get(url, params)
        assert response.status_code == 400 and message in response.json()["error"]


def test_audit_page(world: dict[str, Any], client: Any) -> None:
    study, users = world["study"], world["users"]
    patient_create(study=study, code="P-page", by=users[Role.CLINICIAN])
    client.force_login(users[Role.STUDY_ADMIN])
    page = client.get(f"/studies/{study.pk}/audit/", {"action": "create"})
    assert page.status_code == 200 and b"aud-clinician" in page.content and b'data-action="create"' in page.content
    bad = client.get(f"/studies/{study.pk}/audit/", {"since": "nope"})
    assert bad.status_code == 400 and b"since=&#x27;nope&#x27; is not a date" in bad.content
    client.force_login(users[Role.CLINICIAN])
    assert client.get(f"/studies/{study.pk}/audit/").status_code == 403
    client.force_login(world["other_admin"])
    assert client.get(f"/studies/{study.pk}/audit/").status_code == 404
