"""Cohort export: CSV rows streamed in constant memory, with a data dictionary.

Levels and formats (``?level=...&format=...``):

* ``zone`` + ``long``: one row per recorded zone (a clip) of every exam: patient x exam x zone.
* ``exam`` + ``long``: one row per exam.
* ``zone`` or ``exam`` + ``wide``: one row per exam with a ``zone_<Z>_score`` and
  ``zone_<Z>_override`` column per zone (the study protocol's zones first, then those of other
  protocols used by its exams).
* ``patient`` + ``long``: one row per patient (course summary).

Scores are those of one model version per exam: ``?model=<version>`` when given, else the
newest result of the active model, else the newest result of any model (as on the exam page).
Blood gases are paired with each exam by ``dashboards.stats.pair_nearest`` (nearest gas of the
patient within ``?window_hours=``, default 12). The clinical record is the latest one recorded at
or before the exam.

Privacy: patients appear under their study pseudonym (HMAC-SHA256 of the patient id with the
study secret, see :func:`patients.imaging.core.deid.pseudonym`), never name or hospital number. Time is "days
since admission" (or since the patient's first exam when the admission date is unknown). Only
users who may see identifying data (clinicians, study admins) also get ``patient_code``,
``admission_date`` and ``acquired_at``; researchers never receive a calendar date.

Memory: exams (or patients) are read with ``QuerySet.iterator(chunk_size=batch)`` and processed
batch by batch with a fixed number of queries per batch, so the whole cohort is never in memory.
"""
from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from patients import chrono
from patients.dashboards.stats import ExamPoint, GasPoint, pair_nearest
from patients.imaging.core.deid import pseudonym
from patients.models import BloodGas, ClinicalInfo, Exam, Patient, ScoreOverride, Study, ZoneClip
from patients.protocols import PROTOCOLS, get_protocol

LEVELS = ("zone", "exam", "patient")
FORMATS = ("long", "wide")
DEFAULT_WINDOW_HOURS = 12.0
MAX_WINDOW_HOURS = 24.0 * 14
SEVERITY_LABELS = ("mild", "moderate", "severe", "critical")


class ExportParamError(ValueError):
    """A bad export parameter; the message names it and the valid values."""


@dataclass(frozen=True)
class ExportParams:
    level: str = "zone"
    format: str = "long"
    model: str | None = None
    window_hours: float = DEFAULT_WINDOW_HOURS
    identifying: bool = False

    @property
    def wide(self) -> bool:
        return self.format == "wide"


def parse_export_params(query: Mapping[str, Any], *, identifying: bool) -> ExportParams:
    """Read ``level``, ``format``, ``model`` and ``window_hours``; raise :class:`ExportParamError`."""

    def get(name: str) -> str:
        raw = query.get(name)
        return "" if raw is None else str(raw).strip()

    level = get("level") or "zone"
    if level not in LEVELS:
        raise ExportParamError(f"level={level!r}: expected one of {', '.join(LEVELS)}")
    fmt = get("format") or "long"
    if fmt not in FORMATS:
        raise ExportParamError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "wide" and level == "patient":
        raise ExportParamError("format=wide needs level=exam or level=zone (one row per exam, a column per zone)")
    model = get("model") or None
    if model is not None:
        from scoring.models import ModelVersion

        if not ModelVersion.objects.filter(version=model).exists():
            known = list(ModelVersion.objects.order_by("-created_at").values_list("version", flat=True)[:20])
            raise ExportParamError(f"model={model!r} is not a known model version; known: {', '.join(known) or 'none'}")
    raw_window = get("window_hours") or str(DEFAULT_WINDOW_HOURS)
    try:
        window = float(raw_window)
    except ValueError:
        raise ExportParamError(f"window_hours={raw_window!r} is not a number") from None
    if math.isnan(window) or not 0 < window <= MAX_WINDOW_HOURS:
        raise ExportParamError(f"window_hours={raw_window!r}: expected more than 0 and at most {MAX_WINDOW_HOURS:g}")
    return ExportParams(level=level, format=fmt, model=model, window_hours=window, identifying=identifying)


