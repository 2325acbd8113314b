"""A signed exam whose record changes afterwards is ``amended``: its own fields edited (date,
protocol, device...) or one of its clips deleted or replaced, as well as a reading changed. The
audit trail says what changed; signing again makes it ``reviewed``."""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pytest

from patients.audit.models import AuditAction, AuditEvent
from patients.imaging.ingest import clip_ingest
from patients.imaging.services import clip_delete
from patients.readings.models import ExamSignature, ZoneReading
from patients.readings.selectors import review_states
from patients.readings.services import exam_sign, reading_create
from patients.readings.worklist import worklist_count
from patients.records.models import Exam
from patients.records.services import exam_update
from patients.studies.models import Study
from tests.conftest import signed_in
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.conftest import png_bytes

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@dataclass
class Signed:
    study: Study
    exam: Exam
    other: Exam  # another signed exam of the same study
    clinician: Any


def _read_and_sign(exam: Exam, by: Any, seed: int) -> None:
    for i, zone in enumerate(("R1", "L1")):
        clip = clip_ingest(exam=exam, upload=io.BytesIO(png_bytes(seed + i)), zone=zone, by=by,
                           filename=f"{zone}.png").clip
        reading_create(clip=clip, by=by, score=1)
    exam_sign(exam=exam, by=by)


@pytest.fixture
def signed(db: Any) -> Signed:
    study = StudyFactory(protocol="blue-6", deidentify=False)
    clinician = members_by_role(study, "amend-{role}")["clinician"]
    patient = PatientFactory(study=study)
    exam = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 2, 9, tzinfo=UTC), device="Butterfly")
    other = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 4, 9, tzinfo=UTC))
    _read_and_sign(exam, clinician, 10)
    _read_and_sign(other, clinician, 20)
    return Signed(study, exam, other, clinician)


def _status(exam: Exam) -> str:
    return review_states(exam_ids=[exam.pk])[exam.pk].status


def _amendment(exam: Exam) -> str:
    return review_states(exam_ids=[exam.pk])[exam.pk].amendment


def test_signed_exams_start_reviewed(signed: Signed) -> None:
    assert (_status(signed.exam), _status(signed.other)) == ("reviewed", "reviewed")
    assert worklist_count(study=signed.study) == 0


@pytest.mark.parametrize(("field", "value"), [
    ("acquired_at", dt.datetime(2026, 3, 2, 11, tzinfo=UTC)), ("protocol", "8-zone"), ("device", "Sonosite")])
def test_editing_a_signed_exam_amends_it_and_the_audit_says_what(signed: Signed, field: str, value: Any) -> None:
    extra = {"other_protocol": True} if field == "protocol" else {}
    old = getattr(signed.exam, field)
    exam_update(exam=signed.exam, by=signed.clinician, **{field: value}, **extra)
    assert _status(signed.exam) == "amended"
    assert _amendment(signed.exam) == f"the exam's {'date' if field == 'acquired_at' else field} changed"
    assert _status(signed.other) == "reviewed"  # only the edited exam
    assert worklist_count(study=signed.study) == 1
    event = AuditEvent.objects.filter(object_type="exam", object_id=str(signed.exam.pk),
                                      action=AuditAction.UPDATE).get()
    assert list(event.changes) == [field]
    assert event.changes[field]["new"] != event.changes[field]["old"]
    assert str(old)[:10] in str(event.changes[field]["old"])
    exam_sign(exam=signed.exam, by=signed.clinician)  # signing again settles it
    assert (_status(signed.exam), _amendment(signed.exam)) == ("reviewed", "")


def test_the_latest_change_is_the_one_named(signed: Signed) -> None:
    reading_create(clip=signed.exam.clips.get(zone="R1"), by=signed.clinician, score=2)
    assert (_status(signed.exam), _amendment(signed.exam)) == ("amended", "a reading changed")
    exam_update(exam=signed.exam, by=signed.clinician, device="Sonosite", notes="re-labelled")
    assert _amendment(signed.exam) == "the exam's device, notes changed"
    reading_create(clip=signed.exam.clips.get(zone="L1"), by=signed.clinician, score=3)
    assert _amendment(signed.exam) == "a reading changed"


