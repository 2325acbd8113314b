"""Reading reads: the score of record of each zone, the review state of each exam, what a user
may see of a clip's readings, the raters' scores for agreement and the disagreements.

The score of record of a zone clip is its latest ``adjudication`` reading, else its latest
clinician reading made openly, else its latest clinician reading made blind, else its latest AI
reading, else none. Imported readings never set the record (they are reference labels).

Blind reads: a user with an OPEN :class:`~patients.readings.models.BlindRead` on an exam sees
only their own clinician readings of that exam - no AI reading, no other reader.

Every function loads its rows in a fixed number of queries per chunk of exams.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Max, Q, QuerySet

from patients.audit.models import AuditAction, AuditEvent
from patients.imaging.models import ZoneClip
from patients.readings.models import BlindRead, ExamSignature, ReadingSource, ZoneReading
from patients.records.models import Exam
from patients.studies.models import Study
from patients.studies.protocols import PROTOCOLS

T = TypeVar("T")

#: Sources of a clinician's word on a zone (what sign-off needs).
CLINICIAN_SOURCES = (ReadingSource.CLINICIAN, ReadingSource.ADJUDICATION)
AI_PREFIX = "model:"
_FIELDS = ("id", "clip_id", "source", "rater_id", "rater_name", "score", "findings", "confidence", "in_domain",
           "blind", "created_at")


def chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    # SQLite caps the number of query parameters; chunking keeps large studies working.
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True)
class ZoneRecord:
    """A zone's score of record and the AI's reading beside it."""

    clip_id: int
    zone: str
    score: int | None = None  # the record score (None: nothing read yet)
    source: str | None = None  # "clinician" (clinician or adjudication) | "ai" | None
    kind: str | None = None  # "clinician" | "adjudication" | "ai" | None (finer than source)
    ai_score: int | None = None
    ai_confidence: float | None = None
    ai_in_domain: bool | None = None
    ai_model: str | None = None
    findings: dict[str, bool] = field(default_factory=dict)  # of the reading that is the record
    reader: str | None = None  # username of the reading that is the record (None for the AI)
    read_at: dt.datetime | None = None
    clinician_score: int | None = None  # the latest clinician or adjudication reading's score
    blind: bool = False  # the record is a reading made blind


@dataclass(frozen=True)
class ReviewState:
    status: str  # "draft" | "reviewed" | "amended"
    signed_by: str | None = None
    signed_at: dt.datetime | None = None
    amendment: str = ""  # amended: the latest change since the signature, in words ("a reading changed")


DRAFT = ReviewState("draft")


def _first(rows: list[dict[str, Any]], source: str, *, blind: bool | None = None) -> dict[str, Any] | None:
    return next((r for r in rows if r["source"] == source and (blind is None or r["blind"] == blind)), None)


def zone_record(clip_id: int, zone: str, readings: list[dict[str, Any]], *,
                blind_reader: int | None = None) -> ZoneRecord:
    """The record of one zone from its readings (newest first, imported ones left out).
    ``blind_reader``: the user reading the exam blind, who sees only their own clinician readings."""
    if blind_reader is not None:
        readings = [r for r in readings if r["source"] == ReadingSource.CLINICIAN and r["rater_id"] == blind_reader]
    ai = _first(readings, ReadingSource.AI)
    clinician = next((r for r in readings if r["source"] in CLINICIAN_SOURCES), None)
    record = (_first(readings, ReadingSource.ADJUDICATION) or _first(readings, ReadingSource.CLINICIAN, blind=False)
              or _first(readings, ReadingSource.CLINICIAN) or ai)
    if record is None:
        return ZoneRecord(clip_id, zone, ai_score=None)
    human = record["source"] != ReadingSource.AI
    return ZoneRecord(
        clip_id, zone, score=record["score"], source="clinician" if human else "ai", kind=record["source"],
        ai_score=ai["score"] if ai else None, ai_confidence=ai["confidence"] if ai else None,
        ai_in_domain=ai["in_domain"] if ai else None,
        ai_model=ai["rater_name"].removeprefix(AI_PREFIX) if ai else None,
        findings={str(k): bool(v) for k, v in (record["findings"] or {}).items()},
        reader=record["rater_name"] if human else None, read_at=record["created_at"],
        clinician_score=clinician["score"] if clinician else None, blind=bool(record["blind"]),
    )


def _zone_key(protocol: str, zone: str) -> tuple[int, str]:
    """Anatomical order of ``zone`` in ``protocol`` (unknown zones last, by code)."""
    codes = PROTOCOLS[protocol].codes if protocol in PROTOCOLS else ()
    return (codes.index(zone) if zone in codes else len(codes), zone)


def ordered_clips(exam: Exam) -> list[ZoneClip]:
    """The exam's clips in its protocol's anatomical order (unknown zones last, by code)."""
    return sorted(exam.clips.all(), key=lambda c: _zone_key(exam.protocol, c.zone))


def record_json(record: ZoneRecord) -> dict[str, Any]:
    """A zone's record as JSON: score, source, kind, reader, read_at, findings, the AI's score."""
    return {"clip": record.clip_id, "zone": record.zone, "score": record.score, "source": record.source,
            "kind": record.kind, "reader": record.reader,
            "read_at": record.read_at.isoformat() if record.read_at else None, "findings": record.findings,
            "ai_score": record.ai_score, "ai_confidence": record.ai_confidence, "ai_in_domain": record.ai_in_domain,
            "ai_model": record.ai_model, "clinician_score": record.clinician_score, "blind": record.blind}


def open_blind_exams(*, user: Any, exam_ids: Sequence[int] | None = None) -> set[int]:
    """Exams the user is reading blind now (an open blind read)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    qs = BlindRead.objects.filter(reader_id=user.pk, submitted_at__isnull=True)
    if exam_ids is not None:
        qs = qs.filter(exam_id__in=list(exam_ids))
    return set(qs.values_list("exam_id", flat=True))


