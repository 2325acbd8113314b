"""The study inbox: received instances the rules could not file, assigned on one screen (or the
API) to patient, exam and zone through the upload's ingest, or discarded; the held file goes
either way. Writers only: researchers 403, outsiders 404."""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from patients.audit.models import AuditEvent
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.process import clip_process
from patients.receiving.models import InboxItem
from patients.receiving.services import instance_receive
from patients.records.models import Exam
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import stored_files
from tests.patients.receiving.dicomweb_kit import instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_for: Callable[..., APIClient]) -> SimpleNamespace:
    study = StudyFactory(deidentify=False)
    users = {role: UserFactory() for role in (Role.CLINICIAN, Role.RESEARCHER)}
    for role, user in users.items():
        Membership.objects.create(study=study, user=user, role=role)
    outsider = UserFactory()
    patient = PatientFactory(study=study, code="P-7", hospital_number="H-7")
    exam = ExamFactory(patient=patient)
    uid = str(generate_uid())
    received = instance_receive(study=study, data=instance(patient_id="NOBODY", zone="R3", study_uid=uid),
                                via="dimse", calling_aet="US01")
    assert received.kind == "inbox" and received.inbox is not None
    pages = {}
    for name, user in (("clinician", users[Role.CLINICIAN]), ("researcher", users[Role.RESEARCHER]),
                       ("outsider", outsider)):
        pages[name] = Client()
        pages[name].force_login(user)
    return SimpleNamespace(study=study, patient=patient, exam=exam, uid=uid, item=received.inbox,
                           clinician=users[Role.CLINICIAN], pages=pages, api=api_for(users[Role.CLINICIAN]),
                           researcher=api_for(users[Role.RESEARCHER]), outsider=api_for(outsider))


def _held(item: InboxItem) -> Path:
    return Path(item.file.path)


