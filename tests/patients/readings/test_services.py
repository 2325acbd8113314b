"""Reading writes: clinicians' readings become the record, sign-off, amendment, adjudication,
blind reads, the AI's and imported readings; each write audited, the signal sent."""
from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction, AuditEvent
from patients.readings import services
from patients.readings.models import FINDINGS, ExamSignature, ReadingSource, ZoneReading
from patients.readings.selectors import clip_record, record_scores, review_states
from patients.readings.signals import reading_saved
from scoring.core.labels import FINDINGS as AI_FINDINGS
from tests.patients.readings.ward import AI, Ward, read_all


def _status(ward: Ward) -> str:
    return review_states(exam_ids=[ward.exam.pk])[ward.exam.pk].status


def test_findings_keys_are_the_ais() -> None:
    assert FINDINGS == AI_FINDINGS


def test_a_clinician_reading_is_the_record_from_the_moment_it_is_saved(ward: Ward) -> None:
    clip = ward.clips["R1"]
    before = clip_record(clip=clip)
    assert (before.score, before.source, before.kind, before.ai_score, before.reader) == (3, "ai", "ai", 3, None)
    reading = services.reading_create(clip=clip, by=ward.clinician, score=1, findings={"b_lines": True},
                                      comment="separate B-lines only")
    after = clip_record(clip=clip)
    assert (after.score, after.source, after.ai_score, after.reader) == (1, "clinician", 3, "rw-clinician")
    assert after.findings == {"b_lines": True} and not reading.blind and _status(ward) == "draft"
    event = AuditEvent.objects.get(action=AuditAction.CREATE, object_type="zonereading")
    assert event.changes["score"] == {"old": 3, "new": 1} and event.changes["source"] == {"old": "ai",
                                                                                          "new": "clinician"}
    assert event.changes["comment"] == {"old": None, "new": "separate B-lines only"}


