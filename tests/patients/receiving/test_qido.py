"""QIDO-RS: the user's exams as DICOM studies and their clips as series, in DICOM JSON; only the
user's studies; identity and dates as the role may see them; the common matching keys."""
from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.imaging.process import clip_process
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.receiving.dicomweb_kit import instance, multipart, stow, value

pytestmark = pytest.mark.django_db

STUDY_UID, SERIES_UID, PATIENT_ID, PATIENT_NAME, STUDY_DATE = "0020000D", "0020000E", "00100020", "00100010", "00080020"


def _exam_with_clip(study: Any, user: Any, when: dt.datetime, **patient: Any) -> tuple[Any, ZoneClip, str, str]:
    exam = ExamFactory(patient=PatientFactory(study=study, **patient), acquired_at=when)
    uid, series = str(generate_uid()), str(generate_uid())
    data = instance(patient_id="x", zone="R1", study_uid=uid, series_uid=series)
    clip = clip_ingest(exam=exam, upload=io.BytesIO(data), zone="R1", by=user).clip
    return exam, clip, uid, series


@pytest.fixture
def world(api_for: Callable[..., APIClient]) -> SimpleNamespace:
    user, admin = UserFactory(), UserFactory()
    when = timezone.make_aware(dt.datetime(2026, 3, 5, 10, 30))
    ward = StudyFactory(deidentify=False)
    research = StudyFactory(deidentify=True)
    foreign = StudyFactory(deidentify=False)
    Membership.objects.create(study=ward, user=user, role=Role.CLINICIAN)
    Membership.objects.create(study=research, user=user, role=Role.RESEARCHER)
    for study in (research, foreign):
        Membership.objects.create(study=study, user=admin, role=Role.STUDY_ADMIN)
    a_exam, a_clip, a_uid, a_series = _exam_with_clip(ward, user, when, code="A001", hospital_number="H-1",
                                                      name="Ann Lee")
    _b_exam, b_clip, b_uid, _ = _exam_with_clip(research, admin, when, code="B001", hospital_number="H-2",
                                                name="Bob Roe")
    _c_exam, c_clip, c_uid, _ = _exam_with_clip(foreign, admin, when, code="C001", hospital_number="H-3")
    ExamFactory(patient=a_exam.patient, acquired_at=when - dt.timedelta(days=2))  # no clip, no UID: no DICOM study
    received = ExamFactory(patient=a_exam.patient, acquired_at=when + dt.timedelta(days=1), study_instance_uid="1.2.3.4")
    return SimpleNamespace(api=api_for(user), a_uid=a_uid, a_series=a_series, a_clip=a_clip, b_uid=b_uid, b_clip=b_clip,
                           c_uid=c_uid, received=received)


def _get(api: APIClient, path: str, **params: Any) -> Any:
    return api.get(path, params, HTTP_ACCEPT="application/dicom+json")


