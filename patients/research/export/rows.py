"""The export's data rows, batch by batch (``QuerySet.iterator``), in constant memory."""
from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.utils import timezone

from patients.imaging.core.deid import pseudonym
from patients.imaging.models import ZoneClip
from patients.readings.selectors import ReviewState, ZoneRecord, record_scores, review_states
from patients.records.models import Exam, Patient
from patients.records.selectors import ExamState, severity_now_for
from patients.research.export.columns import SEVERITY_LABELS, wide_zones
from patients.research.export.lookups import (
    CLINICAL_FIELDS,
    GAS_FIELDS,
    ClinicalIndex,
    DayZero,
    ExamScores,
    chosen_scores,
    clip_scores,
    days,
    nearest_gases,
    num,
    severities,
)
from patients.research.export.params import ExportParams
from patients.studies.models import Study
from patients.studies.protocols import PROTOCOLS, get_protocol
from scoring.selectors import SixClassExam, SixClassZone, record_summary, six_class_of_jobs
from scoring.severity import risk_block, severity_model_card


def _patient_values(study: Study, patient: Patient, params: ExportParams) -> list[Any]:
    values: list[Any] = [study.name, pseudonym(study.secret, patient.pk)]
    if params.identifying:
        values += [patient.code, patient.admission_date.isoformat() if patient.admission_date else None]
    return [*values, patient.sex]


def _severity_values(now: ExamState, sev: Mapping[str, Any] | None, card: Mapping[str, Any] | None) -> list[Any]:
    """Severity now, then the risk model's prediction (clipped as every page shows it)."""
    head = [now.now.guideline, None if now.now.who_low is None else now.now.who_text, "; ".join(now.now.missing) or None]
    risk = risk_block(sev, card)
    if risk is None:
        return head + [None] * (len(SEVERITY_LABELS) + 4)
    probs = list(risk["class_probabilities"]) + [None] * len(SEVERITY_LABELS)
    return head + [num(risk["probability"]), int(risk["calibrated"]), risk["course_class"],
                   *[num(p) for p in probs[: len(SEVERITY_LABELS)]], num(risk["probability"])]


def _gas_values(gas: tuple[dict[str, Any], float] | None) -> list[Any]:
    if gas is None:
        return [None] * (len(GAS_FIELDS) + 2)
    row, hours = gas
    pf = row["pao2_mmhg"] / row["fio2"] if row["pao2_mmhg"] is not None and row["fio2"] else None
    return [num(hours, 2), *[num(row[f]) for f in GAS_FIELDS], num(pf, 1)]


def _clinical_values(record: Mapping[str, Any] | None, at: dt.datetime) -> list[Any]:
    if record is None:
        return [None] * (len(CLINICAL_FIELDS) + 1)
    out: list[Any] = [days(at - record["recorded_at"])]
    for name in CLINICAL_FIELDS:
        value = record[name]
        out.append(int(value) if isinstance(value, bool) else (value if value != "" else None))
    return out


def batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def export_rows(study: Study, params: ExportParams, *, batch: int = 500) -> Iterator[list[Any]]:
    """The data rows (without the header), batch by batch."""
    if params.level == "patient":
        yield from _patient_rows(study, params, batch)
    else:
        yield from _exam_rows(study, params, batch)


@dataclass
class _ExamBatch:
    """What the rows of one batch of exams need, loaded in a fixed number of queries."""

    chosen: dict[int, ExamScores]
    scores: dict[int, dict[str, Any]]
    records: dict[int, ZoneRecord]  # clip id -> its score of record
    states: dict[int, ReviewState]
    severities: dict[int, dict[str, Any]]
    now: dict[int, ExamState]  # exam id -> severity now (clinical record and blood gas of the exam day)
    card: dict[str, Any] | None  # the installed risk model's figures (scoring.severity.severity_model_card)
    gases: dict[int, tuple[dict[str, Any], float]]
    clinical: ClinicalIndex
    day_zero: DayZero
    clips: dict[int, list[tuple[int, str]]]
    six: dict[int, SixClassExam]  # exam id -> the AI's six-class severity of its chosen job
    six_zones: dict[int, SixClassZone]  # clip id -> its six-class result in that job