# --- columns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | integer | number | boolean (0/1) | date | datetime | json
    unit: str
    meaning: str


def _c(name: str, type_: str, unit: str, meaning: str) -> Column:
    return Column(name, type_, unit, meaning)


_HEAD = [
    _c("study", "string", "", "Study name"),
    _c("patient", "string", "", "Patient pseudonym: stable within the study, not reversible without the study secret"),
]
_IDENTIFYING_PATIENT = [
    _c("patient_code", "string", "", "The study's own patient code (clinicians and study admins only)"),
    _c("admission_date", "date", "", "Admission date (clinicians and study admins only)"),
]
_EXAM_HEAD = [
    _c("exam_id", "integer", "", "Exam id in LUSWeb"),
    _c("exam_number", "integer", "", "1 for the patient's first exam, 2 for the second ..."),
    _c("day", "number", "days", "Exam time minus the admission date (00:00), or minus the first exam when the admission date is unknown"),
    _c("day_origin", "string", "", "'admission' or 'first_exam': what day 0 is"),
]
_IDENTIFYING_EXAM = [_c("acquired_at", "datetime", "ISO 8601", "Exam time (clinicians and study admins only)")]
_SEX = [_c("sex", "string", "", "F, M, O (other) or U (unknown)")]
_ZONE = [
    _c("zone", "string", "", "Lung zone code of the exam's protocol (R1 ... L7)"),
    _c("clip_id", "integer", "", "Zone clip id in LUSWeb"),
    _c("score", "integer", "0-3", "AI Soldati score of the zone"),
    _c("p0", "number", "probability", "AI probability of score 0"),
    _c("p1", "number", "probability", "AI probability of score 1"),
    _c("p2", "number", "probability", "AI probability of score 2"),
    _c("p3", "number", "probability", "AI probability of score 3"),
    _c("findings", "json", "probability", "AI finding probabilities (A-lines, B-lines, consolidation ...)"),
    _c("aggregator", "string", "", "How frame scores were aggregated into the clip score"),
    _c("override_score", "integer", "0-3", "Latest clinician override of the zone score, if any"),
    _c("final_score", "integer", "0-3", "override_score when present, else score"),
]
_MODEL = [_c("model_version", "string", "", "Model version of the scores")]
_EXAM_SCORES = [
    _c("protocol", "string", "", "Lung-zone protocol of the exam"),
    _c("zones_recorded", "integer", "zones", "Zones with a clip"),
    _c("luss", "integer", "points", "Global LUS score: sum of the scored zones' AI scores"),
    _c("max_luss", "integer", "points", "3 x the number of protocol zones"),
    _c("mean_score", "number", "0-3", "Mean AI zone score"),
    _c("worst_zone", "string", "", "Zone with the highest AI score"),
    _c("zones_ge2", "integer", "zones", "Zones with an AI score of 2 or more"),
    _c("coverage", "number", "fraction", "Scored zones / protocol zones"),
    _c("overrides", "integer", "zones", "Zones with a clinician override"),
    _c("luss_final", "integer", "points", "Global LUS score with overrides replacing AI scores"),
]
_SEVERITY = [
    _c("severity", "string", "", "Predicted severity class: mild, moderate, severe, critical"),
    *[_c(f"severity_p_{label}", "number", "probability", f"Probability of {label}") for label in SEVERITY_LABELS],
    _c("severe_probability", "number", "probability", "P(severe or critical)"),
]
_GAS = [
    _c("gas_hours_from_exam", "number", "hours", "Blood-gas time minus exam time (nearest gas within the window)"),
    _c("paco2_mmhg", "number", "mmHg", "PaCO2"),
    _c("pao2_mmhg", "number", "mmHg", "PaO2"),
    _c("ph", "number", "", "pH"),
    _c("hco3", "number", "mmol/L", "Bicarbonate"),
    _c("lactate", "number", "mmol/L", "Lactate"),
    _c("sao2", "number", "%", "Arterial oxygen saturation"),
    _c("fio2", "number", "fraction", "Inspired oxygen fraction (0.21-1.0)"),
    _c("pf_ratio", "number", "mmHg", "PaO2 / FiO2"),
]
_CLINICAL = [
    _c("clinical_days_before_exam", "number", "days", "Exam time minus the time of the clinical record used"),
    _c("age", "integer", "years", "Age at the clinical record"),
    *[_c(name, "boolean", "0/1", f"Comorbidity: {name.replace('_', ' ')}") for name in ClinicalInfo.COMORBIDITIES],
    *[_c(name, "boolean", "0/1", f"Symptom: {name.replace('_', ' ')}") for name in ClinicalInfo.SYMPTOMS],
    _c("oxygen_support", "string", "", "none, nasal_cannula, mask, hfnc, niv, invasive, ecmo"),
    _c("spo2", "number", "%", "Peripheral oxygen saturation"),
    _c("respiratory_rate", "number", "breaths/min", "Respiratory rate"),
]
_PATIENT = [
    _c("exams", "integer", "", "Number of exams"),
    _c("clips", "integer", "", "Number of zone clips"),
    _c("first_exam_day", "number", "days", "Day of the first exam (see day)"),
    _c("last_exam_day", "number", "days", "Day of the last exam"),
    _c("first_luss", "integer", "points", "Global LUS score of the first scored exam"),
    _c("last_luss", "integer", "points", "Global LUS score of the last scored exam"),
    _c("max_luss", "integer", "points", "Highest global LUS score"),
    _c("max_luss_day", "number", "days", "Day of the highest global LUS score"),
    _c("last_severity", "string", "", "Severity class predicted at the last exam with a prediction"),
    _c("age", "integer", "years", "Age at the latest clinical record"),
]


