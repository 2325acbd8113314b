"""A patient's timeline: exams (global and zone scores, severity) and blood gases over time."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.urls import reverse

from patients.dashboards import stats
from patients.dashboards.pagecache import located_patient, page_cached
from patients.dashboards.selectors import clip_url, load_exams, zone_label
from patients.records import chrono
from patients.records.models import Exam, Patient
from patients.records.selectors import ExamState, clinical_and_gases, severity_now_for
from patients.studies.protocols import Protocol, get_protocol
from scoring.severity import risk_block, severity_model_card

#: The reference line: this share of the maximum global score.
REFERENCE_FRACTION = 0.5


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

    ``severity_now``: the exam day's state (``patients.records.severity_now``); ``risk_severe_course``:
    the calibrated risk of a severe stay (``scoring.severity.risk_block``; ``severity*`` kept as before).

    Protocols: the heatmap rows (``zones``: ``key``, ``code``, ``label``, ``protocol``, ``tick``)
    are the zones of the protocols the exams use, labelled by their own protocol (a BLUE-6 R3 is
    the PLAPS point). When the exams mix protocols the rows are keyed ``<protocol>:<code>``
    (``blue-6:R3``), each exam filling its own protocol's rows, and the score axis is the global
    score over its maximum (``scale`` percent: ``y`` in %, ``threshold`` 50); with one protocol
    ``scale`` is points, ``y`` the global score and ``threshold`` half that protocol's maximum.
    Every exam has ``coverage`` (``8/12 zones``) and ``change``: the like-with-like change from
    the previous scored exam (``delta`` over the ``zones`` scored at both, None for the first).

    Time as the user may see it (:mod:`patients.records.chrono`): every exam and gas has ``x`` (the
    plot coordinate) and ``label``; ``time_axis`` says whether ``x`` is a local date-time
    (clinicians, study admins) or days since day 0 (researchers, who get no calendar date:
    ``acquired_at``, ``sampled_at``, ``time`` and ``admission_date`` are null for them, and
    ``day`` counts from day 0 - admission, or the first exam when the admission date is unknown).
    """
    study_protocol = get_protocol(patient.study.protocol)
    exams = load_exams(Exam.objects.filter(patient=patient), user=user)
    card = severity_model_card() if any(e["severity"] for e in exams) else None
    loaded = clinical_and_gases(patient_ids=[patient.pk])
    now = severity_now_for(exams=[(e["id"], patient.pk, e["acquired_at"]) for e in exams], loaded=loaded)
    protocols = _protocols(study_protocol, exams)
    mixed = len(protocols) > 1
    rows = _zone_rows(protocols, exams, mixed)
    admission = patient.admission_date
    clock = chrono.clock_for(user=user, patient=patient,
                             first_exam_at=exams[0]["acquired_at"] if exams else None)
    top = 100.0 if mixed else float(protocols[0].max_score)
    threshold = REFERENCE_FRACTION * top
    out_exams = [_exam_row(e, rows, clock, admission, mixed, card, now[e["id"]]) for e in exams]
    _add_changes(out_exams, exams)
    return {
        "patient": patient.pk,
        "code": patient.code,
        "admission_date": clock.date(admission),
        "time_axis": clock.axis, "time_axis_title": clock.axis_title, "day_zero": clock.origin_kind or None,
        "protocol": study_protocol.key, "protocols": [p.key for p in protocols],
        "scale": "percent" if mixed else "points", "y_max": top,
        "y_title": ("Global score, % of each exam's maximum" if mixed
                    else f"Global LUS score of record (0–{protocols[0].max_score:g})"),
        "zones": rows,
        "threshold": threshold,
        "threshold_text": (f"half the maximum score ({threshold:g} % of each exam's maximum)" if mixed
                           else f"half the maximum score ({threshold:g} of {top:g}, {protocols[0].key})"),
        "exams": out_exams,
        "blood_gases": _gas_rows(loaded[1], clock, admission),
    }


def timeline_cached(*, user: Any, pk: int) -> dict[str, Any]:
    """The access check of patient ``pk`` (404 for outsiders) and its :func:`patient_timeline`,
    from :mod:`patients.dashboards.pagecache` while none of the patient's rows changed (do not
    mutate it)."""
    _, timeline = page_cached(kind="timeline", part=pk, user=user, locate=lambda: located_patient(user=user, pk=pk),
                              compute=lambda found: patient_timeline(patient=found[0], user=user))
    return timeline


def _protocols(study_protocol: Protocol, exams: list[dict[str, Any]]) -> list[Protocol]:
    """The protocols the exams use (the study's first when used), else the study's."""
    used = {e["protocol"] for e in exams}
    keys = ([study_protocol.key] if study_protocol.key in used or not used else []) + sorted(used - {study_protocol.key})
    return [get_protocol(k) for k in keys]