def test_an_edit_that_changes_nothing_leaves_it_reviewed(signed: Signed) -> None:
    exam_update(exam=signed.exam, by=signed.clinician, device="Butterfly")
    assert _status(signed.exam) == "reviewed"


def test_an_edit_before_signing_is_covered_by_the_signature(signed: Signed) -> None:
    exam_update(exam=signed.exam, by=signed.clinician, device="Sonosite")
    exam_sign(exam=signed.exam, by=signed.clinician)
    assert _status(signed.exam) == "reviewed"


def test_deleting_a_clip_after_sign_off_amends_the_exam(signed: Signed) -> None:
    clip = signed.exam.clips.get(zone="L1")
    clip_id = clip.pk
    clip_delete(clip=clip, by=signed.clinician)
    assert (_status(signed.exam), _status(signed.other)) == ("amended", "reviewed")
    assert _amendment(signed.exam) == "the L1 clip was deleted"
    event = AuditEvent.objects.get(object_type="zoneclip", object_id=str(clip_id), action=AuditAction.DELETE)
    assert event.changes["exam"] == {"old": signed.exam.pk, "new": None} and event.changes["zone"]["old"] == "L1"


def test_replacing_a_clip_after_sign_off_amends_the_exam(signed: Signed) -> None:
    old = signed.exam.clips.get(zone="R1")
    old_id = old.pk
    new = clip_ingest(exam=signed.exam, upload=io.BytesIO(png_bytes(99)), zone="R1", by=signed.clinician,
                      filename="R1.png", replace=True).clip
    assert new.pk != old_id
    assert (_status(signed.exam), _status(signed.other)) == ("amended", "reviewed")
    assert _amendment(signed.exam) == "the R1 clip was replaced"
    event = AuditEvent.objects.get(object_type="zoneclip", object_id=str(old_id), action=AuditAction.DELETE)
    assert event.changes["replaced"] is True and event.changes["exam"]["old"] == signed.exam.pk


def test_the_edit_page_amends_a_signed_exam(signed: Signed) -> None:
    client = signed_in(signed.clinician)
    response = client.post(f"/records/exam/{signed.exam.pk}/edit/", {
        "acquired_at": "2026-03-02T10:30", "protocol": signed.exam.protocol, "device": "Butterfly iQ3",
        "probe": "", "operator": "", "notes": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _status(signed.exam) == "amended"
    page = client.get(f"/exams/{signed.exam.pk}/").content.decode()
    assert '<span id="amendment">the exam&#x27;s date, device changed</span> since: sign again' in page
    assert "changed after sign-off" in client.get(f"/studies/{signed.study.pk}/worklist/").content.decode()


@pytest.mark.parametrize("skew", [dt.timedelta(0), dt.timedelta(seconds=30)])
def test_changes_after_sign_off_count_whatever_the_clocks_say(signed: Signed, skew: dt.timedelta) -> None:
    """The signature's time equal to (0) or later than (30 s: the signing process's clock runs
    ahead, or the worker's was stepped back) the changes made after it: they still amend the exam.
    Before the fix "after the signature" compared these clocks, and both exams stayed reviewed."""
    for exam in (signed.exam, signed.other):
        ExamSignature.objects.filter(exam=exam).update(at=dt.datetime.now(UTC) + skew + dt.timedelta(minutes=5))
    exam_update(exam=signed.exam, by=signed.clinician, device="Sonosite")
    reading_create(clip=signed.other.clips.get(zone="L1"), by=signed.clinician, score=3)
    # The change's own stamp equal to the signature's: still after it.
    AuditEvent.objects.filter(object_type="exam", object_id=str(signed.exam.pk), action=AuditAction.UPDATE).update(
        at=ExamSignature.objects.get(exam=signed.exam).at - skew)
    assert (_status(signed.exam), _amendment(signed.exam)) == ("amended", "the exam's device changed")
    assert (_status(signed.other), _amendment(signed.other)) == ("amended", "a reading changed")
    assert worklist_count(study=signed.study) == 2
    exam_sign(exam=signed.other, by=signed.clinician)  # signing again covers the reading, by its id
    assert _status(signed.other) == "reviewed"
    event = AuditEvent.objects.filter(action=AuditAction.SIGN, object_id=str(signed.other.pk)).latest("pk")
    assert event.changes["readings_upto"] == ZoneReading.objects.filter(clip__exam=signed.other).latest("pk").pk