def _exam_batch(exams: list[Exam], params: ExportParams) -> _ExamBatch:
    ids = [e.pk for e in exams]
    chosen = chosen_scores(ids, params.model)
    clips: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for clip_id, exam_id, zone in ZoneClip.objects.filter(exam_id__in=ids).values_list("pk", "exam_id", "zone"):
        clips[exam_id].append((clip_id, zone))
    zone_long = params.level == "zone" and not params.wide
    by_job = six_class_of_jobs((s.job_id for s in chosen.values()), dominant=zone_long)
    six = {exam_id: by_job[s.job_id] for exam_id, s in chosen.items() if s.job_id in by_job}
    sev = severities(ids, chosen)
    return _ExamBatch(
        six=six, six_zones={z.clip_id: z for e in six.values() for z in e.zones},
        chosen=chosen,
        scores=clip_scores((s.job_id for s in chosen.values()), full=zone_long),
        records={r.clip_id: r for zones in record_scores(exam_ids=ids).values() for r in zones.values()},
        states=review_states(exam_ids=ids), severities=sev,
        now=severity_now_for(exams=[(e.pk, e.patient_id, e.acquired_at) for e in exams]),
        card=severity_model_card() if sev else None,
        gases=nearest_gases(exams, params.window_hours), clinical=ClinicalIndex({e.patient_id for e in exams}),
        day_zero=DayZero({e.patient_id: e.patient for e in exams}), clips=clips,
    )


def _exam_rows(study: Study, params: ExportParams, batch: int) -> Iterator[list[Any]]:
    exams = (Exam.objects.filter(patient__study=study).select_related("patient")
             .order_by("patient_id", "acquired_at", "pk").iterator(chunk_size=batch))
    zones = wide_zones(study) if params.wide else []
    number: tuple[int, int] = (0, 0)  # (patient id, exam count so far) carried across batches
    for chunk in batched(exams, batch):
        data = _exam_batch(chunk, params)
        for exam in chunk:
            number = (exam.patient_id, number[1] + 1 if number[0] == exam.patient_id else 1)
            day, origin = data.day_zero.day(exam.patient_id, exam.acquired_at)
            head = _patient_values(study, exam.patient, params) + [exam.pk, number[1], day, origin]
            if params.identifying:
                head.append(timezone.localtime(exam.acquired_at).isoformat())
            exam_clips = _in_zone_order(exam, data.clips.get(exam.pk, []))
            tail = (_severity_values(data.now[exam.pk], data.severities.get(exam.pk), data.card)
                    + _gas_values(data.gases.get(exam.pk))
                    + _clinical_values(data.clinical.before(exam.patient_id, exam.acquired_at), exam.acquired_at))
            signed = _signed(exam, data, params)
            if params.level == "zone" and not params.wide:
                for values in _zone_values(exam, exam_clips, data, signed):
                    yield head + values + tail
            else:
                yield head + _exam_values(exam, exam_clips, data, zones, signed) + tail