def record_scores(*, exam_ids: Iterable[int], user: Any = None,
                  blind: set[int] | None = None) -> dict[int, dict[str, ZoneRecord]]:
    """exam id -> zone -> :class:`ZoneRecord`, for every clip of the exams in anatomical order (3
    queries a chunk).
    With ``user``, an exam they read blind shows only their own clinician readings (``blind``: those
    exams when the caller already knows them, saving a query)."""
    ids = list(dict.fromkeys(int(i) for i in exam_ids))
    out: dict[int, dict[str, ZoneRecord]] = {i: {} for i in ids}
    known = blind
    for chunk in chunks(ids):
        blind = open_blind_exams(user=user, exam_ids=chunk) if known is None else known
        clips = sorted(ZoneClip.objects.filter(exam_id__in=chunk).values_list("id", "exam_id", "zone", "exam__protocol"),
                       key=lambda c: (c[1], *_zone_key(c[3], c[2])))
        readings: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in (ZoneReading.objects.filter(clip__exam_id__in=chunk).exclude(source=ReadingSource.IMPORTED)
                  .order_by("clip_id", "-created_at", "-pk").values(*_FIELDS)):
            readings[r["clip_id"]].append(r)
        for clip_id, exam_id, zone, _protocol in clips:
            out[exam_id][zone] = zone_record(clip_id, zone, readings.get(clip_id, []),
                                             blind_reader=user.pk if exam_id in blind else None)
    return out


def clip_record(*, clip: ZoneClip, user: Any = None) -> ZoneRecord:
    """The record of one clip (see :func:`record_scores`)."""
    rows = list(ZoneReading.objects.filter(clip=clip).exclude(source=ReadingSource.IMPORTED)
                .order_by("-created_at", "-pk").values(*_FIELDS))
    blind = open_blind_exams(user=user, exam_ids=[clip.exam_id])
    return zone_record(clip.pk, clip.zone, rows, blind_reader=user.pk if blind else None)


def review_states(*, exam_ids: Iterable[int]) -> dict[int, ReviewState]:
    """exam id -> :class:`ReviewState`: draft (never signed), reviewed (signed, nothing changed
    since the latest signature) or amended (changed since: a clinician or adjudication reading made
    openly, or an audited change of the signed record - :func:`record_changes`).

    "Since the signature" is decided by creation order, not by comparing clocks: the signature's
    audit event names the last reading it covered (``readings_upto``), so a later reading has a
    higher id, and a later record change a higher audit event id. Timestamps taken by different
    processes (or by one clock stepped back, or equal to the microsecond) cannot misplace a
    change. A signature without that event (made before it was written) falls back to the times."""
    ids = list(dict.fromkeys(int(i) for i in exam_ids))
    out = dict.fromkeys(ids, DRAFT)
    for chunk in chunks(ids):
        latest: dict[int, tuple[int, dt.datetime, str]] = {}  # exam -> its latest signature (pk, at, by)
        studies: set[int] = set()
        for exam_id, pk, at, by, study_id in (ExamSignature.objects.filter(exam_id__in=chunk)
                                              .order_by("exam_id", "-pk")
                                              .values_list("exam_id", "pk", "at", "by_name", "exam__patient__study_id")):
            latest.setdefault(exam_id, (pk, at, by))
            studies.add(study_id)
        if not latest:
            continue
        marks = _signature_marks([pk for pk, _, _ in latest.values()], studies)
        last_read = {e: (at, last_pk) for e, at, last_pk in
                     ZoneReading.objects.filter(clip__exam_id__in=list(latest), source__in=CLINICIAN_SOURCES, blind=False)
                     .values("clip__exam_id").annotate(last=Max("created_at"), last_pk=Max("pk"))
                     .values_list("clip__exam_id", "last", "last_pk")}
        last_change = record_changes(exam_ids=list(latest), study_ids=studies,
                                     since=min(at for _, at, _ in latest.values()),
                                     after_event=min((m[0] for m in marks.values()), default=None))
        for exam_id, (pk, at, by) in latest.items():
            mark = marks.get(pk)
            read, record = last_read.get(exam_id), last_change.get(exam_id)
            changes = []
            if read is not None and (read[1] > mark[1] if mark else read[0] > at):
                changes.append((read[0], "a reading changed"))
            if record is not None and (record[2] > mark[0] if mark else record[0] > at):
                changes.append((record[0], record[1]))
            change = max(changes, default=None, key=lambda c: c[0])
            out[exam_id] = ReviewState("amended" if change else "reviewed", by or None, at, change[1] if change else "")
    return out


