"""A study's overview: one row per patient with the latest score, trend, flags and data gaps."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from patients.dashboards import stats
from patients.dashboards.selectors import load_exams
from patients.records import chrono, pairing
from patients.records.models import Exam, Patient
from patients.records.selectors import ExamState, clinical_and_gases, severity_now_for
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import Protocol, get_protocol
from scoring.severity import risk_block, severity_model_card


def study_overview(*, study: Study, user: Any, threshold: float | None = None,
                   window_hours: float = stats.DEFAULT_WINDOW_HOURS) -> dict[str, Any]:
    """One row per patient: latest global score and trend, severity now and risk of a severe course,
    last exam, flags, data gaps.

    Scores are the score of record (a clinician's reading of a zone, else the AI's): ``luss`` of
    the latest exam with one, ``luss_ai`` the AI's sum beside it, ``review_status`` of that exam,
    ``to_review`` the patient's exams with clips not signed off (draft or amended).

    The trend compares the latest *scored* exam with the previous scored one. Flags: a zone up
    by >= 2 between consecutive scored exams, or the global score crossing ``threshold``
    (default: half the maximum, 18 for 12 zones), given in points of the study's protocol and applied
    to every exam as the same fraction of its own protocol's maximum (9 for a BLUE-6 exam). Trends
    and flags compare like with like (:func:`stats.like_trend`, :func:`stats.exam_flags`): zones
    missing from either exam never move them. ``luss_pct`` (the global score over its maximum, in
    %) puts every protocol on the chart's one axis; ``coverage`` reads ``8/12 zones``. Gaps: zones without a clip at the last exam,
    exams with no blood gas within +-``window_hours``, exams not scored yet, no clinical record,
    zones of the latest scored exam unlike the model's training clips (``unvalidated_zones``).
    Identifying fields are only included for roles that may see them.

    At the latest scored exam: ``severity_now`` (the exam day's guideline class and WHO level from
    the clinical record and blood gas) and ``risk`` (the model's risk of a severe course,
    ``scoring.severity.risk_block``); ``severity`` and ``severe_probability`` are that model's course
    class and clipped risk, kept for older readers. The chart colours each bar by severity now.
    """
    protocol = get_protocol(study.protocol)
    max_luss = 3 * len(protocol.codes)
    if threshold is None:
        threshold = stats.default_threshold(len(protocol.codes))
    identifying = permissions.can_see_identifying(user, study)
    fields = ["id", "code", "admission_date"] + (["name", "hospital_number"] if identifying else [])
    patients = list(Patient.objects.filter(study=study).order_by("code").values(*fields))
    cohort = _cohort(study, patients, identifying=identifying, protocol=protocol, threshold=threshold,
                     window_hours=window_hours, user=user)
    rows = [_patient_row(p, cohort) for p in patients]
    return {
        "study": study.pk, "threshold": threshold, "max_luss": max_luss, "window_hours": window_hours,
        "threshold_pct": round(100.0 * threshold / max_luss, 2), "protocol": protocol.key,
        "identifying": identifying, "patients": rows,
        "chart": {
            "codes": [r["code"] for r in rows if r["luss"] is not None],
            "luss": [r["luss"] for r in rows if r["luss"] is not None],
            "luss_pct": [r["luss_pct"] for r in rows if r["luss"] is not None],
            "max_luss": [r["max_luss"] for r in rows if r["luss"] is not None],
            "coverage": [r["coverage"] for r in rows if r["luss"] is not None],
            "protocol": [r["protocol"] for r in rows if r["luss"] is not None],
            "severity": [r["severity"] for r in rows if r["luss"] is not None],
            "severity_now": [r["severity_now"]["guideline_class"] for r in rows if r["luss"] is not None],
            "severity_now_text": [f"{r['severity_now']['guideline_text']}, WHO {r['severity_now']['who_scale']}"
                                  for r in rows if r["luss"] is not None],
            "risk": [r["risk"]["probability"] if r["risk"] else None for r in rows if r["luss"] is not None],
            "urls": [r["timeline_url"] for r in rows if r["luss"] is not None],
            "review_status": [r["review_status"] for r in rows if r["luss"] is not None],
        },
    }


@dataclass
class _Cohort:
    """A study's exams (with results), blood-gas times, clinical record counts and clocks, by patient."""

    protocol: Protocol
    threshold: float
    window_hours: float
    exams: dict[int, list[dict[str, Any]]]
    gas_times: dict[int, list[dt.datetime]]
    clinical: dict[int, int]
    clocks: dict[int, chrono.PatientClock]
    card: dict[str, Any] | None  # the installed risk model's figures (scoring.severity.severity_model_card)
    now: dict[int, ExamState]  # exam id -> severity now


def _cohort(study: Study, patients: list[dict[str, Any]], *, identifying: bool, protocol: Protocol,
            threshold: float, window_hours: float, user: Any) -> _Cohort:
    by_patient: dict[int, list[dict[str, Any]]] = {}
    for e in load_exams(Exam.objects.filter(patient__study=study), user=user):
        by_patient.setdefault(e["patient_id"], []).append(e)
    loaded = clinical_and_gases(patient_ids=[p["id"] for p in patients])
    gas_times: dict[int, list[dt.datetime]] = {}
    for g in loaded[1]:  # in time order
        gas_times.setdefault(g["patient_id"], []).append(g["sampled_at"])
    clinical = dict(Counter(r["patient_id"] for r in loaded[0]))
    now = severity_now_for(exams=[(e["id"], e["patient_id"], e["acquired_at"]) for ex in by_patient.values() for e in ex],
                           loaded=loaded)
    clocks = chrono.clocks_for(patients={p["id"]: p["admission_date"] for p in patients},
                               first_exam_at={pid: ex[0]["acquired_at"] for pid, ex in by_patient.items()},
                               shows_dates=identifying)
    card = severity_model_card() if any(e["severity"] for ex in by_patient.values() for e in ex) else None
    return _Cohort(protocol, threshold, window_hours, by_patient, gas_times, clinical, clocks, card, now)