def _in_zone_order(exam: Exam, clips: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(clip id, zone) in the protocol's anatomical order, unknown zones last by code."""
    order = {c: i for i, c in enumerate(get_protocol(exam.protocol).codes)} if exam.protocol in PROTOCOLS else {}
    return sorted(clips, key=lambda c: (order.get(c[1], 99), c[1]))


def _signed(exam: Exam, data: _ExamBatch, params: ExportParams) -> Any:
    """When the exam was last signed off: its time for those who see dates, else its day."""
    at = data.states[exam.pk].signed_at
    if at is None:
        return None
    return timezone.localtime(at).isoformat() if params.identifying else data.day_zero.day(exam.patient_id, at)[0]


_SUMMARY = ("luss", "max_luss", "mean_score", "worst_zone", "zones_ge2", "coverage")


def _record_values(exam: Exam, exam_clips: list[tuple[int, str]], data: _ExamBatch) -> dict[str, Any]:
    """The exam's headline from its record scores (luss, max_luss, mean_score, worst_zone, zones_ge2,
    coverage: None without any), luss_ai (the AI's readings) and overrides (zones a clinician read)."""
    recs = [data.records[cid] for cid, _ in exam_clips if cid in data.records]
    scores = {r.zone: r.score for r in recs if r.score is not None}
    ai = [r.ai_score for r in recs if r.ai_score is not None]
    codes = get_protocol(exam.protocol).codes if exam.protocol in PROTOCOLS else tuple(scores)
    summary = record_summary(scores, codes) if scores else {}
    return {**{k: summary.get(k) for k in _SUMMARY}, "luss_ai": sum(ai) if ai else None,
            "overrides": sum(1 for r in recs if r.source == "clinician")}


def _zone_values(exam: Exam, exam_clips: list[tuple[int, str]], data: _ExamBatch, signed: Any) -> Iterator[list[Any]]:
    """The zone columns of each clip of an exam (zone level, long format)."""
    summary = data.chosen.get(exam.pk)
    state = data.states[exam.pk]
    luss = _record_values(exam, exam_clips, data)["luss"]
    exam_six = data.six.get(exam.pk)
    for clip_id, zone in exam_clips:
        s = data.scores.get(clip_id)
        probs = (list(s["probs"] or []) + [None] * 4)[:4] if s else [None] * 4
        r = data.records.get(clip_id)
        six = data.six_zones.get(clip_id)
        yield [
            zone, clip_id, s["score"] if s else None, *[num(p) for p in probs],
            json.dumps(s["findings"], sort_keys=True, separators=(",", ":")) if s else None,
            s["aggregator"] if s else None, r.clinician_score if r else None, r.score if r else None,
            r.ai_score if r else None, r.clinician_score if r else None, r.score if r else None,
            r.kind if r else None, r.reader if r else None, signed,
            summary.version if summary else None, luss, luss, state.status,
            num(six.mean) if six else None, six.dominant if six else None, num(exam_six.mean) if exam_six else None,
        ]


def _exam_values(exam: Exam, exam_clips: list[tuple[int, str]], data: _ExamBatch, zones: list[str],
                 signed: Any) -> list[Any]:
    """The exam-score columns of an exam (the headline of its score of record, the AI's sums beside
    it), and in the wide format per zone the AI's score, the latest clinician reading, then the
    record scores."""
    summary = data.chosen.get(exam.pk)
    state = data.states[exam.pk]
    rec = _record_values(exam, exam_clips, data)
    six = data.six.get(exam.pk)
    values = [
        summary.version if summary else None, exam.protocol, len(exam_clips),
        rec["luss"], rec["max_luss"], num(rec["mean_score"]), rec["worst_zone"] or None, rec["zones_ge2"],
        num(rec["coverage"]), rec["overrides"], rec["luss"], rec["luss_ai"], summary.luss if summary else None,
        state.status, state.signed_by, signed, num(six.mean) if six else None, six.frames if six else None,
    ]
    by_zone = {zone: cid for cid, zone in exam_clips}
    records, six_zones = [], []
    for column in zones:
        # ``<protocol>:<code>``: only the exam's own protocol fills its columns.
        protocol, _, code = column.partition(":")
        cid = by_zone.get(code) if protocol == exam.protocol else None
        s = data.scores.get(cid) if cid is not None else None
        r = data.records.get(cid) if cid is not None else None
        values += [s["score"] if s else None, r.clinician_score if r else None]
        records.append(r.score if r else None)
        zone_six = data.six_zones.get(cid) if cid is not None else None
        six_zones.append(num(zone_six.mean) if zone_six else None)
    return values + records + six_zones


def _patient_rows(study: Study, params: ExportParams, batch: int) -> Iterator[list[Any]]:
    patients = Patient.objects.filter(study=study).order_by("pk").iterator(chunk_size=batch)
    for chunk in batched(patients, batch):
        by_id = {p.pk: p for p in chunk}
        exams = list(Exam.objects.filter(patient_id__in=by_id).order_by("patient_id", "acquired_at", "pk")
                     .values("pk", "patient_id", "acquired_at"))
        clip_counts = dict(ZoneClip.objects.filter(exam__patient_id__in=by_id).values("exam__patient_id")
                           .annotate(n=Count("pk")).values_list("exam__patient_id", "n"))
        ids = [e["pk"] for e in exams]
        chosen = chosen_scores(ids, params.model)
        predicted = severities(ids, chosen)
        six = six_class_of_jobs(s.job_id for s in chosen.values())
        six_of = {exam_id: six[s.job_id].mean for exam_id, s in chosen.items() if s.job_id in six}
        clinical = ClinicalIndex(by_id)
        day_zero = DayZero(by_id)
        finals = {exam_id: sum(r.score for r in zones.values() if r.score is not None)
                  for exam_id, zones in record_scores(exam_ids=ids).items()
                  if any(r.score is not None for r in zones.values())}
        states = review_states(exam_ids=ids)
        per_patient: dict[int, list[Any]] = defaultdict(list)
        for e in exams:
            per_patient[e["patient_id"]].append(e)
        for patient in chunk:
            mine = per_patient.get(patient.pk, [])
            day_of = [day_zero.day(patient.pk, e["acquired_at"])[0] for e in mine]
            # The score of record of each exam with one: first, last, the highest (the earliest on a tie).
            read = [(finals[e["pk"]], d) for e, d in zip(mine, day_of, strict=True) if e["pk"] in finals]
            top = max(read, key=lambda rd: rd[0], default=None)
            last_sev = next((predicted[e["pk"]]["label"] for e in reversed(mine) if e["pk"] in predicted), None)
            latest = clinical.latest(patient.pk)
            first_luss, last_luss = (read[0][0], read[-1][0]) if read else (None, None)
            sixes = [six_of[e["pk"]] for e in mine if e["pk"] in six_of]
            yield _patient_values(study, patient, params) + [
                len(mine), clip_counts.get(patient.pk, 0), day_of[0] if day_of else None,
                day_of[-1] if day_of else None, first_luss, last_luss,
                num(sixes[0]) if sixes else None, num(sixes[-1]) if sixes else None, first_luss, last_luss,
                sum(1 for e in mine if states[e["pk"]].status != "draft"),
                top[0] if top else None, top[1] if top else None, last_sev,
                latest["age"] if latest else None,
            ]