def wide_zones(study: Study) -> list[str]:
    """The zone columns of a wide export: the study protocol's, then other protocols' in use."""
    codes = list(get_protocol(study.protocol).codes)
    used = Exam.objects.filter(patient__study=study).values_list("protocol", flat=True).distinct()
    for key in sorted(set(used) - {study.protocol}):
        codes += [c for c in PROTOCOLS[key].codes if c not in codes] if key in PROTOCOLS else []
    return codes


def columns(study: Study, params: ExportParams) -> list[Column]:
    """The export's columns, in order."""
    head = list(_HEAD) + (_IDENTIFYING_PATIENT if params.identifying else []) + _SEX
    if params.level == "patient":
        return head + _PATIENT
    exam_head = list(_EXAM_HEAD) + (_IDENTIFYING_EXAM if params.identifying else [])
    if params.wide:
        zones: list[Column] = []
        for code in wide_zones(study):
            zones += [_c(f"zone_{code}_score", "integer", "0-3", f"AI score of zone {code}"),
                      _c(f"zone_{code}_override", "integer", "0-3", f"Clinician override of zone {code}, if any")]
        return head + exam_head + _MODEL + _EXAM_SCORES + zones + _SEVERITY + _GAS + _CLINICAL
    if params.level == "exam":
        return head + exam_head + _MODEL + _EXAM_SCORES + _SEVERITY + _GAS + _CLINICAL
    return head + exam_head + _ZONE + _MODEL + [_EXAM_SCORES[2]] + _SEVERITY + _GAS + _CLINICAL


# --- per-batch lookups ---------------------------------------------------------------------------


@dataclass
class _ExamScores:
    job_id: int
    version: str
    luss: int
    max_luss: int
    mean_score: float | None
    worst_zone: str
    zones_ge2: int
    coverage: float


