"""STOW-RS (``POST /dicomweb/studies``): each part filed through the receiver and the upload's
ingest, the Store Instances Response in DICOM JSON, per-part failures that store nothing, and
studies the user may not write to."""
from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from patients.audit.models import AuditEvent
from patients.imaging.models import ZoneClip
from patients.imaging.process import clip_process
from patients.receiving.models import InboxItem
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from tests.factories import PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import stored_files
from tests.patients.receiving.dicomweb_kit import instance, multipart, sequence, stow, uids, value

pytestmark = pytest.mark.django_db

REFERENCED, FAILED, REASON = "00081199", "00081198", "00081197"
SOP_CLASS, SOP_INSTANCE = "00081150", "00081155"


@pytest.fixture
def world(api_for: Callable[..., APIClient]) -> SimpleNamespace:
    study = StudyFactory(deidentify=False)
    patient = PatientFactory(study=study, hospital_number="H-100")
    users = {role: UserFactory() for role in (Role.CLINICIAN, Role.RESEARCHER)}
    for role, user in users.items():
        Membership.objects.create(study=study, user=user, role=role)
    outsider = UserFactory()
    Membership.objects.create(study=StudyFactory(), user=outsider, role=Role.CLINICIAN)
    return SimpleNamespace(study=study, patient=patient, clinician=users[Role.CLINICIAN],
                           api=api_for(users[Role.CLINICIAN]), researcher=api_for(users[Role.RESEARCHER]),
                           outsider=api_for(outsider), api_for=api_for)


def _nothing_stored() -> bool:
    return not ZoneClip.all_objects.exists() and not InboxItem.objects.exists() and not stored_files()


def test_stored_instances_go_through_the_ingest_and_end_ready(world: SimpleNamespace) -> None:
    uid = str(generate_uid())
    r1, r2 = (instance(patient_id="H-100", zone=z, study_uid=uid, seed=i) for i, z in enumerate(("R1", "L2")))
    response = stow(world.api, multipart(r1, r2))
    assert response.status_code == 200, response.content[:400]
    assert response["Content-Type"].startswith("application/dicom+json")
    answer = response.json()
    assert FAILED not in answer
    stored = sequence(answer, REFERENCED)
    assert [(value(i, SOP_CLASS), value(i, SOP_INSTANCE)) for i in stored] == [uids(r1)[:2], uids(r2)[:2]]
    exam = Exam.objects.get(patient=world.patient)
    assert exam.study_instance_uid == uid  # the DICOM study is the exam
    pending = list(ZoneClip.all_objects.filter(exam=exam).order_by("zone"))
    assert [(c.zone, c.status, c.uploaded_by) for c in pending] == [("L2", "pending", world.clinician),
                                                                     ("R1", "pending", world.clinician)]
    for clip in pending:  # what the ingest worker runs
        assert clip_process(clip_id=clip.pk) is not None
    ready = {c.zone: c for c in ZoneClip.objects.filter(exam=exam)}
    assert sorted(ready) == ["L2", "R1"] and all(c.frame_count == 3 for c in ready.values())
    assert ready["R1"].sop_instance_uid == uids(r1)[1]
    assert AuditEvent.objects.filter(action="create", object_type="zoneclip", actor=world.clinician).count() == 2
    # The same instance again answers with the clip already holding it: stored, nothing new.
    again = stow(world.api, multipart(r1))
    assert again.status_code == 200 and ZoneClip.all_objects.count() == 2


def test_a_bad_part_fails_alone_and_stores_nothing(world: SimpleNamespace) -> None:
    good = instance(patient_id="H-100", zone="R3")
    cut = instance(patient_id="H-100", zone="R4", seed=5)[:-4000]  # pixel data shorter than its header says
    response = stow(world.api, multipart(good, b"this is not DICOM at all", cut))
    assert response.status_code == 202, response.content[:400]
    answer = response.json()
    assert [value(i, SOP_INSTANCE) for i in sequence(answer, REFERENCED)] == [uids(good)[1]]
    failed = sequence(answer, FAILED)
    assert [(value(i, SOP_INSTANCE), value(i, REASON)) for i in failed] == [(None, 0xC000), (uids(cut)[1], 0xC000)]
    assert failed[1][REASON]["vr"] == "US"
    assert [c.zone for c in ZoneClip.all_objects.all()] == ["R3"] and not InboxItem.objects.exists()
    assert len(stored_files()) == 1  # the good part's upload only
    assert "pixel data" in response["Warning"]


