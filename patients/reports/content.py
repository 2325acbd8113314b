"""What an exam report says, read once for every format (PDF, DICOM SR, FHIR).

Every score is the zone's score of record (:mod:`patients.readings.selectors`): the clinician's
reading (or an adjudication), else the AI's draft, marked "AI, not reviewed". The change of a zone
compares record scores with the patient's previous exam that has any, zone by zone on the same
probe site (``Zone.site``), so exams of two protocols compare where their zones coincide.

Who sees what follows the pages: clinicians and study admins see the patient's name and hospital
number and calendar dates; researchers see the patient code and days since day 0
(:mod:`patients.records.chrono`), never a date.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from patients.imaging.core import deid
from patients.imaging.models import ZoneClip
from patients.readings.selectors import ReviewState, ZoneRecord, record_scores, review_states
from patients.records import chrono
from patients.records.models import BloodGas, Exam
from patients.records.units import KPA_TO_MMHG
from patients.studies import permissions
from patients.studies.protocols import Zone, get_protocol

AI_NOT_REVIEWED = "AI, not reviewed"
#: How many earlier exams are searched for the previous one with record scores.
PREVIOUS_LOOKBACK = 20


@dataclass(frozen=True)
class ZoneLine:
    """One zone of the protocol with its score of record and its change since the previous exam."""

    zone: Zone
    has_clip: bool
    score: int | None
    source: str | None  # "clinician" | "ai" | None
    kind: str | None  # "clinician" | "adjudication" | "ai" | None
    reader: str | None
    ai_score: int | None
    ai_model: str | None
    previous: int | None  # the previous exam's record score at the same site

    @property
    def change(self) -> int | None:
        return None if self.score is None or self.previous is None else self.score - self.previous

    @property
    def source_text(self) -> str:
        """Where the score comes from, in words (every shown score says it)."""
        if self.score is None:
            return "not scored yet" if self.has_clip else "no clip"
        if self.source == "ai":
            return f"{AI_NOT_REVIEWED} (model {self.ai_model})" if self.ai_model else AI_NOT_REVIEWED
        word = "adjudication" if self.kind == "adjudication" else "clinician"
        return f"{word}, {self.reader}" if self.reader else word


@dataclass(frozen=True)
class Gas:
    """The latest arterial blood gas at or before the exam (pressures in mmHg as stored)."""

    pk: int
    when: str  # a date and time, or "day N.N" for researchers
    hours_before: float
    pao2_mmhg: float | None
    paco2_mmhg: float | None
    pf_ratio: float | None
    ph: float | None
    fio2: float | None

    @staticmethod
    def kpa(mmhg: float | None) -> float | None:
        return None if mmhg is None else mmhg / KPA_TO_MMHG


@dataclass(frozen=True)
class Summary:
    luss: int | None  # the sum of the record scores (None: no zone scored)
    max_luss: int
    mean: float | None
    worst_zone: str | None
    worst_score: int | None
    scored: int
    clinician_zones: int
    ai_zones: tuple[str, ...]  # zones whose record is still the AI's (not reviewed)


@dataclass(frozen=True)
class ExamReport:
    exam: Exam
    identifying: bool  # the viewer may see the name, hospital number and dates
    patient_code: str
    patient_name: str
    hospital_number: str
    pseudonym: str  # the study's export pseudonym (the de-identified clips' PatientID)
    when: str  # the exam's date and time, or "day N.N" (days since day 0)
    day: float | None  # days since day 0
    day_zero_kind: str  # chrono.ADMISSION | chrono.FIRST_EXAM | ""
    protocol_name: str
    zones: tuple[ZoneLine, ...]
    summary: Summary
    previous_when: str | None
    gas: Gas | None
    review: ReviewState
    signed_when: str | None
    models: tuple[str, ...]  # versions of the AI readings shown (record or beside it)
    clip_study_uid: str  # the clips' (or the exam's) Study Instance UID, "" when none
    made_at: dt.datetime
    made_by: str

    @property
    def study(self) -> Any:
        return self.exam.study

    def fingerprint(self) -> str:
        """A digest of what the report states (scores, sources, sign-off): same report, same digest."""
        parts = [f"{z.zone.code}={z.score}:{z.kind}:{z.reader}:{z.ai_model}" for z in self.zones]
        parts += [self.review.status, str(self.review.signed_by), str(self.review.signed_at), str(self.gas)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _summary(lines: list[ZoneLine], max_luss: int) -> Summary:
    scored = [z for z in lines if z.score is not None]
    total = sum(int(z.score or 0) for z in scored)
    worst = max(scored, key=lambda z: int(z.score or 0), default=None)  # first in anatomical order on ties
    return Summary(
        luss=total if scored else None, max_luss=max_luss, mean=total / len(scored) if scored else None,
        worst_zone=worst.zone.code if worst else None, worst_score=worst.score if worst else None,
        scored=len(scored), clinician_zones=sum(1 for z in scored if z.source == "clinician"),
        ai_zones=tuple(z.zone.code for z in scored if z.source == "ai"))


def _previous(exam: Exam, user: Any) -> tuple[Exam | None, dict[str, int]]:
    """The patient's latest earlier exam with any record score, and its record scores by site."""
    earlier = list(Exam.objects.filter(patient_id=exam.patient_id, acquired_at__lt=exam.acquired_at)
                   .order_by("-acquired_at", "-pk")[:PREVIOUS_LOOKBACK])
    records = record_scores(exam_ids=[e.pk for e in earlier], user=user)
    for prev in earlier:
        protocol = get_protocol(prev.protocol)
        by_site = {protocol.zone(code).site: r.score for code, r in records[prev.pk].items()
                   if r.score is not None and code in protocol.codes}
        if by_site:
            return prev, by_site
    return None, {}