def _chosen_scores(exam_ids: Sequence[int], model: str | None) -> dict[int, _ExamScores]:
    """Per exam, the ExamScore of ``model``; else of the active model; else the newest."""
    from scoring.models import ExamScore

    qs = ExamScore.objects.filter(exam_id__in=exam_ids)
    if model:
        qs = qs.filter(model_version__version=model)
    rows = qs.order_by("exam_id", "-created_at", "-pk").values(
        "exam_id", "job_id", "model_version__version", "model_version__is_active", "luss", "max_luss", "mean_score",
        "worst_zone", "zones_ge2", "coverage")
    chosen: dict[int, Any] = {}
    for r in rows:
        best = chosen.get(r["exam_id"])
        if best is None or (r["model_version__is_active"] and not best["model_version__is_active"]):
            chosen[r["exam_id"]] = r
    return {
        k: _ExamScores(r["job_id"], r["model_version__version"], r["luss"], r["max_luss"], r["mean_score"],
                       r["worst_zone"], r["zones_ge2"], r["coverage"])
        for k, r in chosen.items()
    }


def _clip_scores(job_ids: Iterable[int], *, full: bool) -> dict[int, dict[str, Any]]:
    from scoring.models import ClipScore

    # Exam-level rows only need the score: skip decoding two JSON columns per zone.
    names = ("clip_id", "zone", "score", "probs", "findings", "aggregator") if full else ("clip_id", "score")
    return {r["clip_id"]: r for r in ClipScore.objects.filter(job_id__in=list(job_ids)).values(*names)}


def _overrides(exam_ids: Sequence[int]) -> dict[int, int]:
    """clip id -> latest override score."""
    latest: dict[int, int] = {}
    for clip_id, score in (ScoreOverride.objects.filter(clip__exam_id__in=exam_ids)
                           .order_by("clip_id", "-at", "-pk").values_list("clip_id", "score")):
        latest.setdefault(clip_id, score)
    return latest


def _severities(exam_ids: Sequence[int], chosen: Mapping[int, _ExamScores]) -> dict[int, dict[str, Any]]:
    """Per exam, the prediction of the chosen job, else the newest."""
    from scoring.models import SeverityPrediction

    out: dict[int, Any] = {}
    for r in (SeverityPrediction.objects.filter(exam_id__in=exam_ids).order_by("exam_id", "-created_at", "-pk")
              .values("exam_id", "job_id", "label", "probs", "severe_probability")):
        job = chosen.get(r["exam_id"])
        if r["exam_id"] not in out or (job is not None and r["job_id"] == job.job_id
                                       and out[r["exam_id"]]["job_id"] != job.job_id):
            out[r["exam_id"]] = r
    return out


_GAS_FIELDS = ("paco2_mmhg", "pao2_mmhg", "ph", "hco3", "lactate", "sao2", "fio2")


def _gases(exams: Sequence[Exam], window_hours: float) -> dict[int, tuple[dict[str, Any], float]]:
    """exam id -> (nearest blood gas of the patient within the window, hours from the exam)."""
    patient_ids = {e.patient_id for e in exams}
    gases = {g["pk"]: g for g in BloodGas.objects.filter(patient_id__in=patient_ids).values("pk", "patient_id",
                                                                                          "sampled_at", *_GAS_FIELDS)}
    pairs = pair_nearest(
        (ExamPoint(e.pk, e.patient_id, e.acquired_at, 0.0) for e in exams),
        (GasPoint(g["pk"], g["patient_id"], g["sampled_at"],
                  1.0 if any(g[f] is not None for f in _GAS_FIELDS) else None) for g in gases.values()),
        window_hours,
    )
    return {int(p.exam): (gases[int(p.gas)], p.hours_apart) for p in pairs}  # type: ignore[call-overload]


_CLINICAL_FIELDS = ("age", *ClinicalInfo.COMORBIDITIES, *ClinicalInfo.SYMPTOMS, "oxygen_support", "spo2",
                    "respiratory_rate")