def test_all_parts_failing_answer_409(world: SimpleNamespace) -> None:
    response = stow(world.api, multipart(b"garbage", ("text/plain", b"hello")))
    assert response.status_code == 409
    assert [value(i, REASON) for i in sequence(response.json(), FAILED)] == [0xC000, 0xC000]
    assert _nothing_stored()


def test_the_study_form_refuses_instances_of_another_study_uid(world: SimpleNamespace) -> None:
    uid = str(generate_uid())
    mine, other = instance(patient_id="H-100", zone="R1", study_uid=uid), instance(patient_id="H-100", zone="R2")
    response = stow(world.api, multipart(mine, other), path=f"/dicomweb/studies/{uid}")
    assert response.status_code == 202
    failed = sequence(response.json(), FAILED)
    assert [(value(i, SOP_INSTANCE), value(i, REASON)) for i in failed] == [(uids(other)[1], 0xA900)]
    assert [c.zone for c in ZoneClip.all_objects.all()] == ["R1"]


def test_unresolved_instances_wait_in_the_inbox(world: SimpleNamespace) -> None:
    data = instance(patient_id="UNKNOWN-7", zone="R5")
    response = stow(world.api, multipart(data))
    assert response.status_code == 200
    assert [value(i, SOP_INSTANCE) for i in sequence(response.json(), REFERENCED)] == [uids(data)[1]]
    item = InboxItem.objects.get()
    assert (item.state, item.received_via, item.patient_identifier, item.zone_hint) == ("waiting", "stow",
                                                                                       "UNKNOWN-7", "R5")
    assert "UNKNOWN-7" in item.reason and "inbox" in response["Warning"]
    assert not ZoneClip.all_objects.exists()


def test_media_type_and_malformed_bodies(world: SimpleNamespace) -> None:
    data = instance(patient_id="H-100", zone="R1")
    assert stow(world.api, data, content_type="application/dicom").status_code == 415
    json_type = 'multipart/related; type="application/dicom+json"; boundary=x'
    assert stow(world.api, multipart(data), content_type=json_type).status_code == 415
    cut_short = multipart(data)[:-30]  # no closing boundary
    response = stow(world.api, cut_short)
    assert response.status_code == 400 and response.json()["code"] == "malformed_multipart"
    assert stow(world.api, b"no boundary here").status_code == 400
    assert stow(world.api, multipart(data), content_type='multipart/related; type="application/dicom"').status_code \
        == 400
    assert _nothing_stored()


def test_other_studies_are_refused_and_nothing_is_stored(world: SimpleNamespace) -> None:
    body = multipart(instance(patient_id="H-100", zone="R1"))
    assert stow(world.outsider, body, study=world.study.pk).status_code == 404
    assert stow(world.researcher, body, study=world.study.pk).status_code == 403
    assert stow(world.researcher, body).status_code == 403  # writes to no study
    assert stow(APIClient(), body).status_code in (401, 403)
    assert _nothing_stored()
    second = StudyFactory()
    Membership.objects.create(study=second, user=world.clinician, role=Role.CLINICIAN)
    response = stow(world.api, body)
    assert response.status_code == 400 and response.json()["code"] == "missing_study"
    assert stow(world.api, body, study=world.study.pk).status_code == 200
    assert ZoneClip.all_objects.get().exam.patient == world.patient


def test_session_authentication_needs_the_csrf_token(world: SimpleNamespace, client: Any) -> None:
    client.force_login(world.clinician)
    body = multipart(instance(patient_id="H-100", zone="R1"))
    csrf = APIClient(enforce_csrf_checks=True)
    csrf.force_login(world.clinician)
    assert stow(csrf, body).status_code == 403  # a page's session without its token cannot post
    assert _nothing_stored()