def _gas(exam: Exam, clock: chrono.PatientClock) -> Gas | None:
    gas = (BloodGas.objects.filter(patient_id=exam.patient_id, sampled_at__lte=exam.acquired_at)
           .order_by("-sampled_at", "-pk").first())
    if gas is None:
        return None
    hours = (exam.acquired_at - gas.sampled_at).total_seconds() / 3600.0
    return Gas(gas.pk, clock.label(gas.sampled_at), round(hours, 1), gas.pao2_mmhg, gas.paco2_mmhg, gas.pf_ratio,
               gas.ph, gas.fio2)


def _line(zone: Zone, record: ZoneRecord | None, previous: dict[str, int]) -> ZoneLine:
    if record is None:
        return ZoneLine(zone, False, None, None, None, None, None, None, previous.get(zone.site))
    return ZoneLine(zone, True, record.score, record.source, record.kind, record.reader, record.ai_score,
                    record.ai_model, previous.get(zone.site))


def _clip_study_uid(exam: Exam) -> str:
    uids = (ZoneClip.objects.filter(exam=exam).exclude(study_instance_uid="").order_by("pk")
            .values_list("study_instance_uid", flat=True))
    return next(iter(uids), "") or exam.study_instance_uid


def exam_report(*, exam: Exam, user: Any) -> ExamReport:
    """The report of ``exam`` as ``user`` may see it (the caller has checked they may read it)."""
    patient, study = exam.patient, exam.study
    identifying = permissions.can_see_identifying(user, study)
    clock = chrono.clock_for(user=user, patient=patient, shows_dates=identifying)
    protocol = get_protocol(exam.protocol)
    records = record_scores(exam_ids=[exam.pk], user=user)[exam.pk]
    prev, previous = _previous(exam, user)
    lines = [_line(z, records.get(z.code), previous) for z in protocol.zones]
    review = review_states(exam_ids=[exam.pk])[exam.pk]
    models = sorted({r.ai_model for r in records.values() if r.ai_model})
    return ExamReport(
        exam=exam, identifying=identifying, patient_code=patient.code,
        patient_name=patient.name if identifying else "", hospital_number=patient.hospital_number if identifying else "",
        pseudonym=deid.pseudonym(study.secret, patient.pk), when=clock.label(exam.acquired_at),
        day=clock.day(exam.acquired_at), day_zero_kind=clock.origin_kind, protocol_name=protocol.name,
        zones=tuple(lines), summary=_summary(lines, protocol.max_score),
        previous_when=clock.label(prev.acquired_at) if prev else None, gas=_gas(exam, clock), review=review,
        signed_when=clock.label(review.signed_at) if review.signed_at else None, models=tuple(models),
        clip_study_uid=_clip_study_uid(exam), made_at=dt.datetime.now(dt.UTC),
        made_by=getattr(user, "username", "") or "")