class _ClinicalIndex:
    """The latest clinical record at or before a time, per patient."""

    def __init__(self, patient_ids: Iterable[int]) -> None:
        self.times: dict[int, list[dt.datetime]] = defaultdict(list)
        self.rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in (ClinicalInfo.objects.filter(patient_id__in=list(patient_ids)).order_by("patient_id", "recorded_at", "pk")
                  .values("patient_id", "recorded_at", *_CLINICAL_FIELDS)):
            self.times[r["patient_id"]].append(r["recorded_at"])
            self.rows[r["patient_id"]].append(r)

    def before(self, patient_id: int, at: dt.datetime) -> dict[str, Any] | None:
        i = bisect.bisect_right(self.times.get(patient_id, []), at)
        return self.rows[patient_id][i - 1] if i else None

    def latest(self, patient_id: int) -> dict[str, Any] | None:
        rows = self.rows.get(patient_id)
        return rows[-1] if rows else None


# --- values --------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> Any:
    if value is None:
        return None
    return round(float(value), digits)


def _days(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 86400.0, 3)


class _Days:
    """Day 0 per patient (:func:`patients.chrono.day_zero`, the pages' convention too), batched."""

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
        return _days(at - origin[0]), origin[1]


def _patient_values(study: Study, patient: Patient, params: ExportParams) -> list[Any]:
    values: list[Any] = [study.name, pseudonym(study.secret, patient.pk)]
    if params.identifying:
        values += [patient.code, patient.admission_date.isoformat() if patient.admission_date else None]
    return [*values, patient.sex]


def _severity_values(sev: Mapping[str, Any] | None) -> list[Any]:
    if sev is None:
        return [None] * (len(SEVERITY_LABELS) + 2)
    probs = list(sev["probs"] or []) + [None] * len(SEVERITY_LABELS)
    return [sev["label"], *[_num(p) for p in probs[: len(SEVERITY_LABELS)]], _num(sev["severe_probability"])]


def _gas_values(gas: tuple[dict[str, Any], float] | None) -> list[Any]:
    if gas is None:
        return [None] * (len(_GAS_FIELDS) + 2)
    row, hours = gas
    pf = row["pao2_mmhg"] / row["fio2"] if row["pao2_mmhg"] is not None and row["fio2"] else None
    return [_num(hours, 2), *[_num(row[f]) for f in _GAS_FIELDS], _num(pf, 1)]


def _clinical_values(record: Mapping[str, Any] | None, at: dt.datetime) -> list[Any]:
    if record is None:
        return [None] * (len(_CLINICAL_FIELDS) + 1)
    out: list[Any] = [_days(at - record["recorded_at"])]
    for name in _CLINICAL_FIELDS:
        value = record[name]
        out.append(int(value) if isinstance(value, bool) else (value if value != "" else None))
    return out


def _batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


# --- rows ---------------------------------------------------------------------------------------


def export_rows(study: Study, params: ExportParams, *, batch: int = 500) -> Iterator[list[Any]]:
    """The data rows (without the header), batch by batch."""
    if params.level == "patient":
        yield from _patient_rows(study, params, batch)
    else:
        yield from _exam_rows(study, params, batch)


