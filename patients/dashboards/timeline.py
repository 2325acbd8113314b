"""A patient's timeline: exams (global and zone scores, severity) and blood gases over time."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.urls import reverse

from patients.dashboards import stats
from patients.dashboards.selectors import clip_url, load_exams, zone_label, zone_order
from patients.records import chrono
from patients.records.models import BloodGas, Exam, Patient
from patients.studies.protocols import get_protocol


def _day(clock: chrono.PatientClock, local: dt.datetime, admission: dt.date | None) -> int | None:
    """Whole days since admission (the admission day is day 0) for those who see dates; for
    researchers whole days since their day 0 (admission, else the first exam)."""
    if clock.shows_dates:
        return stats.day_since(local.date(), admission)
    d = clock.day(local)
    return None if d is None else math.floor(d)


def patient_timeline(*, patient: Patient, user: Any) -> dict[str, Any]:
    """``GET /api/v1/patients/<id>/timeline/`` and the timeline page's data.

    Scores are the score of record: ``exams[*].luss`` sums the record scores (a clinician's reading
    of a zone, else the AI's), ``luss_ai`` the AI's; ``review_status`` is draft, reviewed or amended
    (``signed_by``, ``signed_at`` - ``signed_day`` for researchers). ``exams[*].zones`` has every
    zone of the protocol: its record score, or null when the zone is missing or not read;
    ``zone_details`` adds its ``source`` (clinician | ai), ``ai_score`` and ``reader``. ``day``
    counts days since admission (0 = admission day; null when the admission date is unknown).
    Blood gases are in mmHg; ``pf_ratio`` is PaO2/FiO2.

    Time as the user may see it (:mod:`patients.records.chrono`): every exam and gas has ``x`` (the
    plot coordinate) and ``label``; ``time_axis`` says whether ``x`` is a local date-time
    (clinicians, study admins) or days since day 0 (researchers, who get no calendar date:
    ``acquired_at``, ``sampled_at``, ``time`` and ``admission_date`` are null for them, and
    ``day`` counts from day 0 - admission, or the first exam when the admission date is unknown).
    """
    protocol = get_protocol(patient.study.protocol)
    exams = load_exams(Exam.objects.filter(patient=patient), user=user)
    codes = zone_order(protocol, exams)
    protocols = [protocol] + [get_protocol(p) for p in {e["protocol"] for e in exams} - {protocol.key}]
    admission = patient.admission_date
    clock = chrono.clock_for(user=user, patient=patient,
                             first_exam_at=exams[0]["acquired_at"] if exams else None)
    return {
        "patient": patient.pk,
        "code": patient.code,
        "admission_date": clock.date(admission),
        "time_axis": clock.axis, "time_axis_title": clock.axis_title, "day_zero": clock.origin_kind or None,
        "protocol": protocol.key,
        "zones": [{"code": z, "label": zone_label(z, protocols)} for z in codes],
        "threshold": stats.default_threshold(len(protocol.codes)),
        "exams": [_exam_row(e, codes, clock, admission) for e in exams],
        "blood_gases": _gas_rows(patient, clock, admission),
    }


def _when(clock: chrono.PatientClock, at: dt.datetime, admission: dt.date | None, name: str) -> dict[str, Any]:
    """A moment as the viewer may see it: ``name`` (local ISO time) and ``time`` (null for
    researchers), the plot coordinate ``x``, its ``label`` and ``day``."""
    local = chrono.local(at)
    dates = clock.shows_dates
    return {name: local.isoformat() if dates else None, "time": chrono.plot_time(at) if dates else None,
            "x": clock.x(at), "label": clock.label(at), "day": _day(clock, local, admission)}


def _exam_row(e: dict[str, Any], codes: list[str], clock: chrono.PatientClock,
              admission: dt.date | None) -> dict[str, Any]:
    score, sev, ai = e["score"], e["severity"], e["score_ai"]
    exam_protocol = get_protocol(e["protocol"])
    zones = e["zones"]
    return {
        "id": e["id"], **_when(clock, e["acquired_at"], admission, "acquired_at"),
        "luss": score["luss"] if score else None,
        "luss_ai": score["luss_ai"] if score else None,
        "max_luss": score["max_luss"] if score else 3 * len(exam_protocol.codes),
        "mean_score": score["mean_score"] if score else None,
        "reviewed_zones": score["reviewed_zones"] if score else 0,
        "review_status": e["review_status"], "signed_by": e["signed_by"],
        "signed_at": chrono.local(e["signed_at"]).isoformat() if e["signed_at"] and clock.shows_dates else None,
        "signed_day": clock.day(e["signed_at"]) if e["signed_at"] and not clock.shows_dates else None,
        "blind": e["blind"],
        "model_version": ai["model_version__version"] if ai else None,
        "severity": sev["label"] if sev else None,
        "severity_probs": sev["probs"] if sev else None,
        "severe_probability": sev["severe_probability"] if sev else None,
        "zones": {z: (zones[z]["score"] if z in zones else None) for z in codes},
        "missing_zones": [z for z in exam_protocol.codes if z not in e["clips"]],
        "zone_details": {z: _zone_detail(zones.get(z), e["clips"].get(z)) for z in codes},
        "page_url": reverse("exam-detail", args=[e["id"]]),
    }


def _zone_detail(zone: dict[str, Any] | None, clip: int | None) -> dict[str, Any]:
    """A zone of the timeline: the record's source, reader and findings beside the AI's score,
    probabilities and finding probabilities (``findings``)."""
    return {
        "score": zone["score"] if zone else None, "source": zone["source"] if zone else None,
        "ai_score": zone["ai_score"] if zone else None, "reader": zone["reader"] if zone else None,
        "record_findings": zone["record_findings"] if zone else None,
        "probs": zone["probs"] if zone else None, "findings": zone["findings"] if zone else None,
        "clip": clip, "clip_url": clip_url(clip),
    }


def _gas_rows(patient: Patient, clock: chrono.PatientClock, admission: dt.date | None) -> list[dict[str, Any]]:
    return [
        {"id": g["id"], **_when(clock, g["sampled_at"], admission, "sampled_at"),
         "paco2_mmhg": g["paco2_mmhg"], "pao2_mmhg": g["pao2_mmhg"], "fio2": g["fio2"],
         "pf_ratio": stats.pf_ratio(g["pao2_mmhg"], g["fio2"]), "ph": g["ph"]}
        for g in BloodGas.objects.filter(patient=patient).order_by("sampled_at", "pk").values(
            "id", "sampled_at", "paco2_mmhg", "pao2_mmhg", "fio2", "ph")
    ]