@pytest.mark.parametrize("score, findings, message", [
    (4, None, "outside 0-3"),
    (1.5, None, "outside 0-3"),
    ("two", None, "not an integer"),
    (True, None, "not an integer"),
    (1, {"b_lines": True, "kerley": True, "spots": False}, "unknown findings: kerley, spots"),
    (1, {"b_lines": "maybe"}, "findings b_lines: expected true or false"),
])
def test_bad_readings_are_refused(ward: Ward, score: Any, findings: Any, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        services.reading_create(clip=ward.clips["R1"], by=ward.clinician, score=score, findings=findings)
    assert not ZoneReading.objects.filter(source=ReadingSource.CLINICIAN).exists()


def test_researchers_cannot_read_sign_or_read_blind(ward: Ward) -> None:
    for call in (lambda: services.reading_create(clip=ward.clips["R1"], by=ward.researcher, score=1),
                 lambda: services.exam_sign(exam=ward.exam, by=ward.researcher),
                 lambda: services.blind_read_start(exam=ward.exam, by=ward.researcher)):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(PermissionDenied):  # a clinician of another study
        services.reading_create(clip=ward.clips["R1"], by=ward.users["outsider"], score=1)


def test_sign_needs_a_clinician_reading_of_every_zone_and_names_the_missing_ones(ward: Ward) -> None:
    for zone in ("R1", "R2", "R3", "R4", "R5", "R6", "L1", "L2", "L3", "L5", "L6"):
        if zone not in ("R2",):
            services.reading_create(clip=ward.clips[zone], by=ward.clinician, score=AI[zone])
    with pytest.raises(ServiceError, match=r"^zones R2, L4 have no clinician reading$"):
        services.exam_sign(exam=ward.exam, by=ward.clinician)
    services.reading_create(clip=ward.clips["R2"], by=ward.admin, score=2)
    with pytest.raises(ServiceError, match=r"^zone L4 has no clinician reading$"):
        services.exam_sign(exam=ward.exam, by=ward.clinician)
    assert not ExamSignature.objects.exists() and _status(ward) == "draft"
    services.reading_create(clip=ward.clips["L4"], by=ward.clinician, score=1)
    signature = services.exam_sign(exam=ward.exam, by=ward.clinician)
    state = review_states(exam_ids=[ward.exam.pk])[ward.exam.pk]
    assert (state.status, state.signed_by, state.signed_at) == ("reviewed", "rw-clinician", signature.at)
    assert signature.record == {**AI, "R2": 2}
    event = AuditEvent.objects.get(action=AuditAction.SIGN)
    assert event.changes["status"] == {"old": "draft", "new": "reviewed"} and event.object_id == str(ward.exam.pk)


def test_a_change_after_sign_off_amends_the_exam_and_signing_again_reviews_it(ward: Ward) -> None:
    read_all(ward, ward.clinician)
    services.exam_sign(exam=ward.exam, by=ward.clinician)
    assert _status(ward) == "reviewed"
    # The AI scoring again (a rescore) changes no reading of a clinician: still reviewed.
    services.ai_reading_record(clip=ward.clips["R1"], model_version="test-model-1", score=2, findings={},
                               confidence=0.4, in_domain=True)
    assert _status(ward) == "reviewed"
    services.score_override_create(clip=ward.clips["R1"], score=1, reason="on review: separate B-lines", by=ward.admin)
    assert _status(ward) == "amended"
    assert record_scores(exam_ids=[ward.exam.pk])[ward.exam.pk]["R1"].score == 1
    services.exam_sign(exam=ward.exam, by=ward.admin)
    state = review_states(exam_ids=[ward.exam.pk])[ward.exam.pk]
    assert (state.status, state.signed_by) == ("reviewed", "rw-study_admin")
    assert ExamSignature.objects.filter(exam=ward.exam).count() == 2  # the history stays


def test_the_override_service_is_a_clinician_reading_audited_as_before(ward: Ward) -> None:
    clip = ward.clips["R2"]
    first = services.score_override_create(clip=clip, score=3, reason="white lung", by=ward.clinician)
    services.score_override_create(clip=clip, score=2, reason="on second look", by=ward.clinician)
    assert (first.source, first.comment, first.rater_name) == ("clinician", "white lung", "rw-clinician")
    events = list(AuditEvent.objects.filter(action=AuditAction.OVERRIDE).order_by("pk"))
    assert [e.changes["score"] for e in events] == [{"old": 1, "new": 3}, {"old": 3, "new": 2}]
    assert [e.changes["source"]["old"] for e in events] == ["ai", "override"]
    assert events[1].changes["reason"] == {"old": "white lung", "new": "on second look"}


def test_adjudication_rights_disagreement_and_the_record(ward: Ward) -> None:
    clip = ward.clips["L1"]
    services.reading_create(clip=clip, by=ward.clinician, score=2)
    with pytest.raises(ServiceError, match="no disagreement"):  # one reader: nothing to settle
        services.reading_adjudicate(clip=clip, by=ward.admin, score=2)
    services.reading_create(clip=clip, by=ward.users["second"], score=2)
    with pytest.raises(ServiceError, match="no disagreement"):  # two readers who agree
        services.reading_adjudicate(clip=clip, by=ward.admin, score=2)
    services.reading_create(clip=clip, by=ward.users["second"], score=0)  # the second changes their mind
    with pytest.raises(PermissionDenied):
        services.reading_adjudicate(clip=clip, by=ward.clinician, score=1)
    reading = services.reading_adjudicate(clip=clip, by=ward.admin, score=1, comment="reviewed together")
    record = clip_record(clip=clip)
    assert (record.score, record.kind, record.source, record.reader) == (1, "adjudication", "clinician",
                                                                         "rw-study_admin")
    assert reading.source == ReadingSource.ADJUDICATION
    # The adjudication stays the record even when a reader reads again afterwards.
    services.reading_create(clip=clip, by=ward.clinician, score=3)
    assert clip_record(clip=clip).score == 1
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, changes__source__new="adjudication").count() == 1