def _exam_rows(study: Study, params: ExportParams, batch: int) -> Iterator[list[Any]]:
    exams = (Exam.objects.filter(patient__study=study).select_related("patient")
             .order_by("patient_id", "acquired_at", "pk").iterator(chunk_size=batch))
    zones = wide_zones(study) if params.wide else []
    number: tuple[int, int] = (0, 0)  # (patient id, exam count so far) carried across batches
    for chunk in _batched(exams, batch):
        ids = [e.pk for e in chunk]
        chosen = _chosen_scores(ids, params.model)
        scores = _clip_scores((s.job_id for s in chosen.values()), full=params.level == "zone" and not params.wide)
        overrides = _overrides(ids)
        severities = _severities(ids, chosen)
        gases = _gases(chunk, params.window_hours)
        clinical = _ClinicalIndex({e.patient_id for e in chunk})
        days = _Days({e.patient_id: e.patient for e in chunk})
        clips: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for clip_id, exam_id, zone in ZoneClip.objects.filter(exam_id__in=ids).values_list("pk", "exam_id", "zone"):
            clips[exam_id].append((clip_id, zone))
        for exam in chunk:
            number = (exam.patient_id, number[1] + 1 if number[0] == exam.patient_id else 1)
            day, origin = days.day(exam.patient_id, exam.acquired_at)
            head = _patient_values(study, exam.patient, params) + [exam.pk, number[1], day, origin]
            if params.identifying:
                head.append(timezone.localtime(exam.acquired_at).isoformat())
            summary = chosen.get(exam.pk)
            order = {c: i for i, c in enumerate(get_protocol(exam.protocol).codes)} if exam.protocol in PROTOCOLS else {}
            exam_clips = sorted(clips.get(exam.pk, []), key=lambda c: (order.get(c[1], 99), c[1]))
            tail = (_severity_values(severities.get(exam.pk)) + _gas_values(gases.get(exam.pk))
                    + _clinical_values(clinical.before(exam.patient_id, exam.acquired_at), exam.acquired_at))
            if params.level == "zone" and not params.wide:
                for clip_id, zone in exam_clips:
                    s = scores.get(clip_id)
                    probs = (list(s["probs"] or []) + [None] * 4)[:4] if s else [None] * 4
                    ai = s["score"] if s else None
                    over = overrides.get(clip_id)
                    yield head + [
                        zone, clip_id, ai, *[_num(p) for p in probs],
                        json.dumps(s["findings"], sort_keys=True, separators=(",", ":")) if s else None,
                        s["aggregator"] if s else None, over, over if over is not None else ai,
                        summary.version if summary else None, summary.luss if summary else None,
                    ] + tail
                continue
            final = [overrides.get(cid, scores[cid]["score"] if cid in scores else None) for cid, _ in exam_clips]
            known = [v for v in final if v is not None]
            exam_values = [
                summary.version if summary else None, exam.protocol, len(exam_clips),
                summary.luss if summary else None, summary.max_luss if summary else None,
                _num(summary.mean_score) if summary else None, (summary.worst_zone or None) if summary else None,
                summary.zones_ge2 if summary else None, _num(summary.coverage) if summary else None,
                sum(1 for cid, _ in exam_clips if cid in overrides), sum(known) if known else None,
            ]
            if params.wide:
                by_zone = {zone: cid for cid, zone in exam_clips}
                for code in zones:
                    cid = by_zone.get(code)
                    s = scores.get(cid) if cid is not None else None
                    exam_values += [s["score"] if s else None, overrides.get(cid) if cid is not None else None]
            yield head + exam_values + tail


def _patient_rows(study: Study, params: ExportParams, batch: int) -> Iterator[list[Any]]:
    patients = Patient.objects.filter(study=study).order_by("pk").iterator(chunk_size=batch)
    for chunk in _batched(patients, batch):
        by_id = {p.pk: p for p in chunk}
        exams = list(Exam.objects.filter(patient_id__in=by_id).order_by("patient_id", "acquired_at", "pk")
                     .values("pk", "patient_id", "acquired_at"))
        clip_counts = dict(ZoneClip.objects.filter(exam__patient_id__in=by_id).values("exam__patient_id")
                           .annotate(n=Count("pk")).values_list("exam__patient_id", "n"))
        ids = [e["pk"] for e in exams]
        chosen = _chosen_scores(ids, params.model)
        severities = _severities(ids, chosen)
        clinical = _ClinicalIndex(by_id)
        days = _Days(by_id)
        per_patient: dict[int, list[Any]] = defaultdict(list)
        for e in exams:
            per_patient[e["patient_id"]].append(e)
        for patient in chunk:
            mine = per_patient.get(patient.pk, [])
            day_of = [days.day(patient.pk, e["acquired_at"])[0] for e in mine]
            scored = [(e, d) for e, d in zip(mine, day_of, strict=True) if e["pk"] in chosen]
            top = max(scored, key=lambda ed: chosen[ed[0]["pk"]].luss, default=None)
            last_sev = next((severities[e["pk"]]["label"] for e in reversed(mine) if e["pk"] in severities), None)
            latest = clinical.latest(patient.pk)
            yield _patient_values(study, patient, params) + [
                len(mine), clip_counts.get(patient.pk, 0), day_of[0] if day_of else None,
                day_of[-1] if day_of else None,
                chosen[scored[0][0]["pk"]].luss if scored else None, chosen[scored[-1][0]["pk"]].luss if scored else None,
                chosen[top[0]["pk"]].luss if top else None, top[1] if top else None, last_sev,
                latest["age"] if latest else None,
            ]