def _patient_row(p: dict[str, Any], cohort: _Cohort) -> dict[str, Any]:
    pex = cohort.exams.get(p["id"], [])
    clock = cohort.clocks[p["id"]]
    scored = [e for e in pex if e["score"] is not None]
    last_exam = pex[-1] if pex else None
    return {
        "id": p["id"], "code": p["code"], "name": p.get("name"), "hospital_number": p.get("hospital_number"),
        "page_url": reverse("patient-detail", args=[p["id"]]),
        "timeline_url": reverse("dashboard-patient-timeline", args=[p["id"]]),
        "exam_count": len(pex),
        "to_review": sum(1 for e in pex if e["clips"] and e["review_status"] != "reviewed"),
        "last_exam": {"id": last_exam["id"], "label": clock.label(last_exam["acquired_at"]),
                      "url": reverse("exam-detail", args=[last_exam["id"]])} if last_exam else None,
        **_latest_scores(scored, clock, cohort),
        **_gaps(p["id"], pex, scored, cohort),
    }


def _summary(e: dict[str, Any]) -> stats.ExamSummary:
    """An exam for the trend and flags: zone scores keyed by anatomical site (exams of other
    protocols compare where they share a site), named by the exam's own codes."""
    protocol = get_protocol(e["protocol"])
    zones = {z.site: e["zones"][z.code]["score"] for z in protocol.zones if z.code in e["zones"]}
    return stats.ExamSummary(e["id"], e["acquired_at"], e["score"]["luss"], zones, max_luss=protocol.max_score,
                             expected=len(protocol.zones), names={z.site: z.code for z in protocol.zones})


def _latest_scores(scored: list[dict[str, Any]], clock: chrono.PatientClock, cohort: _Cohort) -> dict[str, Any]:
    """The latest scored exam's score, its trend from the previous one, severity and flags."""
    summaries = [_summary(e) for e in scored]
    latest, previous = (scored[-1] if scored else None), (scored[-2] if len(scored) > 1 else None)
    luss = latest["score"]["luss"] if latest else None
    tr, change = stats.like_trend(summaries[-2] if previous else None, summaries[-1] if latest else None)
    protocol = get_protocol(latest["protocol"]) if latest else cohort.protocol
    fraction = cohort.threshold / cohort.protocol.max_score
    sev = latest["severity"] if latest else None
    risk = risk_block(sev, cohort.card)
    norm = stats.normalised(luss, protocol.max_score)
    return {
        "luss": luss, "luss_ai": latest["score"]["luss_ai"] if latest else None,
        "review_status": latest["review_status"] if latest else None,
        "max_luss": protocol.max_score, "protocol": protocol.key,
        "other_protocol": protocol.key != cohort.protocol.key,
        "luss_pct": None if norm is None else round(100.0 * norm, 1),
        "threshold_points": round(fraction * protocol.max_score, 2),
        "coverage": stats.coverage_text(len(latest["zones"]), len(protocol.zones)) if latest else None,
        "scored_at": clock.label(latest["acquired_at"], with_time=False) if latest else None,
        "delta": tr.delta, "arrow": tr.arrow, "direction": tr.direction,
        # Set when the trend is over the zones scored at both exams rather than the global scores.
        "compared_zones": change.zones if change else None,
        "severity_now": cohort.now[latest["id"]].as_dict() if latest else None,
        "risk": risk,
        "severity": sev["label"] if sev else None,
        "severe_probability": risk["probability"] if risk else None,
        "above_threshold": norm is not None and norm >= fraction,
        "flags": [{"kind": f.kind, "text": f.text, "label": clock.label(f.at, with_time=False),
                   "latest": bool(latest and f.exam == latest["id"])}
                  for f in stats.exam_flags(summaries, cohort.threshold, scale=cohort.protocol.max_score)],
    }


def _gaps(patient_id: int, pex: list[dict[str, Any]], scored: list[dict[str, Any]],
          cohort: _Cohort) -> dict[str, Any]:
    """What is missing: zones at the last exam, scores, blood gases near exams, clinical records."""
    last_exam = pex[-1] if pex else None
    last_protocol = get_protocol(last_exam["protocol"]) if last_exam else cohort.protocol
    latest = scored[-1] if scored else None
    no_gas = [e for e in pex if not pairing.has_gas_within(e["acquired_at"], cohort.gas_times.get(patient_id, []),
                                                         cohort.window_hours)]
    return {
        "missing_zones": [z for z in last_protocol.codes if z not in last_exam["clips"]] if last_exam else [],
        "unscored_exams": len(pex) - len(scored),
        # Zones of the latest scored exam whose clips are unlike the model's training clips.
        "unvalidated_zones": sorted(z for z, r in latest["zones"].items() if r.get("in_domain") is False)
        if latest else [],
        "exams_without_gas": len(no_gas),
        "no_clinical": not cohort.clinical.get(patient_id),
    }
