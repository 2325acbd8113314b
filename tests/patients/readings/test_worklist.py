"""The review worklist: waiting exams only, ordered by the AI's unsure zones, then zones whose AI
score moved by >= 2 from the previous record, then the oldest acquisition. Each criterion decides
one pair of exams here, so reordering the criteria (or dropping one) fails the test."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from patients.readings.models import ReadingSource, ZoneReading
from patients.readings.services import exam_sign, reading_create
from patients.readings.worklist import worklist, worklist_count, worklist_counts
from patients.studies.models import Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, members_by_role
from tests.patients.dashboards import builders

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def _exam(patient: Any, day: int, scores: dict[str, int], *, unsure: tuple[str, ...] = (),
          out_of_domain: tuple[str, ...] = ()) -> Any:
    exam = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=day))
    builders.record_scores(exam, scores, mv=builders.model_version())
    ZoneReading.objects.filter(clip__exam=exam, source=ReadingSource.AI).update(confidence=0.7, in_domain=True)
    ZoneReading.objects.filter(clip__exam=exam, clip__zone__in=unsure, source=ReadingSource.AI).update(confidence=0.3)
    ZoneReading.objects.filter(clip__exam=exam, clip__zone__in=out_of_domain, source=ReadingSource.AI).update(
        in_domain=False)
    return exam


def test_worklist_order_each_criterion_decides() -> None:
    study = StudyFactory(protocol="12-zone")
    users = members_by_role(study, "wl-{role}")
    clinician = users[Role.CLINICIAN]
    p1, p2, p3 = (PatientFactory(study=study, code=c) for c in ("WL-1", "WL-2", "WL-3"))
    # Signed exams are not waiting; they give p1 and p2 a previous record.
    base1 = _exam(p1, 0, {"R1": 0, "R2": 0})
    base2 = _exam(p2, 0, {"R1": 0, "R2": 0})
    for exam in (base1, base2):
        for clip in exam.clips.all():
            reading_create(clip=clip, by=clinician, score=0)
        exam_sign(exam=exam, by=clinician)
    # Criterion 1: two unsure zones (one low probability, one unlike training) beat everything else.
    unsure = _exam(p3, 9, {"R1": 1, "R2": 1}, unsure=("R1",), out_of_domain=("R2",))
    # Criterion 2: same unsure count (one), but R2 moved 0 -> 3 from p1's previous record.
    moved = _exam(p1, 8, {"R1": 1, "R2": 3}, unsure=("R1",))
    # Criterion 3: one unsure zone, nothing moved: the older exam first.
    older = _exam(p2, 2, {"R1": 1, "R2": 1}, unsure=("R2",))
    newer = _exam(p3, 5, {"R1": 1, "R2": 1}, unsure=("R1",))
    calm = _exam(p3, 1, {"R1": 1, "R2": 1})  # nothing unsure, nothing moved: last despite being oldest
    items = worklist(study=study)
    assert [i.exam_id for i in items] == [unsure.pk, moved.pk, older.pk, newer.pk, calm.pk]
    first = items[0]
    assert (first.unsure, first.moved, first.status, first.patient_code) == (["R1", "R2"], [], "draft", "WL-3")
    assert (items[1].unsure, items[1].moved) == (["R1"], ["R2"])
    assert items[1].unread == ["R1", "R2"] and items[1].zones == 2
    assert worklist_count(study=study) == 5 and worklist_counts(studies=[study]) == {study.pk: 5}
    # Reading and signing takes an exam off the list; changing a reading after sign-off puts it back.
    for clip in unsure.clips.all():
        reading_create(clip=clip, by=clinician, score=1)
    exam_sign(exam=unsure, by=clinician)
    assert unsure.pk not in [i.exam_id for i in worklist(study=study)]
    reading_create(clip=unsure.clips.get(zone="R1"), by=clinician, score=2)
    back = next(i for i in worklist(study=study) if i.exam_id == unsure.pk)
    assert back.status == "amended" and back.unread == []


def test_waiting_text() -> None:
    from patients.readings.worklist import waiting_text

    assert [waiting_text(T0, T0 + dt.timedelta(hours=h)) for h in (0, 5, 24, 29, 50)] == [
        "0 h", "5 h", "1 day", "1 day 5 h", "2 days 2 h"]
    assert waiting_text(T0 + dt.timedelta(hours=1), T0) == "0 h"  # a clock skew is no negative wait

def test_moved_zones_compare_the_same_site_across_protocols() -> None:
    """A BLUE-6 R3 (PLAPS point, lateral lower) follows the 12-zone R4, not the 12-zone R3."""
    study = StudyFactory(protocol="12-zone")
    patient = PatientFactory(study=study, code="WL-X")
    _exam(patient, 0, {"R3": 0, "R4": 3})  # 12-zone: lateral upper 0, lateral lower 3
    blue = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=1), protocol="blue-6")
    builders.record_scores(blue, {"R3": 3, "R1": 1}, mv=builders.model_version())
    item = next(i for i in worklist(study=study) if i.exam_id == blue.pk)
    assert item.moved == []  # 3 at the lateral lower site both times; R1 was not scored before
    later = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=2), protocol="12-zone")
    builders.record_scores(later, {"R4": 0, "R3": 0}, mv=builders.model_version())
    assert next(i for i in worklist(study=study) if i.exam_id == later.pk).moved == ["R4"]  # 3 (BLUE R3) -> 0