def _zone_rows(protocols: list[Protocol], exams: list[dict[str, Any]], mixed: bool) -> list[dict[str, Any]]:
    """The heatmap's rows: each protocol's zones in anatomical order, labelled by that protocol;
    then any zone an exam holds outside its protocol, by its code."""
    rows = [{"key": p.column(z.code) if mixed else z.code, "code": z.code, "label": z.label, "protocol": p.key,
             "tick": f"{p.column(z.code) if mixed else z.code} · {z.label}"}
            for p in protocols for z in p.zones]
    keys = {r["key"] for r in rows}
    for e in exams:
        for code in list(e["clips"]) + list(e["zones"]):
            key = _key(e["protocol"], code, mixed)
            if key not in keys:
                keys.add(key)
                label = zone_label(code, protocols)
                rows.append({"key": key, "code": code, "label": label, "protocol": e["protocol"],
                             "tick": f"{key} · {label}"})
    return rows


def _key(protocol: str, code: str, mixed: bool) -> str:
    return f"{protocol}:{code}" if mixed else code


def _add_changes(rows: list[dict[str, Any]], exams: list[dict[str, Any]]) -> None:
    """Each scored exam's like-with-like change from the previous scored exam (sites shared)."""
    previous: dict[str, int | None] | None = None
    for row, e in zip(rows, exams):
        row["change"] = None
        if e["score"] is None:
            continue
        protocol = get_protocol(e["protocol"])
        sites = {z.site: e["zones"][z.code]["score"] for z in protocol.zones if z.code in e["zones"]}
        if previous is not None:
            c = stats.like_change(previous, sites)
            tr = stats.trend(c.after, c.before)
            row["change"] = {"delta": c.delta, "zones": c.zones, "arrow": tr.arrow, "direction": tr.direction,
                             "mean_delta": None if c.mean_after is None or c.mean_before is None
                             else round(c.mean_after - c.mean_before, 3)}
        previous = sites


def _when(clock: chrono.PatientClock, at: dt.datetime, admission: dt.date | None, name: str) -> dict[str, Any]:
    """A moment as the viewer may see it: ``name`` (local ISO time) and ``time`` (null for
    researchers), the plot coordinate ``x``, its ``label`` and ``day``."""
    local = chrono.local(at)
    dates = clock.shows_dates
    return {name: local.isoformat() if dates else None, "time": chrono.plot_time(at) if dates else None,
            "x": clock.x(at), "label": clock.label(at), "day": _day(clock, local, admission)}


def _exam_row(e: dict[str, Any], rows: list[dict[str, Any]], clock: chrono.PatientClock,
              admission: dt.date | None, mixed: bool, card: dict[str, Any] | None, now: ExamState
              ) -> dict[str, Any]:
    score, sev, ai = e["score"], e["severity"], e["score_ai"]
    risk = risk_block(sev, card)
    exam_protocol = get_protocol(e["protocol"])
    zones = e["zones"]
    # The exam's own zones by heatmap row; other protocols' rows stay empty for it.
    own = {r["key"]: r["code"] for r in rows if r["protocol"] == e["protocol"]}
    luss = score["luss"] if score else None
    norm = stats.normalised(luss, exam_protocol.max_score)
    return {
        "id": e["id"], **_when(clock, e["acquired_at"], admission, "acquired_at"),
        "protocol": exam_protocol.key,
        "luss": luss,
        "luss_pct": None if norm is None else round(100.0 * norm, 2),
        "y": (None if norm is None else round(100.0 * norm, 2)) if mixed else luss,
        "luss_ai": score["luss_ai"] if score else None,
        "max_luss": exam_protocol.max_score,
        "mean_score": score["mean_score"] if score else None,
        "coverage": stats.coverage_text(len(zones), len(exam_protocol.zones)),
        "reviewed_zones": score["reviewed_zones"] if score else 0,
        "review_status": e["review_status"], "signed_by": e["signed_by"],
        "signed_at": chrono.local(e["signed_at"]).isoformat() if e["signed_at"] and clock.shows_dates else None,
        "signed_day": clock.day(e["signed_at"]) if e["signed_at"] and not clock.shows_dates else None,
        "blind": e["blind"],
        "model_version": ai["model_version__version"] if ai else None,
        "severity_now": now.as_dict(),
        "risk_severe_course": risk,
        "severity": sev["label"] if sev else None,
        "severity_probs": risk["class_probabilities"] if risk else None,
        "severe_probability": risk["probability"] if risk else None,
        "zones": {r["key"]: (zones[own[r["key"]]]["score"] if own.get(r["key"]) in zones else None) for r in rows},
        "missing_zones": [z for z in exam_protocol.codes if z not in e["clips"]],
        "zone_details": {r["key"]: _zone_detail(zones.get(own[r["key"]]) if r["key"] in own else None,
                                                e["clips"].get(own[r["key"]]) if r["key"] in own else None)
                         for r in rows},
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


def _gas_rows(gases: list[dict[str, Any]], clock: chrono.PatientClock, admission: dt.date | None
              ) -> list[dict[str, Any]]:
    """The patient's blood gases (``patients.records.selectors.clinical_and_gases``, in time order)."""
    return [
        {"id": g["pk"], **_when(clock, g["sampled_at"], admission, "sampled_at"),
         "paco2_mmhg": g["paco2_mmhg"], "pao2_mmhg": g["pao2_mmhg"], "fio2": g["fio2"],
         "pf_ratio": stats.pf_ratio(g["pao2_mmhg"], g["fio2"]), "ph": g["ph"]}
        for g in gases
    ]