def test_the_page_shows_what_the_sender_said_to_writers_only(world: SimpleNamespace) -> None:
    response = world.pages["clinician"].get(f"/studies/{world.study.pk}/inbox/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="inbox-item-{world.item.pk}"' in page and "NOBODY" in page and "US01" in page
    assert "Lung R3" in page and world.item.reason.replace("'", "&#x27;") in page
    assert '<option selected>R3</option>' in page  # the zone the rule read, preselected
    assert world.pages["researcher"].get(f"/studies/{world.study.pk}/inbox/").status_code == 403
    assert world.pages["outsider"].get(f"/studies/{world.study.pk}/inbox/").status_code == 404
    study_page = world.pages["clinician"].get(world.study.get_absolute_url()).content.decode()
    assert 'id="inbox-link"' in study_page and "1 received instance</strong>" in study_page
    assert 'id="inbox-link"' not in world.pages["researcher"].get(world.study.get_absolute_url()).content.decode()


def test_assigning_on_the_page_makes_a_ready_clip_of_a_new_exam(world: SimpleNamespace,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    held = _held(world.item)
    assert held.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = world.pages["clinician"].post(f"/inbox/{world.item.pk}/assign/", {
            "patient": world.patient.pk, "exam": "new", "exam_acquired_at": "2026-03-05T09:15", "zone": "L4"})
    assert response.status_code == 302 and response["Location"] == f"/studies/{world.study.pk}/inbox/"
    item = InboxItem.objects.get(pk=world.item.pk)
    assert (item.state, item.patient, item.resolved_by, item.file.name) == ("assigned", world.patient,
                                                                            world.clinician, "")
    assert not held.exists()  # the held file is removed once the assignment commits
    new_exam = item.exam
    assert new_exam is not None and new_exam != world.exam
    assert timezone.localtime(new_exam.acquired_at).replace(tzinfo=None) == dt.datetime(2026, 3, 5, 9, 15)
    assert new_exam.study_instance_uid == world.uid  # later instances of this DICOM study find the exam
    assert item.clip is not None and (item.clip.status, item.clip.zone) == ("pending", "L4")
    assert clip_process(clip_id=item.clip.pk) is not None  # the ingest worker's check
    clip = ZoneClip.objects.get(pk=item.clip.pk)
    assert (clip.exam, clip.zone, clip.frame_count, clip.study_instance_uid) == (new_exam, "L4", 3, world.uid)
    event = AuditEvent.objects.get(object_type="inboxitem", action="update")
    assert event.changes["state"] == {"old": "waiting", "new": "assigned"} and event.actor == world.clinician
    assert not InboxItem.objects.filter(state="waiting").exists()


def test_assigning_through_the_api_to_an_existing_exam(world: SimpleNamespace,
                                                        django_capture_on_commit_callbacks: Any) -> None:
    listing = world.api.get(f"/api/v1/studies/{world.study.pk}/inbox/")
    assert listing.status_code == 200 and listing.data["count"] == 1
    assert listing.data["items"][0]["patient_identifier"] == "NOBODY"
    assert world.researcher.get(f"/api/v1/studies/{world.study.pk}/inbox/").status_code == 403
    assert world.outsider.get(f"/api/v1/studies/{world.study.pk}/inbox/").status_code == 404
    body = {"patient": world.patient.pk, "exam": world.exam.pk, "zone": "r2"}
    assert world.researcher.post(f"/api/v1/inbox/{world.item.pk}/assign/", body, format="json").status_code == 403
    assert world.outsider.post(f"/api/v1/inbox/{world.item.pk}/assign/", body, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = world.api.post(f"/api/v1/inbox/{world.item.pk}/assign/", body, format="json")
    assert response.status_code == 202, response.data
    assert response.data["item"]["state"] == "assigned" and response.data["clip"]["zone"] == "R2"
    assert response["Location"] == f"/api/v1/clips/{response.data['clip']['id']}/"
    clip_process(clip_id=response.data["clip"]["id"])
    assert [(c.exam, c.zone) for c in ZoneClip.objects.all()] == [(world.exam, "R2")]
    assert Exam.objects.count() == 1 and not _held(world.item).exists()
    again = world.api.post(f"/api/v1/inbox/{world.item.pk}/assign/", body, format="json")
    assert again.status_code == 409 and again.data["code"] == "not_waiting"


def test_refused_assignments_leave_the_item_waiting(world: SimpleNamespace) -> None:
    data = instance(patient_id="H-7", zone="R1", seed=9)
    clip_ingest(exam=world.exam, upload=io.BytesIO(data), zone="R1", by=world.clinician)
    other = ExamFactory(patient=PatientFactory(study=world.study))
    foreign = PatientFactory(study=StudyFactory())
    url = f"/api/v1/inbox/{world.item.pk}/assign/"
    refusals = [
        ({"patient": world.patient.pk, "exam": world.exam.pk, "zone": "R1"}, 409, "zone_occupied"),
        ({"patient": world.patient.pk, "exam": other.pk, "zone": "R2"}, 400, "bad_exam"),
        ({"patient": foreign.pk, "exam_acquired_at": "2026-03-05T09:00:00Z", "zone": "R2"}, 400, "bad_patient"),
        ({"patient": world.patient.pk, "exam_acquired_at": "2026-03-05T09:00:00Z", "zone": "Q9"}, 400, "bad_zone"),
    ]
    for body, status, code in refusals:
        response = world.api.post(url, body, format="json")
        assert (response.status_code, response.data.get("code")) == (status, code), (body, response.data)
    item = InboxItem.objects.get(pk=world.item.pk)
    assert item.state == "waiting" and _held(item).exists()
    assert Exam.objects.count() == 2 and ZoneClip.all_objects.count() == 1  # no new exam, no new clip


def test_discarding_removes_the_held_file(world: SimpleNamespace, django_capture_on_commit_callbacks: Any) -> None:
    held = _held(world.item)
    assert world.researcher.post(f"/api/v1/inbox/{world.item.pk}/discard/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = world.api.post(f"/api/v1/inbox/{world.item.pk}/discard/")
    assert response.status_code == 200 and response.data["state"] == "discarded"
    assert not held.exists() and InboxItem.objects.get().file.name == ""
    assert world.api.post(f"/api/v1/inbox/{world.item.pk}/discard/").status_code == 409
    assert AuditEvent.objects.filter(object_type="inboxitem", action="update",
                                     changes__state__new="discarded").count() == 1
    # The page's discard button does the same for another item.
    second = instance_receive(study=world.study, data=instance(patient_id="NOBODY", zone="R4", seed=3),
                              via="stow", by=world.clinician).inbox
    assert second is not None
    with django_capture_on_commit_callbacks(execute=True):
        page = world.pages["clinician"].post(f"/inbox/{second.pk}/discard/")
    assert page.status_code == 302 and not _held(second).exists()
    assert InboxItem.objects.get(pk=second.pk).state == "discarded"


def test_a_series_is_assigned_together_or_not_at_all(world: SimpleNamespace,
                                                     django_capture_on_commit_callbacks: Any) -> None:
    series, uid = str(generate_uid()), str(generate_uid())
    items = [instance_receive(study=world.study, via="stow", by=world.clinician,
                              data=instance(patient_id="NOBODY", zone=z, study_uid=uid, series_uid=series,
                                            seed=10 + n)).inbox for n, z in enumerate(("L1", "L2"))]
    assert all(i is not None and i.series_instance_uid == series for i in items)
    page = world.pages["clinician"].get(f"/studies/{world.study.pk}/inbox/").content.decode()
    assert f'data-series="{series}"' in page and "2 instances" in page
    url, exams_before = f"/studies/{world.study.pk}/inbox/assign/", Exam.objects.count()
    post = {"patient": world.patient.pk, "exam": "new", "exam_acquired_at": "2026-03-06T08:00",
            "items": [i.pk for i in items], **{f"zone-{i.pk}": "L3" for i in items}}  # both in one zone
    response = world.pages["clinician"].post(url, post, follow=True)
    assert "Nothing was filed" in response.content.decode()
    assert InboxItem.objects.filter(pk__in=[i.pk for i in items], state="waiting").count() == 2
    assert all(_held(i).exists() for i in items) and Exam.objects.count() == exams_before
    assert not ZoneClip.all_objects.exists()
    assert {p.relative_to(settings.MEDIA_ROOT).parts[0] for p in stored_files()} == {"inbox"}  # no clip upload left
    post.update({f"zone-{items[0].pk}": "L1", f"zone-{items[1].pk}": "L2"})
    with django_capture_on_commit_callbacks(execute=True):
        world.pages["clinician"].post(url, post)
    assigned = [InboxItem.objects.get(pk=i.pk) for i in items]
    assert {a.state for a in assigned} == {"assigned"} and not any(_held(i).exists() for i in items)
    for a in assigned:
        assert a.clip is not None
        clip_process(clip_id=a.clip.pk)
    exam = Exam.objects.get(study_instance_uid=uid)
    assert sorted(exam.clips.values_list("zone", flat=True)) == ["L1", "L2"]
    assert InboxItem.objects.get(pk=world.item.pk).state == "waiting"  # the other series still waits
