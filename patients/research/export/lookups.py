"""Per-batch lookups of the export: a fixed number of queries per batch of exams or patients."""
from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Min

from patients.records import chrono
from patients.records.models import BloodGas, ClinicalInfo, Exam, Patient
from patients.records.pairing import ExamPoint, GasPoint, pair_nearest
from scoring.models import ClipScore, ExamScore, SeverityPrediction
from scoring.study_model import study_model_rank


@dataclass
class ExamScores:
    """The exam score an export row uses (its job, model version and figures)."""

    job_id: int
    version: str
    luss: int
    max_luss: int
    mean_score: float | None
    worst_zone: str
    zones_ge2: int
    coverage: float


def chosen_scores(exam_ids: Sequence[int], model: str | None) -> dict[int, ExamScores]:
    """Per exam, the ExamScore of ``model``; else of the model its study scores with (a promoted
    site model, else the active model); else the newest."""
    qs = ExamScore.objects.filter(exam_id__in=exam_ids)
    if model:
        qs = qs.filter(model_version__version=model)
    rows = qs.annotate(rank=study_model_rank("exam__patient__study_id")).order_by(
        "exam_id", "rank", "-created_at", "-pk").values(
        "exam_id", "job_id", "model_version__version", "luss", "max_luss", "mean_score",
        "worst_zone", "zones_ge2", "coverage")
    chosen: dict[int, Any] = {}
    for r in rows:
        chosen.setdefault(r["exam_id"], r)
    return {
        k: ExamScores(r["job_id"], r["model_version__version"], r["luss"], r["max_luss"], r["mean_score"],
                      r["worst_zone"], r["zones_ge2"], r["coverage"])
        for k, r in chosen.items()
    }


def clip_scores(job_ids: Iterable[int], *, full: bool) -> dict[int, dict[str, Any]]:
    """clip id -> its score row of those jobs (``full``: with probabilities, findings, aggregator)."""
    # Exam-level rows only need the score: skip decoding two JSON columns per zone.
    names = ("clip_id", "zone", "score", "probs", "findings", "aggregator") if full else ("clip_id", "score")
    return {r["clip_id"]: r for r in ClipScore.objects.filter(job_id__in=list(job_ids)).values(*names)}


def severities(exam_ids: Sequence[int], chosen: Mapping[int, ExamScores]) -> dict[int, dict[str, Any]]:
    """Per exam, the prediction of the chosen job, else the newest."""
    out: dict[int, Any] = {}
    for r in (SeverityPrediction.objects.filter(exam_id__in=exam_ids).order_by("exam_id", "-created_at", "-pk")
              .values("exam_id", "job_id", "label", "probs", "severe_probability", "model_version")):
        job = chosen.get(r["exam_id"])
        if r["exam_id"] not in out or (job is not None and r["job_id"] == job.job_id
                                       and out[r["exam_id"]]["job_id"] != job.job_id):
            out[r["exam_id"]] = r
    return out


GAS_FIELDS = ("paco2_mmhg", "pao2_mmhg", "ph", "hco3", "lactate", "sao2", "fio2")


def nearest_gases(exams: Sequence[Exam], window_hours: float) -> dict[int, tuple[dict[str, Any], float]]:
    """exam id -> (nearest blood gas of the patient within the window, hours from the exam)."""
    patient_ids = {e.patient_id for e in exams}
    gases = {g["pk"]: g for g in BloodGas.objects.filter(patient_id__in=patient_ids).values("pk", "patient_id",
                                                                                          "sampled_at", *GAS_FIELDS)}
    pairs = pair_nearest(
        (ExamPoint(e.pk, e.patient_id, e.acquired_at, 0.0) for e in exams),
        (GasPoint(g["pk"], g["patient_id"], g["sampled_at"],
                  1.0 if any(g[f] is not None for f in GAS_FIELDS) else None) for g in gases.values()),
        window_hours,
    )
    return {int(p.exam): (gases[int(p.gas)], p.hours_apart) for p in pairs}  # type: ignore[call-overload]


CLINICAL_FIELDS = ("age", *ClinicalInfo.COMORBIDITIES, *ClinicalInfo.SYMPTOMS, "oxygen_support", "spo2",
                   "respiratory_rate")


class ClinicalIndex:
    """The latest clinical record at or before a time, per patient."""

    def __init__(self, patient_ids: Iterable[int]) -> None:
        self.times: dict[int, list[dt.datetime]] = defaultdict(list)
        self.rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in (ClinicalInfo.objects.filter(patient_id__in=list(patient_ids)).order_by("patient_id", "recorded_at", "pk")
                  .values("patient_id", "recorded_at", *CLINICAL_FIELDS)):
            self.times[r["patient_id"]].append(r["recorded_at"])
            self.rows[r["patient_id"]].append(r)

    def before(self, patient_id: int, at: dt.datetime) -> dict[str, Any] | None:
        i = bisect.bisect_right(self.times.get(patient_id, []), at)
        return self.rows[patient_id][i - 1] if i else None

    def latest(self, patient_id: int) -> dict[str, Any] | None:
        rows = self.rows.get(patient_id)
        return rows[-1] if rows else None


def num(value: Any, digits: int = 4) -> Any:
    """A CSV number: rounded to ``digits`` decimals (None stays None)."""
    if value is None:
        return None
    return round(float(value), digits)


def days(delta: dt.timedelta) -> float:
    """A time difference in days, three decimals."""
    return round(delta.total_seconds() / 86400.0, 3)


class DayZero:
    """Day 0 per patient (:func:`patients.records.chrono.day_zero`, the pages' convention too), batched."""

    # The CSV's codes of the day-0 kinds (``day_origin`` column).
    CODES = {chrono.ADMISSION: "admission", chrono.FIRST_EXAM: "first_exam"}

    def __init__(self, patients: Mapping[int, Patient]) -> None:
        missing = [pk for pk, p in patients.items() if p.admission_date is None]
        first: dict[int, dt.datetime] = {}
        if missing:
            for row in (Exam.objects.filter(patient_id__in=missing).values("patient_id")
                        .annotate(first=Min("acquired_at"))):
                first[row["patient_id"]] = row["first"]
        self.origin: dict[int, tuple[dt.datetime, str]] = {}
        for pk, p in patients.items():
            origin, kind = chrono.day_zero(p.admission_date, first.get(pk))
            if origin is not None:
                self.origin[pk] = (origin, self.CODES[kind])

    def day(self, patient_id: int, at: dt.datetime) -> tuple[float | None, str]:
        origin = self.origin.get(patient_id)
        if origin is None:
            return None, ""
        return days(at - origin[0]), origin[1]