def _by_uid(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("application/dicom+json")
    return {value(row, STUDY_UID): row for row in response.json()}


def test_studies_are_the_users_exams_with_identity_by_role(world: SimpleNamespace) -> None:
    response = _get(world.api, "/dicomweb/studies")
    rows = _by_uid(response)
    # The de-identifying study's clip carries the remapped UID; the foreign study is never listed.
    assert world.b_clip.study_instance_uid != world.b_uid
    assert set(rows) == {world.a_uid, world.b_clip.study_instance_uid, "1.2.3.4"}
    ward, research = rows[world.a_uid], rows[world.b_clip.study_instance_uid]
    assert (value(ward, PATIENT_ID), value(ward, PATIENT_NAME), value(ward, STUDY_DATE)) == (
        "H-1", {"Alphabetic": "Ann Lee"}, "20260305")
    assert ward["00201208"] == {"vr": "IS", "Value": [1]} and ward["00080061"]["Value"] == ["US"]
    assert (value(research, PATIENT_ID), value(research, PATIENT_NAME)) == ("B001", {"Alphabetic": "B001"})
    assert research[STUDY_DATE] == {"vr": "DA"}  # researchers see no dates
    assert "H-2" not in response.content.decode() and "Bob" not in response.content.decode()
    assert value(rows["1.2.3.4"], "00201206") == 0  # received, nothing filed yet
    assert list(ward) == sorted(ward)  # tags in ascending order
    assert "00100040" not in ward and value(_by_uid(_get(world.api, "/dicomweb/studies",
                                                         includefield="PatientSex"))[world.a_uid], "00100040") == "F"


@pytest.mark.parametrize(("params", "expected"), [
    ({"PatientID": "H-1"}, {"a", "received"}),
    ({"00100020": "H-1"}, {"a", "received"}),
    ({"PatientID": "B001"}, {"b"}),
    ({"PatientID": "H-2"}, set()),  # a researcher cannot search by hospital number
    ({"PatientID": "H-3"}, set()),  # nor find another study's patient
    ({"PatientName": "ann*"}, {"a", "received"}),
    ({"StudyDate": "20260301-20260305"}, {"a"}),  # the research study's exam has no date to match
    ({"StudyDate": "20260306-"}, {"received"}),
    ({"StudyDate": "20260305"}, {"a"}),
    ({"StudyInstanceUID": "1.2.3.4"}, {"received"}),
    ({"ModalitiesInStudy": "CT"}, set()),
])
def test_matching_keys(world: SimpleNamespace, params: dict[str, str], expected: set[str]) -> None:
    names = {world.a_uid: "a", world.b_clip.study_instance_uid: "b", "1.2.3.4": "received"}
    assert {names[uid] for uid in _by_uid(_get(world.api, "/dicomweb/studies", **params))} == expected


def test_paging_and_refusals(world: SimpleNamespace) -> None:
    everything = list(_by_uid(_get(world.api, "/dicomweb/studies")))
    paged = [list(_by_uid(_get(world.api, "/dicomweb/studies", limit=1, offset=n))) for n in range(3)]
    assert [uid for page in paged for uid in page] == everything and all(len(p) == 1 for p in paged)
    assert _get(world.api, "/dicomweb/studies", AccessionNumber="1").status_code == 400
    assert _get(world.api, "/dicomweb/studies", StudyDate="March").status_code == 400
    assert _get(world.api, "/dicomweb/studies", limit="-1").status_code == 400
    assert APIClient().get("/dicomweb/studies").status_code in (401, 403)


def test_series_of_a_study_and_across_studies(world: SimpleNamespace) -> None:
    response = _get(world.api, f"/dicomweb/studies/{world.a_uid}/series")
    assert response.status_code == 200
    (series,) = response.json()
    assert (value(series, SERIES_UID), value(series, "00201209"), value(series, "0008103E"),
            value(series, "00080060")) == (world.a_series, 1, "zone R1", "US")
    assert STUDY_UID not in series  # the study is in the path
    assert _get(world.api, f"/dicomweb/studies/{world.c_uid}/series").status_code == 404
    everything = _get(world.api, "/dicomweb/series").json()
    assert {value(s, STUDY_UID) for s in everything} == {world.a_uid, world.b_clip.study_instance_uid}
    research = next(s for s in everything if value(s, STUDY_UID) == world.b_clip.study_instance_uid)
    assert value(research, PATIENT_ID) == "B001" and research[STUDY_DATE] == {"vr": "DA"}
    one = _get(world.api, "/dicomweb/series", SeriesInstanceUID=world.a_series).json()
    assert [value(s, SERIES_UID) for s in one] == [world.a_series]
    assert "H-3" not in json.dumps(everything)


def test_instances_stored_over_stow_are_found_by_qido(api_for: Callable[..., APIClient]) -> None:
    study, user = StudyFactory(deidentify=True), UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    PatientFactory(study=study, hospital_number="H-9", name="Eve Poe")
    api, sent_uid = api_for(user), str(generate_uid())
    assert stow(api, multipart(instance(patient_id="H-9", zone="R2", study_uid=sent_uid))).status_code == 200
    clip_process(clip_id=ZoneClip.all_objects.get().pk)
    (row,) = _get(api, "/dicomweb/studies").json()
    uid = value(row, STUDY_UID)
    assert uid != sent_uid and uid == ZoneClip.objects.get().study_instance_uid  # remapped, one UID for both
    assert value(row, PATIENT_ID) == "H-9" and value(row, "00201208") == 1
    (series,) = _get(api, f"/dicomweb/studies/{uid}/series").json()
    assert value(series, "0008103E") == "zone R2"
