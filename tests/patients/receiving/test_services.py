"""instance_receive: the one service behind C-STORE and STOW-RS (filing, inbox, refusals)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.audit.models import AuditEvent
from patients.imaging.core import deid
from patients.imaging.models import ClipStatus, ZoneClip
from patients.imaging.process import clip_process
from patients.receiving.models import InboxItem, InboxState
from patients.receiving.services import instance_receive
from patients.records.models import Exam
from patients.studies.models import Role
from tests.factories import MembershipFactory, PatientFactory, StudyFactory
from tests.patients.receiving.receiving_kit import phantom, pydicom_us, structured_report

pytestmark = pytest.mark.django_db
STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"


def _media() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def patient() -> object:
    study = StudyFactory(dicom_calling_aets=["US01"])
    return PatientFactory(study=study, code="LUS-007", hospital_number="H123")


def test_an_instance_is_filed_as_a_clip_of_a_new_exam_and_checked_by_the_ingest(patient: object) -> None:
    data = phantom(patient_id="H123", zone="R2", study_uid=STUDY_UID, study_date="20260312")
    got = instance_receive(study=patient.study, data=data, via="dimse", calling_aet="US01")
    assert got.kind == "clip" and got.inbox is None and got.reason == ""
    assert got.clip.status == ClipStatus.PENDING and got.clip.zone == "R2" and got.clip.uploaded_by is None
    exam = got.exam
    assert exam.patient == patient and exam.protocol == patient.study.protocol
    # De-identifying study: the exam keeps the UID the stored clip will carry (remapped).
    assert exam.study_instance_uid == deid.remap_uid(patient.study.secret, STUDY_UID) != STUDY_UID
    assert timezone.localtime(exam.acquired_at).date() == dt.date(2026, 3, 12)
    processed = clip_process(clip_id=got.clip.pk)
    assert processed is not None and processed.error is None
    clip = ZoneClip.objects.get(pk=got.clip.pk)
    assert clip.status == ClipStatus.READY and clip.frame_count == 3 and clip.deidentified
    assert clip.study_instance_uid == exam.study_instance_uid
    sent = AuditEvent.objects.filter(object_type="zoneclip", object_id=str(clip.pk), action="create").get()
    assert sent.actor is None and sent.changes["received_from"] == "AE US01 via DICOM C-STORE"
    assert AuditEvent.objects.get(object_type="exam", object_id=str(exam.pk)).changes["received_from"] == \
        "AE US01 via DICOM C-STORE"


def test_the_same_instance_twice_is_one_clip_and_other_zones_join_the_exam(patient: object) -> None:
    first = phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID, seed=1)
    one = instance_receive(study=patient.study, data=first, via="dimse", calling_aet="US01")
    again = instance_receive(study=patient.study, data=first, via="dimse", calling_aet="US01")
    assert again.kind == "clip" and again.clip.pk == one.clip.pk and "already" in again.reason
    other = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="L3", study_uid=STUDY_UID,
                                                               seed=2), via="stow")
    assert other.exam.pk == one.exam.pk and other.clip.zone == "L3"
    assert Exam.objects.count() == 1 and ZoneClip.all_objects.count() == 2


def test_uploaded_exam_with_clips_of_that_study_is_found_without_a_second_exam(patient: object) -> None:
    got = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID),
                           via="dimse")
    clip_process(clip_id=got.clip.pk)
    Exam.objects.filter(pk=got.exam.pk).update(study_instance_uid="")  # as if uploaded through the page
    later = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="R4", study_uid=STUDY_UID,
                                                               seed=5), via="dimse")
    assert later.exam.pk == got.exam.pk and Exam.objects.count() == 1


def test_patient_matched_by_code_and_uid_kept_as_received_without_deidentification(patient: object) -> None:
    study = patient.study
    study.dicom_patient_match, study.deidentify = "code", False
    study.save()
    got = instance_receive(study=study, data=phantom(patient_id="LUS-007", zone="L1", study_uid=STUDY_UID),
                           via="dimse")
    assert got.kind == "clip" and got.exam.study_instance_uid == STUDY_UID


def test_unknown_patient_waits_in_the_inbox_with_the_file_and_what_the_sender_said(patient: object) -> None:
    data = phantom(patient_id="NOBODY", zone="R3", study_uid=STUDY_UID, study_date="20260401")
    got = instance_receive(study=patient.study, data=data, via="dimse", calling_aet="US01")
    item = got.inbox
    assert got.kind == "inbox" and got.clip is None and item.state == InboxState.WAITING
    assert "PatientID 'NOBODY' names no single patient" in item.reason and item.reason == got.reason
    assert (item.patient_identifier, item.zone_hint, item.calling_aet, item.received_via) == \
        ("NOBODY", "R3", "US01", "dimse")
    assert item.study_instance_uid == STUDY_UID and item.series_description == "Lung R3"
    assert timezone.localtime(item.acquired_at).date() == dt.date(2026, 4, 1)
    assert Path(item.file.path).read_bytes() == data and item.size_bytes == len(data)
    again = instance_receive(study=patient.study, data=data, via="dimse", calling_aet="US01")
    assert again.inbox.pk == item.pk and InboxItem.objects.count() == 1
    assert not Exam.objects.exists() and not ZoneClip.all_objects.exists()


def test_unreadable_zone_waits_in_the_inbox_with_its_patient(patient: object) -> None:
    got = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="", study_uid=STUDY_UID),
                           via="dimse", calling_aet="US01")
    assert got.kind == "inbox" and got.inbox.patient == patient and got.inbox.zone_hint == ""
    assert "SeriesDescription 'Lung' names no zone of the 12-zone protocol" in got.reason
    assert not ZoneClip.all_objects.exists()


def test_a_zone_rule_on_another_tag(patient: object) -> None:
    study = patient.study
    study.dicom_zone_tag, study.dicom_zone_pattern = "PatientID", r"-Z(\d)$"
    study.dicom_patient_match = "code"
    study.save()
    got = instance_receive(study=study, data=phantom(patient_id="LUS-007", zone="R1"), via="dimse")
    assert got.kind == "inbox" and "PatientID 'LUS-007' names no zone" in got.reason


def test_a_different_instance_for_a_filled_zone_waits_in_the_inbox(patient: object) -> None:
    first = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID),
                             via="dimse")
    clip_process(clip_id=first.clip.pk)
    second = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID,
                                                                seed=9), via="dimse")
    assert second.kind == "inbox" and "zone R1 of this exam already has a clip" in second.reason
    assert second.inbox.exam == first.exam and second.inbox.zone_hint == "R1"


@pytest.mark.parametrize("data, code", [
    (b"", "not_dicom"),
    (b"this is plain text, not a DICOM instance at all" * 4, "not_dicom"),
    (structured_report(patient_id="H123"), "not_an_image"),
])
def test_bad_input_is_refused_and_nothing_is_stored(patient: object, data: bytes, code: str) -> None:
    with pytest.raises(ServiceError) as refused:
        instance_receive(study=patient.study, data=data, via="dimse", calling_aet="US01")
    assert refused.value.code == code
    if code == "not_an_image":
        assert "Comprehensive SR" in refused.value.message
    assert not InboxItem.objects.exists() and not ZoneClip.all_objects.exists() and not Exam.objects.exists()
    assert _media() == []


def test_pixel_data_shorter_than_its_header_is_refused(patient: object) -> None:
    data = phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID)
    with pytest.raises(ServiceError) as refused:
        instance_receive(study=patient.study, data=data[:-500], via="dimse")
    assert refused.value.code in {"bad_pixel_data", "no_pixel_data"}
    assert not ZoneClip.all_objects.exists() and _media() == []


def test_archived_study_and_a_researcher_receive_nothing(patient: object) -> None:
    study = patient.study
    researcher = MembershipFactory(study=study, role=Role.RESEARCHER).user
    data = phantom(patient_id="H123", zone="R1", study_uid=STUDY_UID)
    with pytest.raises(PermissionDenied):
        instance_receive(study=study, data=data, via="stow", by=researcher)
    study.archived = True
    study.save()
    with pytest.raises(ServiceError) as refused:
        instance_receive(study=study, data=data, via="dimse", calling_aet="US01")
    assert refused.value.code == "study_archived" and not ZoneClip.all_objects.exists()


def test_pydicom_ultrasound_files_are_filed_and_decoded(patient: object) -> None:
    for zone, name in zip(("R1", "R2", "R3"), ("examples_ybr_color.dcm", "examples_rgb_color.dcm",
                                               "examples_palette.dcm"), strict=True):
        got = instance_receive(study=patient.study, data=pydicom_us(name, patient_id="H123", zone=zone,
                                                                    study_uid=STUDY_UID), via="dimse")
        assert got.kind == "clip", got.reason
        processed = clip_process(clip_id=got.clip.pk)
        assert processed is not None and processed.error is None, (name, processed.error)
    assert sorted(ZoneClip.objects.values_list("zone", flat=True)) == ["R1", "R2", "R3"]


def test_an_instance_over_the_upload_limit_is_refused(patient: object, settings: object) -> None:
    settings.MAX_UPLOAD_MB = 1
    data = phantom(patient_id="NOBODY", zone="R1", frames=300)  # over 1 MB, and would go to the inbox
    assert len(data) > 1024 * 1024
    with pytest.raises(ServiceError) as refused:
        instance_receive(study=patient.study, data=data, via="dimse")
    assert refused.value.code == "too_large" and not InboxItem.objects.exists() and _media() == []


def test_a_signed_in_sender_is_the_actor_and_the_channel_is_recorded(patient: object) -> None:
    clinician = MembershipFactory(study=patient.study, role=Role.CLINICIAN).user
    got = instance_receive(study=patient.study, data=phantom(patient_id="H123", zone="R6", study_uid=STUDY_UID),
                           via="stow", by=clinician)
    assert got.kind == "clip" and got.clip.uploaded_by == clinician and got.exam.created_by == clinician
    event = AuditEvent.objects.get(object_type="zoneclip", object_id=str(got.clip.pk))
    assert event.actor == clinician and event.changes["received_from"] == "via DICOMweb STOW-RS"
