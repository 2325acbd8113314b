"""Reading writes: clinicians' readings and overrides, adjudications, sign-off, blind reads, the
AI's readings (from scoring's pipeline) and imported reference readings. Every write by a person is
audited; the AI's readings are not (their scoring job is the record of them)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record, diff
from patients.imaging.models import ZoneClip
from patients.readings import selectors
from patients.readings.models import FINDINGS, BlindRead, ExamSignature, ReadingSource, ZoneReading
from patients.readings.signals import exam_signed, reading_saved
from patients.records.models import Exam
from patients.studies import permissions


def _score_value(score: Any) -> int:
    """The score as an int 0-3 (Soldati scale); a fraction or anything else is refused."""
    if isinstance(score, bool):
        raise ServiceError(f"score {score!r} is not an integer 0-3", code="bad_score")
    try:
        value = int(score)
    except (TypeError, ValueError):
        raise ServiceError(f"score {score!r} is not an integer 0-3", code="bad_score") from None
    if isinstance(score, float) and score != value or not 0 <= value <= 3:
        raise ServiceError(f"score {score!r} is outside 0-3 (Soldati scale)", code="bad_score")
    return value


def _findings_value(findings: Mapping[str, Any] | None) -> dict[str, bool]:
    """Findings as {key: bool}; unknown keys and non-boolean values are refused, naming them."""
    if findings is None:
        return {}
    if not isinstance(findings, Mapping):
        raise ServiceError("findings must be an object {finding: true|false}", code="bad_findings")
    unknown = sorted(str(k) for k in findings if k not in FINDINGS)
    if unknown:
        raise ServiceError(f"unknown findings: {', '.join(unknown)}; known: {', '.join(FINDINGS)}",
                           code="bad_findings")
    bad = sorted(k for k, v in findings.items() if not isinstance(v, bool) and v not in (0, 1))
    if bad:
        raise ServiceError(f"findings {', '.join(bad)}: expected true or false", code="bad_findings")
    return {k: bool(findings[k]) for k in FINDINGS if k in findings}


def _username(user: Any) -> str:
    return str(getattr(user, "username", "") or "")[:64]


def _is_blind(exam_id: int, user: Any) -> bool:
    return bool(selectors.open_blind_exams(user=user, exam_ids=[exam_id]))


def _save_reading(clip: ZoneClip, *, by: Any, source: str, score: int, findings: dict[str, bool],
                  comment: str) -> ZoneReading:
    reading = ZoneReading.objects.create(clip=clip, source=source, rater=by, rater_name=_username(by), score=score,
                                         findings=findings, comment=comment,
                                         blind=source == ReadingSource.CLINICIAN and _is_blind(clip.exam_id, by))
    reading_saved.send(sender=ZoneReading, reading=reading, exam_id=clip.exam_id)
    return reading


def reading_create(*, clip: ZoneClip, by: Any, score: Any, findings: Mapping[str, Any] | None = None,
                   comment: str = "") -> ZoneReading:
    """A clinician or study admin reads a zone: score 0-3, findings, optional comment. It becomes
    the zone's score of record (a reading made during a blind read is marked ``blind``). Audited
    with the record score and source it replaces."""
    study = clip.exam.study
    permissions.require_write(by, study)
    value, found = _score_value(score), _findings_value(findings)
    comment = (comment or "").strip()
    with transaction.atomic():
        before = selectors.clip_record(clip=clip)
        reading = _save_reading(clip, by=by, source=ReadingSource.CLINICIAN, score=value, findings=found,
                                comment=comment)
        audit_record(actor=by, action=AuditAction.CREATE, study=study, obj=reading, changes={
            "zone": clip.zone, "clip": clip.pk, "blind": reading.blind,
            "score": {"old": before.score, "new": value}, "source": {"old": before.kind, "new": reading.source},
            **diff({}, {"findings": found, "comment": comment}),
        })
    return reading


def score_override_create(*, clip: ZoneClip, score: Any, reason: str, by: Any) -> ZoneReading:
    """A clinician or study admin sets a zone's score (0-3) with a reason: a clinician reading whose
    comment is the reason. Audited as an override with the previous score (the latest clinician
    reading, else the AI's reading) and source."""
    study = clip.exam.study
    permissions.require_write(by, study)
    value = _score_value(score)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("an override needs a reason", code="missing_reason")
    with transaction.atomic():
        previous = selectors.clinician_history(clip=clip).first()
        ai = selectors.clip_record(clip=clip).ai_score
        reading = _save_reading(clip, by=by, source=ReadingSource.CLINICIAN, score=value, findings={},
                                comment=reason)
        audit_record(actor=by, action=AuditAction.OVERRIDE, study=study, obj=clip, changes={
            "score": {"old": previous.score if previous else ai, "new": value},
            "source": {"old": "override" if previous else ("ai" if ai is not None else None), "new": "override"},
            "reason": {"old": previous.comment if previous else None, "new": reason},
            "reading": reading.pk,
        })
    return reading


def reading_adjudicate(*, clip: ZoneClip, by: Any, score: Any, comment: str = "") -> ZoneReading:
    """A study admin settles a zone whose clinicians disagree: the adjudication sets the record."""
    study = clip.exam.study
    permissions.require_admin(by, study)
    value = _score_value(score)
    comment = (comment or "").strip()
    if not selectors.has_disagreement(clip=clip):
        raise ServiceError(f"zone {clip.zone} has no disagreement to adjudicate: its clinicians' latest readings "
                           "agree (or it has fewer than two)", code="no_disagreement")
    with transaction.atomic():
        before = selectors.clip_record(clip=clip)
        reading = _save_reading(clip, by=by, source=ReadingSource.ADJUDICATION, score=value, findings={},
                                comment=comment)
        audit_record(actor=by, action=AuditAction.CREATE, study=study, obj=reading, changes={
            "zone": clip.zone, "clip": clip.pk, "score": {"old": before.score, "new": value},
            "source": {"old": before.kind, "new": reading.source}, **diff({}, {"comment": comment}),
        })
    return reading


def _unread_zones(exam: Exam, *, reader: Any = None) -> list[str]:
    """Zones of the exam's clips without a clinician or adjudication reading (``reader``: by them)."""
    qs = ZoneReading.objects.filter(clip__exam=exam, source__in=selectors.CLINICIAN_SOURCES)
    if reader is not None:
        qs = qs.filter(rater_id=reader.pk, source=ReadingSource.CLINICIAN)
    read = set(qs.values_list("clip_id", flat=True))
    return [c.zone for c in selectors.ordered_clips(exam) if c.pk not in read]


def exam_sign(*, exam: Exam, by: Any) -> ExamSignature:
    """A clinician or study admin signs the exam off: every zone needs a clinician reading. The
    record scores signed are kept with the signature. Signing again (after an amendment) is allowed."""
    study = exam.study
    permissions.require_write(by, study)
    if _is_blind(exam.pk, by):
        raise ServiceError("submit your blind read of this exam before signing it", code="blind_read_open")
    if not exam.clips.exists():
        raise ServiceError("the exam has no clips to sign", code="no_clips")
    unread = _unread_zones(exam)
    if unread:
        raise ServiceError(f"zone{'s' if len(unread) > 1 else ''} {', '.join(unread)} "
                           f"ha{'ve' if len(unread) > 1 else 's'} no clinician reading", code="unread_zones")
    with transaction.atomic():
        state = selectors.review_states(exam_ids=[exam.pk])[exam.pk]
        record = {z: r.score for z, r in selectors.record_scores(exam_ids=[exam.pk])[exam.pk].items()}
        signature = ExamSignature.objects.create(exam=exam, by=by, by_name=str(getattr(by, "username", "")),
                                                 at=timezone.now(), record=record)
        # What the signature covers, in creation order (review_states compares ids, not clocks):
        # the exam's readings up to this id; the record's changes before this event.
        upto = ZoneReading.objects.filter(clip__exam=exam).aggregate(upto=Max("pk"))["upto"] or 0
        audit_record(actor=by, action=AuditAction.SIGN, study=study, obj=exam, changes={
            "status": {"old": state.status, "new": "reviewed"}, "record": record, "signature": signature.pk,
            "readings_upto": upto})
        exam_signed.send(sender=ExamSignature, signature=signature, exam_id=exam.pk)
    return signature


def blind_read_start(*, exam: Exam, by: Any) -> BlindRead:
    """A clinician or study admin starts reading the exam blind: until they submit, the AI's and
    the other readers' readings of it are hidden from them. Starting an open one again returns it."""
    permissions.require_write(by, exam.study)
    existing = BlindRead.objects.filter(exam=exam, reader=by).first()
    if existing is not None:
        if existing.is_open:
            return existing
        raise ServiceError("you have already submitted a blind read of this exam", code="blind_read_done", status=409)
    if ZoneReading.objects.filter(clip__exam=exam, rater_id=by.pk, source__in=selectors.CLINICIAN_SOURCES).exists():
        raise ServiceError("you have already read this exam openly; a blind read must come first",
                           code="already_read", status=409)
    with transaction.atomic():
        blind = BlindRead.objects.create(exam=exam, reader=by)
        audit_record(actor=by, action=AuditAction.CREATE, study=exam.study, obj=blind,
                     changes={"exam": exam.pk, "blind_read": "started"})
    return blind


def blind_read_submit(*, exam: Exam, by: Any) -> BlindRead:
    """The reader ends their blind read: every zone needs their own reading. The exam's other
    readings are shown to them from then on."""
    permissions.require_write(by, exam.study)
    blind = BlindRead.objects.filter(exam=exam, reader=by, submitted_at__isnull=True).first()
    if blind is None:
        raise ServiceError("you have no open blind read of this exam", code="no_blind_read")
    unread = _unread_zones(exam, reader=by)
    if unread:
        raise ServiceError(f"zone{'s' if len(unread) > 1 else ''} {', '.join(unread)} "
                           f"ha{'ve' if len(unread) > 1 else 's'} no reading of yours", code="unread_zones")
    with transaction.atomic():
        blind.submitted_at = timezone.now()
        blind.save(update_fields=["submitted_at"])
        audit_record(actor=by, action=AuditAction.UPDATE, study=exam.study, obj=blind,
                     changes={"exam": exam.pk, "blind_read": {"old": "open", "new": "submitted"}})
    return blind


def ai_reading_record(*, clip: ZoneClip, model_version: str, score: int, findings: Mapping[str, float],
                      confidence: float | None, in_domain: bool | None) -> ZoneReading:
    """The AI's reading of a clip (scoring's pipeline, for the active model's scores): rater
    ``model:<version>``, findings present when their probability is above 0.5. Not audited."""
    return ZoneReading.objects.create(
        clip=clip, source=ReadingSource.AI, rater_name=f"{selectors.AI_PREFIX}{model_version}"[:64],
        score=_score_value(score), findings={str(k): float(v) > 0.5 for k, v in findings.items()},
        confidence=None if confidence is None else round(float(confidence), 4), in_domain=in_domain)


def imported_reading_set(*, clip: ZoneClip, rater_name: str, by: Any, score: int | None = None,
                         findings: Mapping[str, Any] | None = None, comment: str = "") -> tuple[ZoneReading, bool]:
    """Record (or replace in place) a dataset rater's reading of a clip (importers, the demo): one
    per clip and rater; it never sets the record. Returns (reading, created)."""
    study = clip.exam.study
    permissions.require_write(by, study)
    rater_name = (rater_name or "").strip()
    if not rater_name or len(rater_name) > 64:
        raise ServiceError("a rater name of 1-64 characters is required", code="bad_rater")
    if rater_name.startswith(selectors.AI_PREFIX):
        raise ServiceError(f"rater names starting with {selectors.AI_PREFIX!r} are the AI's", code="bad_rater")
    value = None if score is None else _score_value(score)
    new = {"score": value, "findings": dict(findings or {}), "comment": comment}
    existing = ZoneReading.objects.filter(clip=clip, source=ReadingSource.IMPORTED, rater_name=rater_name).first()
    changes = diff({} if existing is None else {"score": existing.score, "findings": existing.findings,
                                               "comment": existing.comment}, new)
    if existing is not None and not changes:
        return existing, False
    with transaction.atomic():
        reading, created = ZoneReading.objects.update_or_create(
            clip=clip, source=ReadingSource.IMPORTED, rater_name=rater_name, defaults={**new, "rater": None})
        audit_record(actor=by, action=AuditAction.CREATE if created else AuditAction.UPDATE, study=study,
                     obj=reading, changes=changes)
    return reading, created
