"""Score vs blood gas over a study's (or one patient's) exams."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from patients.dashboards import stats
from patients.dashboards.selectors import load_exams
from patients.records import chrono, pairing
from patients.records.models import BloodGas, Exam, Patient
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import get_protocol
from scoring.core.inference.six_class import SIX_CLASS_SCALE
from scoring.core.stats import correlate, repeated_measures_correlation
from scoring.selectors import six_class_of_jobs

#: Review states of an exam a clinician signed off (amended: a reading changed since).
SIGNED = ("reviewed", "amended")


#: The axis of the global score when exams of different protocols are pooled.
NORMALISED_LABEL = "Global LUS score of record, % of the protocol's maximum"
#: Where each score comes from (the six-class severity names its model versions, see ``_six_class``).
SCORE_SOURCES = {"luss": "score of record", "mean": "score of record",
                 "severity": "risk model (course of the stay), from the scores of record",
                 "severe_prob": "risk model (course of the stay), from the scores of record"}


def _score_value(exam: dict[str, Any], score: str, normalise: bool = False) -> float | None:
    s, sev = exam["score"], exam["severity"]
    if score == "luss" and normalise:
        norm = stats.normalised(s["luss"], get_protocol(exam["protocol"]).max_score) if s else None
        return None if norm is None else 100.0 * norm
    if score == "luss":
        return float(s["luss"]) if s else None
    if score == "mean":
        return s["mean_score"] if s else None
    if score == "severity":
        o = stats.severity_ordinal(sev["label"]) if sev else None
        return None if o is None else float(o)
    if score == "severe_prob":
        return sev["severe_probability"] if sev else None
    if score == "six_class":
        return exam["six_class"]
    raise ValueError(f"unknown score {score!r}")


def _gas_value(row: Mapping[str, Any], gas: str, unit: str) -> float | None:
    if gas == "paco2":
        return stats.convert_pressure(row["paco2_mmhg"], unit)
    if gas == "pao2":
        return stats.convert_pressure(row["pao2_mmhg"], unit)
    if gas == "pf":
        return stats.pf_ratio(row["pao2_mmhg"], row["fio2"])
    raise ValueError(f"unknown gas {gas!r}")


def correlation(*, params: stats.CorrelationParams, user: Any, study: Study | None = None,
                patient: Patient | None = None) -> dict[str, Any]:
    """Score vs blood gas over a study's (or one patient's) exams; see ``pairing.pair_nearest``.

    Scores are the score of record or the severity model's on it, except ``six_class``: the AI's
    six-class severity, from the model each exam page shows (``model_versions``); ``score_source``
    says which, ``score_label`` names the score and its source. ``normalised``: the exams mix
    protocols (0-18 and 0-36), so the global score is the % of each exam's protocol maximum, never
    points pooled on one axis.
    ``params.reviewed``: only the exams a clinician signed off;
    ``n_by_choice`` gives the number of pairs of both choices (all exams, reviewed only).

    Each exam is paired with the nearest gas of the same patient within +-window hours (ties:
    the earlier gas). Figures are null with a ``message`` when fewer than 3 pairs exist. For a
    study, ``repeated`` is the repeated-measures (within-patient) correlation. Every pair has
    ``exam_label`` / ``exam_day`` and ``gas_label`` / ``gas_day`` (days since the patient's day 0);
    the calendar fields (``exam_acquired_at``, ``exam_time``, ``gas_sampled_at``) are null for
    researchers.
    """
    if (study is None) == (patient is None):
        raise ValueError("give a study or a patient")
    scope = _scope(study=study, patient=patient)
    every = load_exams(scope.exams, zone_details=False, user=user)
    first: dict[int, dt.datetime] = {}
    for e in every:  # ordered by patient, then time
        first.setdefault(e["patient_id"], e["acquired_at"])
    signed = [e for e in every if e["review_status"] in SIGNED]
    exams = signed if params.reviewed else every
    dates = permissions.can_see_identifying(user, scope.study)
    # Keyed by the pairs' group (the patient id).
    clocks: dict[Any, chrono.PatientClock] = chrono.clocks_for(patients=scope.admissions, first_exam_at=first,
                                                                shows_dates=dates)
    normalise = params.score == "luss" and len({get_protocol(e["protocol"]).max_score for e in every}) > 1
    versions = _six_class(every, exams) if params.score == "six_class" else []
    points = _points(exams, params.score, normalise)
    gases = [pairing.GasPoint(g["id"], g["patient_id"], g["sampled_at"], _gas_value(g, params.gas, params.unit))
             for g in scope.gases.values("id", "patient_id", "sampled_at", "paco2_mmhg", "pao2_mmhg", "fio2")]
    pairs = pairing.pair_nearest(points, gases, params.window_hours)
    # n of both choices of the "reviewed exams only" switch, whichever is shown.
    signed_ids = {e["id"] for e in signed}
    n_reviewed = sum(1 for p in pairs if p.exam in signed_ids) if not params.reviewed else len(pairs)
    n_all = len(pairs) if not params.reviewed else len(pairing.pair_nearest(
        _points(every, params.score, normalise), gases, params.window_hours))
    result = correlate([p.score for p in pairs], [p.value for p in pairs])
    # Across patients the pooled r mixes patients with each other; the within-patient figure is
    # what a longitudinal question needs (one patient's page has only the pooled one, which is it).
    repeated = (repeated_measures_correlation([p.score for p in pairs], [p.value for p in pairs],
                                                    [p.group for p in pairs]).as_dict()
                if patient is None else None)
    return {
        **result.as_dict(),
        "score": params.score, "gas": params.gas, "unit": params.unit, "window_hours": params.window_hours,
        **_score_labels(params, normalise, versions), "gas_label": params.gas_label, "normalised": normalise,
        "reviewed": params.reviewed, "n_by_choice": {"all": n_all, "reviewed": n_reviewed},
        "exams": len(exams), "exams_with_score": sum(1 for p in points if p.score is not None),
        "repeated": repeated,
        "pairs": [_pair(p, scope.codes, clocks[p.group], dates) for p in pairs],
    }


def _score_labels(params: stats.CorrelationParams, normalise: bool, versions: list[str]) -> dict[str, Any]:
    """``score_label`` (the axis and caption: the score and its source), ``score_source`` and
    ``model_versions`` (the six-class severity's models; empty for the other scores)."""
    if params.score == "six_class":
        source = f"AI, {SIX_CLASS_SCALE}, model {', '.join(versions) or 'none yet'}"
        return {"score_label": f"Six-class severity, 0-4 ({source})", "score_source": source,
                "model_versions": versions}
    return {"score_label": NORMALISED_LABEL if normalise else params.score_label,
            "score_source": SCORE_SOURCES[params.score], "model_versions": []}


def _six_class(every: list[dict[str, Any]], shown: list[dict[str, Any]]) -> list[str]:
    """Set each exam's ``six_class``: the AI's six-class severity (0-4, ``scoring.selectors.six_class_of_jobs``)
    of the AI result its pages show (``score_ai``; None without one, or during the user's blind
    read). Returns the model versions behind the values of the ``shown`` exams."""
    jobs = {e["id"]: e["score_ai"]["job_id"] for e in every if e["score_ai"]}
    six = six_class_of_jobs(jobs.values())
    versions: dict[int, str] = {}
    for e in every:
        found = six.get(jobs[e["id"]]) if e["id"] in jobs else None
        e["six_class"] = found.mean if found else None
        if found:
            versions[e["id"]] = found.model_version
    return sorted({versions[e["id"]] for e in shown if e["id"] in versions})


def _points(exams: list[dict[str, Any]], score: str, normalise: bool) -> list[pairing.ExamPoint]:
    return [pairing.ExamPoint(e["id"], e["patient_id"], e["acquired_at"], _score_value(e, score, normalise))
            for e in exams]


@dataclass
class _Scope:
    """The exams and blood gases of a study or of one patient, with the patients' codes and
    admission dates."""

    study: Study
    exams: QuerySet[Exam]
    gases: QuerySet[BloodGas]
    codes: dict[Any, str]
    admissions: dict[int, dt.date | None]


def _scope(*, study: Study | None, patient: Patient | None) -> _Scope:
    if patient is not None:
        return _Scope(patient.study, Exam.objects.filter(patient=patient), BloodGas.objects.filter(patient=patient),
                      {patient.pk: patient.code}, {patient.pk: patient.admission_date})
    assert study is not None
    return _Scope(study, Exam.objects.filter(patient__study=study), BloodGas.objects.filter(patient__study=study),
                  dict(Patient.objects.filter(study=study).values_list("id", "code")),
                  dict(Patient.objects.filter(study=study).values_list("id", "admission_date")))


def _pair(p: pairing.Pair, codes: dict[Any, str], clock: chrono.PatientClock, dates: bool) -> dict[str, Any]:
    """One exam-gas pair, its times as the viewer may see them."""
    return {"exam": p.exam, "patient": p.group, "patient_code": codes.get(p.group, ""), "score": p.score,
            "gas": p.value, "gas_sampled_at": chrono.local(p.gas_at).isoformat() if dates else None,
            "exam_acquired_at": chrono.local(p.exam_at).isoformat() if dates else None,
            "exam_time": chrono.plot_time(p.exam_at) if dates else None,
            "exam_label": clock.label(p.exam_at), "exam_day": clock.day(p.exam_at),
            "gas_label": clock.label(p.gas_at), "gas_day": clock.day(p.gas_at),
            "hours_apart": round(p.hours_apart, 3), "exam_url": reverse("exam-detail", args=[p.exam])}