# --- CSV ----------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return value


def stream_csv(study: Study, params: ExportParams, *, on_finish: Callable[[int, bool], None] | None = None,
               batch: int = 500) -> Iterator[str]:
    """Header line, then the rows as CSV text in chunks of ``batch`` rows.

    ``on_finish(row_count, complete)`` runs once the stream ends or is closed early (a client
    that disconnects), so the audit trail records how many rows actually left.
    """
    writer = csv.writer(_Echo())
    count = 0
    complete = False
    try:
        yield writer.writerow([c.name for c in columns(study, params)])
        for chunk in _batched(export_rows(study, params, batch=batch), batch):
            count += len(chunk)
            yield "".join(writer.writerow([_cell(v) for v in row]) for row in chunk)
        complete = True
    finally:
        if on_finish is not None:
            on_finish(count, complete)


def dictionary_csv(study: Study, params: ExportParams) -> str:
    """The data dictionary of an export: column, type, unit, meaning."""
    lines: list[str] = []
    writer = csv.writer(_Echo())
    lines.append(writer.writerow(["column", "type", "unit", "meaning"]))
    for c in columns(study, params):
        lines.append(writer.writerow([c.name, c.type, c.unit, c.meaning]))
    return "".join(lines)


# --- HTTP ---------------------------------------------------------------------------------------


def _filename(study: Study, params: ExportParams, suffix: str = "") -> str:
    from django.utils.text import slugify

    return f"{slugify(study.name) or 'study'}-{params.level}-{params.format}{suffix}.csv"


async def _async_chunks(chunks: Iterator[str]) -> Any:
    """Feed a synchronous generator to an ASGI server one chunk at a time (Django would otherwise
    consume a sync iterator whole before sending it); every step runs in the same sync thread, so
    the database cursor and transaction state stay on one connection."""
    from asgiref.sync import sync_to_async

    done = ""  # stream_csv never yields an empty chunk

    def step() -> str:
        return next(chunks, done)

    def close() -> None:
        getattr(chunks, "close", lambda: None)()

    try:
        while chunk := await sync_to_async(step, thread_sensitive=True)():
            yield chunk
    finally:
        await sync_to_async(close, thread_sensitive=True)()


def export_http_response(*, user: Any, study: Study, params: ExportParams, asgi: bool = False) -> Any:
    """The streamed CSV of an export; the export is audited with the rows actually sent."""
    from django.http import StreamingHttpResponse

    from patients.audit import audit_finish_export, audit_record
    from patients.models import AuditAction

    event = audit_record(actor=user, action=AuditAction.EXPORT, study=study, object_type="export",
                         object_id=f"{params.level}/{params.format}", changes={
                             "level": params.level, "format": params.format, "model": params.model,
                             "window_hours": params.window_hours, "identifying": params.identifying,
                             "complete": False})

    def finish(rows: int, complete: bool) -> None:
        audit_finish_export(event=event, row_count=rows, complete=complete)

    chunks = stream_csv(study, params, on_finish=finish)
    response = StreamingHttpResponse(_async_chunks(chunks) if asgi else chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(study, params)}"'
    response["Cache-Control"] = "no-store"
    return response


def dictionary_http_response(*, study: Study, params: ExportParams) -> Any:
    from django.http import HttpResponse

    response = HttpResponse(dictionary_csv(study, params), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(study, params, "-dictionary")}"'
    return response


def parse_flag(query: Mapping[str, Any], name: str) -> bool:
    """A 0/1 style query flag; anything else is an :class:`ExportParamError`."""
    raw = str(query.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ExportParamError(f"{name}={raw!r}: expected 1 or 0")
