"""The zone-level wide export: one row per patient x zone, a column group per exam (the zone's course).

The exam-level wide export is one row per exam with a column per zone; this is its transpose, for
analyses of one zone over time (does R3 clear before L3?).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db.models import Count

from patients.imaging.core.deid import pseudonym
from patients.readings.selectors import record_scores
from patients.records.models import Exam, Patient
from patients.research.export.columns import Column, patient_head
from patients.research.export.lookups import DayZero, chosen_scores, num
from patients.research.export.params import ExportParams
from patients.studies.models import Study
from patients.studies.protocols import PROTOCOLS
from scoring.selectors import six_class_of_jobs


def course_exam_count(study: Study) -> int:
    """The most exams any patient of the study has: the number of exam column groups."""
    counts = Exam.objects.filter(patient__study=study).values("patient_id").annotate(n=Count("pk"))
    return max((c["n"] for c in counts), default=0)


def course_columns(study: Study, params: ExportParams) -> list[Column]:
    """Patient head, protocol and zone, then per exam n: its day, the zone's score of record and source
    and the AI's six-class severity of its clip."""
    out = patient_head(params) + [
        Column("protocol", "string", "", "Lung-zone protocol of the exams in this row"),
        Column("zone", "string", "", "Lung zone code of the protocol (R1 ... L7)"),
    ]
    for n in range(1, course_exam_count(study) + 1):
        out += [Column(f"exam{n}_day", "number", "days", f"Day of the patient's exam {n} (see day)"),
                Column(f"exam{n}_record", "integer", "0-3", f"Score of record of the zone at exam {n} "
                                                             "(empty: not scanned)"),
                Column(f"exam{n}_source", "string", "", f"clinician, adjudication or ai: who gave exam {n}'s "
                                                       "score of record"),
                Column(f"exam{n}_ai_six_class", "number", "0-4", f"AI severity of the zone's clip at exam {n} on the "
                                                                 "six-class scale of Hu et al. 2021 (mean over its "
                                                                 "frames; zone_ai_six_class_mean of the zone export)")]
    return out


def _zone_order(protocol: str, zone: str) -> tuple[int, str]:
    codes = PROTOCOLS[protocol].codes if protocol in PROTOCOLS else ()
    return (codes.index(zone) if zone in codes else len(codes), zone)


def course_rows(study: Study, params: ExportParams, *, batch: int = 200) -> Iterator[list[Any]]:
    """One row per patient x (protocol, zone) scanned at least once, exams in time order."""
    width = course_exam_count(study)
    patients = list(Patient.objects.filter(study=study).order_by("pk"))
    for start in range(0, len(patients), batch):
        chunk = patients[start:start + batch]
        day_zero = DayZero({p.pk: p for p in chunk})
        exams = list(Exam.objects.filter(patient__in=chunk).order_by("patient_id", "acquired_at", "pk"))
        records = record_scores(exam_ids=[e.pk for e in exams])
        chosen = chosen_scores([e.pk for e in exams], params.model)
        six = six_class_of_jobs(s.job_id for s in chosen.values())
        six_of = {z.clip_id: z.mean for e in six.values() for z in e.zones}
        by_patient: dict[int, list[Exam]] = defaultdict(list)
        for exam in exams:
            by_patient[exam.patient_id].append(exam)
        for patient in chunk:
            yield from _patient_course(study, patient, by_patient[patient.pk], records, six_of, day_zero, params,
                                       width)


def _patient_course(study: Study, patient: Patient, exams: list[Exam], records: dict[int, Any],
                    six_of: dict[int, float], day_zero: DayZero, params: ExportParams,
                    width: int) -> Iterator[list[Any]]:
    head: list[Any] = [study.name, pseudonym(study.secret, patient.pk)]
    if params.identifying:
        head += [patient.code, patient.admission_date.isoformat() if patient.admission_date else None]
    head.append(patient.sex)
    zones = sorted({(e.protocol, z) for e in exams for z in records[e.pk]},
                   key=lambda pz: (pz[0], *_zone_order(*pz)))
    days = [day_zero.day(patient.pk, e.acquired_at)[0] for e in exams]
    for protocol, zone in zones:
        cells: list[Any] = []
        for exam, day in zip(exams, days, strict=True):
            rec = records[exam.pk].get(zone) if exam.protocol == protocol else None
            six = num(six_of.get(rec.clip_id)) if rec is not None else None
            if rec is None or rec.score is None:
                cells += [day, None, None, six]
            else:
                cells += [day, rec.score, rec.kind, six]
        yield head + [protocol, zone] + cells + [None] * (4 * (width - len(exams)))