def _signature_marks(signature_ids: list[int], study_ids: set[int]) -> dict[int, tuple[int, int]]:
    """signature pk -> (the id of its ``sign`` audit event, the highest reading id of the exam when
    it was signed), for the signatures whose event records it (``readings.services.exam_sign``)."""
    rows = (AuditEvent.objects.filter(study_id__in=list(study_ids), action=AuditAction.SIGN, object_type="exam",
                                      changes__signature__in=signature_ids)
            .values_list("pk", "changes"))
    return {int(changes["signature"]): (pk, int(changes["readings_upto"]))
            for pk, changes in rows if isinstance(changes.get("readings_upto"), int)}


def record_changes(*, exam_ids: Sequence[int], study_ids: Iterable[int], since: dt.datetime,
                   after_event: int | None = None) -> dict[int, tuple[dt.datetime, str, int]]:
    """exam id -> its latest audited change of the record a signature covers, after ``since`` (or
    after the audit event ``after_event``), as (time, what it was in words, audit event id), in one
    query: its own fields edited (date, protocol, device...: an exam ``update``) or one of its clips
    deleted or replaced (a clip ``delete`` naming the exam). "Latest" is the audit trail's order
    (event ids), not the clock's. The audit events keep the old and new values."""
    ids = [int(i) for i in exam_ids]
    after = Q(at__gt=since) | (Q(pk__gt=after_event) if after_event is not None else Q())
    rows = (AuditEvent.objects.filter(after, study_id__in=list(study_ids))
            .filter(Q(object_type="exam", action=AuditAction.UPDATE, object_id__in=[str(i) for i in ids])
                    | Q(object_type="zoneclip", action=AuditAction.DELETE, changes__exam__old__in=ids))
            .order_by("pk").values_list("pk", "object_type", "object_id", "changes", "at"))
    out: dict[int, tuple[dt.datetime, str, int]] = {}
    for pk, kind, object_id, changes, at in rows:  # in the trail's order: the latest stays
        if kind == "exam":
            fields = ", ".join("date" if f == "acquired_at" else f for f in sorted(changes))
            out[int(object_id)] = (at, f"the exam's {fields} changed", pk)
        else:
            zone = (changes.get("zone") or {}).get("old") or "a"
            words = f"the {zone} clip was {'replaced' if changes.get('replaced') else 'deleted'}"
            out[int(changes["exam"]["old"])] = (at, words, pk)
    return out


def exam_history(*, exam_id: int, user: Any = None) -> list[dict[str, Any]]:
    """The exam's readings (by clinicians, adjudicators and the AI) and signatures, newest first:
    ``{"kind": "reading"|"signature", "at", "zone", "score", "source", "rater", "comment"}``.
    A blind reader sees only their own readings."""
    qs = (ZoneReading.objects.filter(clip__exam_id=exam_id).exclude(source=ReadingSource.IMPORTED)
          .select_related("clip"))
    if open_blind_exams(user=user, exam_ids=[exam_id]):
        qs = qs.filter(rater_id=user.pk, source=ReadingSource.CLINICIAN)
    rows: list[dict[str, Any]] = [
        {"kind": "reading", "at": r.created_at, "zone": r.clip.zone, "score": r.score, "source": r.source,
         "rater": r.rater_name, "comment": r.comment, "blind": r.blind, "id": r.pk} for r in qs]
    rows += [{"kind": "signature", "at": s.at, "zone": None, "score": None, "source": None, "rater": s.by_name,
              "comment": "", "blind": False, "id": s.pk, "record": s.record}
             for s in ExamSignature.objects.filter(exam_id=exam_id)]
    return sorted(rows, key=lambda r: (r["at"], r["kind"] == "signature", r["id"]), reverse=True)