def test_a_blind_read_hides_the_others_until_submitted(ward: Ward) -> None:
    services.reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1)
    blind = services.blind_read_start(exam=ward.exam, by=ward.users["second"])
    assert services.blind_read_start(exam=ward.exam, by=ward.users["second"]) == blind  # idempotent
    second = ward.users["second"]
    hidden = record_scores(exam_ids=[ward.exam.pk], user=second)[ward.exam.pk]
    assert {(r.score, r.ai_score, r.reader) for r in hidden.values()} == {(None, None, None)}
    with pytest.raises(ServiceError, match="submit your blind read"):
        services.exam_sign(exam=ward.exam, by=second)
    services.reading_create(clip=ward.clips["R1"], by=second, score=2)
    mine = record_scores(exam_ids=[ward.exam.pk], user=second)[ward.exam.pk]["R1"]
    assert (mine.score, mine.reader, mine.ai_score, mine.blind) == (2, "rw-second", None, True)
    # Everyone else: the open reading stays the record; the blind one does not replace it.
    assert clip_record(clip=ward.clips["R1"]).score == 1
    with pytest.raises(ServiceError, match="no reading of yours"):
        services.blind_read_submit(exam=ward.exam, by=second)
    read_all(ward, second)
    services.blind_read_submit(exam=ward.exam, by=second)
    after = record_scores(exam_ids=[ward.exam.pk], user=second)[ward.exam.pk]["R1"]
    assert (after.score, after.ai_score, after.reader) == (1, 3, "rw-clinician")
    with pytest.raises(ServiceError, match="already submitted"):
        services.blind_read_start(exam=ward.exam, by=second)
    with pytest.raises(ServiceError, match="already read this exam openly"):
        services.blind_read_start(exam=ward.exam, by=ward.clinician)


def test_signals_go_out_for_clinician_readings_only(ward: Ward) -> None:
    sent: list[tuple[str, int]] = []

    def receiver(sender: Any, *, reading: ZoneReading, exam_id: int, **kwargs: Any) -> None:
        sent.append((reading.source, exam_id))

    reading_saved.connect(receiver)
    try:
        services.ai_reading_record(clip=ward.clips["R1"], model_version="m", score=1, findings={}, confidence=None,
                                   in_domain=None)
        services.imported_reading_set(clip=ward.clips["R1"], rater_name="expert", by=ward.admin, score=2)
        services.reading_create(clip=ward.clips["R1"], by=ward.clinician, score=1)
        services.score_override_create(clip=ward.clips["R1"], score=2, reason="x", by=ward.users["second"])
        services.reading_adjudicate(clip=ward.clips["R1"], by=ward.admin, score=2)
    finally:
        reading_saved.disconnect(receiver)
    assert sent == [("clinician", ward.exam.pk), ("clinician", ward.exam.pk), ("adjudication", ward.exam.pk)]


def test_ai_and_imported_readings(ward: Ward) -> None:
    ai = services.ai_reading_record(clip=ward.clips["R2"], model_version="v9", score=2,
                                    findings={"b_lines": 0.9, "a_lines": 0.5, "effusion": 0.51}, confidence=0.61234,
                                    in_domain=False)
    assert (ai.rater_name, ai.rater, ai.findings, ai.confidence) == (
        "model:v9", None, {"b_lines": True, "a_lines": False, "effusion": True}, 0.6123)
    record = clip_record(clip=ward.clips["R2"])
    assert (record.ai_score, record.ai_model, record.ai_in_domain) == (2, "v9", False)
    first, created = services.imported_reading_set(clip=ward.clips["R2"], rater_name="expert", by=ward.admin,
                                                   score=3, findings={"air_bronchogram": True})
    again, created_again = services.imported_reading_set(clip=ward.clips["R2"], rater_name="expert", by=ward.admin,
                                                         score=1)
    assert created and not created_again and again.pk == first.pk and again.score == 1
    assert clip_record(clip=ward.clips["R2"]).score == 2  # imported readings never set the record
    with pytest.raises(ServiceError, match="are the AI's"):
        services.imported_reading_set(clip=ward.clips["R2"], rater_name="model:x", by=ward.admin, score=1)