def visible_readings(*, clip: ZoneClip, user: Any) -> QuerySet[ZoneReading]:
    """The clip's readings the user may see, newest first: all of them, except during the user's
    open blind read of the exam (then only their own clinician readings)."""
    qs = ZoneReading.objects.filter(clip=clip).select_related("clip__exam__patient", "rater")
    if open_blind_exams(user=user, exam_ids=[clip.exam_id]):
        qs = qs.filter(rater_id=user.pk, source=ReadingSource.CLINICIAN)
    return qs.order_by("-created_at", "-pk")


def clinician_history(*, clip: ZoneClip) -> QuerySet[ZoneReading]:
    """The clip's clinician and adjudication readings, newest first (the override history)."""
    return (ZoneReading.objects.filter(clip=clip, source__in=CLINICIAN_SOURCES)
            .select_related("rater", "clip__exam__patient").order_by("-created_at", "-pk"))


def latest_by_rater(rows: Iterable[tuple[int, str, int | None]]) -> dict[int, dict[str, int]]:
    """clip id -> rater -> score, from (clip id, rater, score) rows newest first (the first wins)."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for clip_id, rater, score in rows:
        if score is not None:
            out[clip_id].setdefault(rater, int(score))
    return out


# --- raters (agreement) and disagreements (adjudication) ------------------------------------------


def rater_scores(*, study: Study, exclude_exams: Iterable[int] = ()) -> dict[str, dict[int, int]]:
    """rater -> clip id -> score over the study's clips: each clinician (username, latest reading of
    the clip), each model (``model:<version>``, latest reading) and each imported rater. Adjudications
    are not a rater: they count in the record. ``exclude_exams``: exams left out (a blind read)."""
    qs = (ZoneReading.objects.filter(clip__exam__patient__study=study, score__isnull=False)
          .exclude(source=ReadingSource.ADJUDICATION).exclude(clip__exam_id__in=list(exclude_exams)))
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for clip_id, rater, score in qs.order_by("-created_at", "-pk").values_list("clip_id", "rater_name", "score"):
        if rater and score is not None:
            out[rater].setdefault(clip_id, int(score))
    return dict(sorted(out.items()))


def record_of_study(*, study: Study, exclude_exams: Iterable[int] = ()) -> dict[int, ZoneRecord]:
    """clip id -> the record of every clip of the study (``exclude_exams`` left out)."""
    ids = list(Exam.objects.filter(patient__study=study).exclude(pk__in=list(exclude_exams))
               .values_list("pk", flat=True))
    return {r.clip_id: r for zones in record_scores(exam_ids=ids).values() for r in zones.values()}


def disagreements(*, study: Study, exclude_exams: Iterable[int] = ()) -> list[dict[str, Any]]:
    """Zones of the study whose clinicians disagree (their latest readings hold two distinct scores),
    in exam order: clip, exam, patient code, zone, ``readings`` {rater: score} and ``adjudicated`` (the latest adjudication's score, or None)."""
    qs = (ZoneReading.objects.filter(clip__exam__patient__study=study, source__in=CLINICIAN_SOURCES)
          .exclude(clip__exam_id__in=list(exclude_exams)).order_by("-created_at", "-pk"))
    rows = list(qs.values_list("clip_id", "source", "rater_name", "score"))
    by_rater = latest_by_rater((c, rater, s) for c, source, rater, s in rows if source == ReadingSource.CLINICIAN)
    adjudicated: dict[int, int] = {}
    for c, source, _rater, s in rows:
        if source == ReadingSource.ADJUDICATION and s is not None:
            adjudicated.setdefault(c, int(s))
    split = [c for c, scores in by_rater.items() if len(set(scores.values())) > 1]
    clips = (ZoneClip.objects.filter(pk__in=split).select_related("exam__patient")
             .order_by("exam__patient__code", "exam__acquired_at", "zone"))
    return [{"clip": c.pk, "exam": c.exam_id, "patient": c.exam.patient_id, "patient_code": c.exam.patient.code,
             "acquired_at": c.exam.acquired_at, "zone": c.zone, "readings": dict(sorted(by_rater[c.pk].items())),
             "adjudicated": adjudicated.get(c.pk)} for c in clips]


def has_disagreement(*, clip: ZoneClip) -> bool:
    """The clip's clinicians disagree: their latest readings hold two distinct scores."""
    rows = (ZoneReading.objects.filter(clip=clip, source=ReadingSource.CLINICIAN).order_by("-created_at", "-pk")
            .values_list("clip_id", "rater_name", "score"))
    return len(set(latest_by_rater(rows).get(clip.pk, {}).values())) > 1
