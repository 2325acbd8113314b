"""Dashboard reads. Pages and the API call the same functions, so they always agree.

Every function loads its rows in a fixed number of queries (no per-exam or per-zone query):
exams, their current exam scores, those jobs' clip scores, severities, clips and blood gases
are each one ``values()`` query, joined in Python.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from django.db.models import Count, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse

from patients import chrono, permissions
from patients.dashboards import stats
from patients.models import BloodGas, ClinicalInfo, Exam, Patient, Study, ZoneClip
from patients.protocols import Protocol, get_protocol

# Same colours as .score.s0-s3 in lusweb.css: one meaning of colour across the site.
SCORE_COLOURS = ("#2e7d32", "#f9a825", "#ef6c00", "#b71c1c")
SCORE_MEANINGS = ("0 · A-lines (normal)", "1 · separate B-lines", "2 · coalescent B-lines",
                  "3 · consolidation / white lung")
SEVERITY_COLOURS = {"mild": "#2e7d32", "moderate": "#f9a825", "severe": "#ef6c00", "critical": "#b71c1c"}
NO_SEVERITY_COLOUR = "#8a97a5"

T = TypeVar("T")


# --- access: outsiders get 404, like patients.views._visible ---------------------------------


def _role_or_404(user: Any, study: Study | int) -> str:
    role = permissions.role_in_study(user, study)
    if role is None:
        raise Http404("Not found")
    return role


def study_for(*, user: Any, pk: int) -> tuple[Study, str]:
    """The study and the user's role in it; 404 when it does not exist or the user is not a member."""
    study = get_object_or_404(Study, pk=pk)
    return study, _role_or_404(user, study)


def patient_for(*, user: Any, pk: int) -> tuple[Patient, str]:
    patient = get_object_or_404(Patient.objects.select_related("study"), pk=pk)
    return patient, _role_or_404(user, patient.study)


def clip_for(*, user: Any, pk: int) -> tuple[ZoneClip, str]:
    clip = get_object_or_404(ZoneClip.objects.select_related("exam__patient__study"), pk=pk)
    return clip, _role_or_404(user, clip.exam.patient.study_id)


# --- bulk loading --------------------------------------------------------------------------


def _chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    # SQLite caps the number of query parameters; chunking keeps large studies working.
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _clip_url(clip_id: int | None) -> str | None:
    return reverse("clip-detail", args=[clip_id]) if clip_id else None


def load_exams(exam_qs: QuerySet[Exam], *, zone_details: bool = True) -> list[dict[str, Any]]:
    """Exams of ``exam_qs`` (patient, time order) with their current results.

    The current exam score follows ``scoring.selectors.current_exam_score``: the newest result of
    the active model, else the newest of any model. Each exam dict has ``score`` (None = not
    scored yet), ``zones`` {zone: {score, probs, findings, clip, in_domain}} of that score's job, ``clips``
    {zone: clip id} and ``severity`` (the prediction of the same job if any, else the newest;
    None = no severity yet).
    """
    from scoring.models import ClipScore, ExamScore, SeverityPrediction

    exams = list(exam_qs.order_by("patient_id", "acquired_at", "pk").values("id", "patient_id", "acquired_at",
                                                                             "protocol"))
    if not exams:
        return []
    ids = exam_qs.values("pk")
    scores: dict[int, dict[str, Any]] = {}
    for row in (ExamScore.objects.filter(exam__in=ids)
                .order_by("exam_id", "-model_version__is_active", "-created_at", "-pk")
                .values("exam_id", "job_id", "luss", "max_luss", "mean_score", "coverage", "missing_zones",
                        "worst_zone", "zones_ge2", "model_version__version")):
        scores.setdefault(row["exam_id"], dict(row))
    zone_rows: dict[int, dict[str, dict[str, Any]]] = {}
    if zone_details:
        jobs = [s["job_id"] for s in scores.values()]
        for chunk in _chunks(jobs):
            # Not the float16 frame array: the dashboards only need the clip-level results.
            # Only the domain flag of ``extra``: the rest (per-frame six-class values) is kilobytes a clip.
            for cs in ClipScore.objects.filter(job_id__in=chunk).values(
                    "job_id", "zone", "score", "probs", "findings", "clip_id", "extra__domain__in_domain"):
                zone: dict[str, Any] = dict(cs)
                zone["in_domain"] = zone.pop("extra__domain__in_domain")  # None: weights without the check
                zone_rows.setdefault(cs["job_id"], {})[cs["zone"]] = zone
    severities: dict[int, list[dict[str, Any]]] = {}
    for sp in (SeverityPrediction.objects.filter(exam__in=ids).order_by("exam_id", "-created_at", "-pk")
               .values("exam_id", "job_id", "label", "probs", "severe_probability", "model_version")):
        severities.setdefault(sp["exam_id"], []).append(dict(sp))
    clips: dict[int, dict[str, int]] = {}
    for c in ZoneClip.objects.filter(exam__in=ids).values("id", "exam_id", "zone"):
        clips.setdefault(c["exam_id"], {})[c["zone"]] = c["id"]
    out = []
    for e in exams:
        score = scores.get(e["id"])
        preds = severities.get(e["id"], [])
        severity = None
        if preds:
            same_job = [p for p in preds if score is not None and p["job_id"] == score["job_id"]]
            severity = (same_job or preds)[0]
        out.append({
            **e,
            "score": score,
            "zones": zone_rows.get(score["job_id"], {}) if score else {},
            "clips": clips.get(e["id"], {}),
            "severity": severity,
        })
    return out


def _zone_order(protocol: Protocol, exams: Sequence[dict[str, Any]]) -> list[str]:
    """The protocol's zones in anatomical order, then any other zone an exam has (other protocol)."""
    codes = list(protocol.codes)
    for e in exams:
        for z in list(e["clips"]) + list(e["zones"]):
            if z not in codes:
                codes.append(z)
    return codes


def _zone_label(code: str, protocols: Sequence[Protocol]) -> str:
    for p in protocols:
        try:
            return p.zone(code).label
        except KeyError:
            continue
    return code


# --- patient timeline ----------------------------------------------------------------------


def _day(clock: chrono.PatientClock, local: dt.datetime, admission: dt.date | None) -> int | None:
    """Whole days since admission (the admission day is day 0) for those who see dates; for
    researchers whole days since their day 0 (admission, else the first exam)."""
    if clock.shows_dates:
        return stats.day_since(local.date(), admission)
    d = clock.day(local)
    return None if d is None else math.floor(d)


def patient_timeline(*, patient: Patient, user: Any) -> dict[str, Any]:
    """``GET /api/v1/patients/<id>/timeline/`` and the timeline page's data.

    ``exams[*].zones`` has every zone of the protocol: its score, or null when the zone is
    missing or not scored; ``day`` counts days since admission (0 = admission day; null when
    the admission date is unknown). Blood gases are in mmHg; ``pf_ratio`` is PaO2/FiO2.

    Time as the user may see it (:mod:`patients.chrono`): every exam and gas has ``x`` (the
    plot coordinate) and ``label``; ``time_axis`` says whether ``x`` is a local date-time
    (clinicians, study admins) or days since day 0 (researchers, who get no calendar date:
    ``acquired_at``, ``sampled_at``, ``time`` and ``admission_date`` are null for them, and
    ``day`` counts from day 0 - admission, or the first exam when the admission date is unknown).
    """
    protocol = get_protocol(patient.study.protocol)
    exams = load_exams(Exam.objects.filter(patient=patient))
    codes = _zone_order(protocol, exams)
    protocols = [protocol] + [get_protocol(p) for p in {e["protocol"] for e in exams} - {protocol.key}]
    admission = patient.admission_date
    clock = chrono.clock_for(user=user, patient=patient,
                             first_exam_at=exams[0]["acquired_at"] if exams else None)
    dates = clock.shows_dates
    exam_rows = []
    for e in exams:
        score, sev = e["score"], e["severity"]
        local = chrono.local(e["acquired_at"])
        present = set(e["clips"])
        exam_protocol = get_protocol(e["protocol"])
        exam_rows.append({
            "id": e["id"],
            "acquired_at": local.isoformat() if dates else None,
            "time": chrono.plot_time(e["acquired_at"]) if dates else None,
            "x": clock.x(e["acquired_at"]), "label": clock.label(e["acquired_at"]),
            "day": _day(clock, local, admission),
            "luss": score["luss"] if score else None,
            "max_luss": score["max_luss"] if score else 3 * len(exam_protocol.codes),
            "mean_score": score["mean_score"] if score else None,
            "model_version": score["model_version__version"] if score else None,
            "severity": sev["label"] if sev else None,
            "severity_probs": sev["probs"] if sev else None,
            "severe_probability": sev["severe_probability"] if sev else None,
            "zones": {z: (e["zones"][z]["score"] if z in e["zones"] else None) for z in codes},
            "missing_zones": [z for z in exam_protocol.codes if z not in present],
            "zone_details": {
                z: {
                    "probs": e["zones"][z]["probs"] if z in e["zones"] else None,
                    "findings": e["zones"][z]["findings"] if z in e["zones"] else None,
                    "clip": e["clips"].get(z),
                    "clip_url": _clip_url(e["clips"].get(z)),
                }
                for z in codes
            },
            "page_url": reverse("exam-detail", args=[e["id"]]),
        })
    gases = []
    for g in BloodGas.objects.filter(patient=patient).order_by("sampled_at", "pk").values(
            "id", "sampled_at", "paco2_mmhg", "pao2_mmhg", "fio2", "ph"):
        local = chrono.local(g["sampled_at"])
        gases.append({
            "id": g["id"], "sampled_at": local.isoformat() if dates else None,
            "time": chrono.plot_time(g["sampled_at"]) if dates else None,
            "x": clock.x(g["sampled_at"]), "label": clock.label(g["sampled_at"]),
            "day": _day(clock, local, admission),
            "paco2_mmhg": g["paco2_mmhg"], "pao2_mmhg": g["pao2_mmhg"], "fio2": g["fio2"],
            "pf_ratio": stats.pf_ratio(g["pao2_mmhg"], g["fio2"]), "ph": g["ph"],
        })
    return {
        "patient": patient.pk,
        "code": patient.code,
        "admission_date": clock.date(admission),
        "time_axis": clock.axis, "time_axis_title": clock.axis_title, "day_zero": clock.origin_kind or None,
        "protocol": protocol.key,
        "zones": [{"code": z, "label": _zone_label(z, protocols)} for z in codes],
        "threshold": stats.default_threshold(len(protocol.codes)),
        "exams": exam_rows,
        "blood_gases": gases,
    }


# --- study overview ------------------------------------------------------------------------


def study_overview(*, study: Study, user: Any, threshold: float | None = None,
                   window_hours: float = stats.DEFAULT_WINDOW_HOURS) -> dict[str, Any]:
    """One row per patient: latest global score and trend, severity, last exam, flags, data gaps.

    The trend compares the latest *scored* exam with the previous scored one. Flags: a zone up
    by >= 2 between consecutive scored exams, or the global score crossing ``threshold``
    (default: half the maximum, 18 for 12 zones). Gaps: zones without a clip at the last exam,
    exams with no blood gas within +-``window_hours``, exams not scored yet, no clinical record,
    zones of the latest scored exam unlike the model's training clips (``unvalidated_zones``).
    Identifying fields are only included for roles that may see them.
    """
    protocol = get_protocol(study.protocol)
    max_luss = 3 * len(protocol.codes)
    if threshold is None:
        threshold = stats.default_threshold(len(protocol.codes))
    identifying = permissions.can_see_identifying(user, study)
    fields = ["id", "code", "admission_date"] + (["name", "hospital_number"] if identifying else [])
    patients = list(Patient.objects.filter(study=study).order_by("code").values(*fields))
    exams = load_exams(Exam.objects.filter(patient__study=study))
    by_patient: dict[int, list[dict[str, Any]]] = {}
    for e in exams:
        by_patient.setdefault(e["patient_id"], []).append(e)
    gas_times: dict[int, list[dt.datetime]] = {}
    for pid, at in BloodGas.objects.filter(patient__study=study).order_by("patient_id", "sampled_at").values_list(
            "patient_id", "sampled_at"):
        gas_times.setdefault(pid, []).append(at)
    clinical = dict(ClinicalInfo.objects.filter(patient__study=study).values("patient_id")
                    .annotate(n=Count("id")).values_list("patient_id", "n"))
    clocks = chrono.clocks_for(patients={p["id"]: p["admission_date"] for p in patients},
                               first_exam_at={pid: ex[0]["acquired_at"] for pid, ex in by_patient.items()},
                               shows_dates=identifying)
    rows = []
    for p in patients:
        pex = by_patient.get(p["id"], [])
        clock = clocks[p["id"]]
        scored = [e for e in pex if e["score"] is not None]
        latest, previous = (scored[-1] if scored else None), (scored[-2] if len(scored) > 1 else None)
        luss = latest["score"]["luss"] if latest else None
        tr = stats.trend(luss, previous["score"]["luss"] if previous else None)
        summaries = [stats.ExamSummary(e["id"], e["acquired_at"], e["score"]["luss"],
                                       {z: r["score"] for z, r in e["zones"].items()}) for e in scored]
        flags = stats.exam_flags(summaries, threshold)
        last_exam = pex[-1] if pex else None
        last_protocol = get_protocol(last_exam["protocol"]) if last_exam else protocol
        sev = latest["severity"] if latest else None
        no_gas = [e for e in pex if not stats.has_gas_within(e["acquired_at"], gas_times.get(p["id"], []),
                                                             window_hours)]
        rows.append({
            "id": p["id"], "code": p["code"], "name": p.get("name"), "hospital_number": p.get("hospital_number"),
            "page_url": reverse("patient-detail", args=[p["id"]]),
            "timeline_url": reverse("dashboard-patient-timeline", args=[p["id"]]),
            "exam_count": len(pex),
            "last_exam": {"id": last_exam["id"], "label": clock.label(last_exam["acquired_at"]),
                          "url": reverse("exam-detail", args=[last_exam["id"]])} if last_exam else None,
            "luss": luss,
            "max_luss": latest["score"]["max_luss"] if latest else max_luss,
            "scored_at": clock.label(latest["acquired_at"], with_time=False) if latest else None,
            "delta": tr.delta, "arrow": tr.arrow, "direction": tr.direction,
            "severity": sev["label"] if sev else None,
            "severe_probability": sev["severe_probability"] if sev else None,
            "above_threshold": luss is not None and luss >= threshold,
            "flags": [{"kind": f.kind, "text": f.text, "label": clock.label(f.at, with_time=False),
                       "latest": bool(latest and f.exam == latest["id"])}
                      for f in flags],
            "missing_zones": [z for z in last_protocol.codes if z not in last_exam["clips"]] if last_exam else [],
            "unscored_exams": len(pex) - len(scored),
            # Zones of the latest scored exam whose clips are unlike the model's training clips.
            "unvalidated_zones": sorted(z for z, r in latest["zones"].items() if r.get("in_domain") is False)
            if latest else [],
            "exams_without_gas": len(no_gas),
            "no_clinical": not clinical.get(p["id"]),
        })
    return {
        "study": study.pk, "threshold": threshold, "max_luss": max_luss, "window_hours": window_hours,
        "identifying": identifying, "patients": rows,
        "chart": {
            "codes": [r["code"] for r in rows if r["luss"] is not None],
            "luss": [r["luss"] for r in rows if r["luss"] is not None],
            "severity": [r["severity"] for r in rows if r["luss"] is not None],
            "urls": [r["timeline_url"] for r in rows if r["luss"] is not None],
        },
    }


# --- correlation ---------------------------------------------------------------------------


def _score_value(exam: dict[str, Any], score: str) -> float | None:
    s, sev = exam["score"], exam["severity"]
    if score == "luss":
        return float(s["luss"]) if s else None
    if score == "mean":
        return s["mean_score"] if s else None
    if score == "severity":
        o = stats.severity_ordinal(sev["label"]) if sev else None
        return None if o is None else float(o)
    if score == "severe_prob":
        return sev["severe_probability"] if sev else None
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
    """Score vs blood gas over a study's (or one patient's) exams; see ``stats.pair_nearest``.

    Each exam is paired with the nearest gas of the same patient within +-window hours (ties:
    the earlier gas). Figures are null with a ``message`` when fewer than 3 pairs exist. For a
    study, ``repeated`` is the repeated-measures (within-patient) correlation. Every pair has
    ``exam_label`` / ``exam_day`` and ``gas_label`` / ``gas_day`` (days since the patient's day 0);
    the calendar fields (``exam_acquired_at``, ``exam_time``, ``gas_sampled_at``) are null for
    researchers.
    """
    if (study is None) == (patient is None):
        raise ValueError("give a study or a patient")
    if patient is not None:
        exam_qs = Exam.objects.filter(patient=patient)
        gas_qs = BloodGas.objects.filter(patient=patient)
        codes: dict[Any, str] = {patient.pk: patient.code}
        admissions: dict[int, dt.date | None] = {patient.pk: patient.admission_date}
        the_study: Study | None = patient.study
    else:
        exam_qs = Exam.objects.filter(patient__study=study)
        gas_qs = BloodGas.objects.filter(patient__study=study)
        codes = dict(Patient.objects.filter(study=study).values_list("id", "code"))
        admissions = dict(Patient.objects.filter(study=study).values_list("id", "admission_date"))
        the_study = study
    assert the_study is not None
    exams = load_exams(exam_qs, zone_details=False)
    first: dict[int, dt.datetime] = {}
    for e in exams:  # ordered by patient, then time
        first.setdefault(e["patient_id"], e["acquired_at"])
    dates = permissions.can_see_identifying(user, the_study)
    # Keyed by the pairs' group (the patient id).
    clocks: dict[Any, chrono.PatientClock] = chrono.clocks_for(patients=admissions, first_exam_at=first,
                                                                shows_dates=dates)
    points = [stats.ExamPoint(e["id"], e["patient_id"], e["acquired_at"], _score_value(e, params.score))
              for e in exams]
    gases = [stats.GasPoint(g["id"], g["patient_id"], g["sampled_at"], _gas_value(g, params.gas, params.unit))
             for g in gas_qs.values("id", "patient_id", "sampled_at", "paco2_mmhg", "pao2_mmhg", "fio2")]
    pairs = stats.pair_nearest(points, gases, params.window_hours)
    result = stats.correlate([p.score for p in pairs], [p.value for p in pairs])
    # Across patients the pooled r mixes patients with each other; the within-patient figure is
    # what a longitudinal question needs (one patient's page has only the pooled one, which is it).
    repeated = (stats.repeated_measures_correlation([p.score for p in pairs], [p.value for p in pairs],
                                                    [p.group for p in pairs]).as_dict()
                if patient is None else None)
    scored = sum(1 for p in points if p.score is not None)
    return {
        **result.as_dict(),
        "score": params.score, "gas": params.gas, "unit": params.unit, "window_hours": params.window_hours,
        "score_label": params.score_label, "gas_label": params.gas_label,
        "exams": len(exams), "exams_with_score": scored, "repeated": repeated,
        "pairs": [
            {"exam": p.exam, "patient": p.group, "patient_code": codes.get(p.group, ""), "score": p.score,
             "gas": p.value, "gas_sampled_at": chrono.local(p.gas_at).isoformat() if dates else None,
             "exam_acquired_at": chrono.local(p.exam_at).isoformat() if dates else None,
             "exam_time": chrono.plot_time(p.exam_at) if dates else None,
             "exam_label": clocks[p.group].label(p.exam_at), "exam_day": clocks[p.group].day(p.exam_at),
             "gas_label": clocks[p.group].label(p.gas_at), "gas_day": clocks[p.group].day(p.gas_at),
             "hours_apart": round(p.hours_apart, 3), "exam_url": reverse("exam-detail", args=[p.exam])}
            for p in pairs
        ],
    }


# --- exam chest diagram and clip viewer ------------------------------------------------------


def chest_diagram_zones(*, exam: Exam) -> list[dict[str, Any]]:
    """The ``zones`` of ``templates/dashboards/_chest_diagram.html`` for an exam, in protocol order:
    code, side, region, level, label, score (None = missing or not scored), clip_url (None = no clip)."""
    rows = load_exams(Exam.objects.filter(pk=exam.pk))
    data = rows[0] if rows else {"zones": {}, "clips": {}}
    out = []
    for z in get_protocol(exam.protocol).zones:
        zs = data["zones"].get(z.code)
        out.append({
            "code": z.code, "side": z.side, "region": z.region, "level": z.level, "label": z.label,
            "score": zs["score"] if zs else None, "clip_url": _clip_url(data["clips"].get(z.code)),
        })
    return out


def previous_zone_clip(*, clip: ZoneClip) -> ZoneClip | None:
    """The same zone at the patient's previous exam that has a clip for it."""
    exam = clip.exam
    return (ZoneClip.objects.select_related("exam")
            .filter(exam__patient_id=exam.patient_id, zone=clip.zone, exam__acquired_at__lt=exam.acquired_at)
            .order_by("-exam__acquired_at", "-pk").first())


def _player(clip: ZoneClip, clock: chrono.PatientClock) -> dict[str, Any]:
    from scoring.selectors import clip_frames_payload

    frames = clip_frames_payload(clip=clip)
    frame0 = reverse("clip-frame", args=[clip.pk, 0])
    gradcam0 = reverse("dashboard-clip-gradcam", args=[clip.pk, 0])
    return {
        "id": clip.pk, "zone": clip.zone, "frame_count": clip.frame_count,
        # A still image or a file without a rate plays at 20 fps (documented on the page).
        "fps": clip.fps or None, "play_fps": clip.fps or 20.0,
        "exam": clip.exam_id, "exam_label": clock.label(clip.exam.acquired_at),
        "exam_url": reverse("exam-detail", args=[clip.exam_id]), "page_url": reverse("clip-detail", args=[clip.pk]),
        "frame_url": frame0[: -len("0.png")], "gradcam_url": gradcam0[: -len("0.png")],
        "model_version": frames["model_version"], "clip_score": frames.get("clip_score"),
        "clip_probs": frames.get("clip_probs"), "findings": frames.get("findings"),
        "confidence": frames["confidence"], "in_domain": frames["in_domain"],
        "domain_distance": frames["domain_distance"],
        "expected_scores": frames["expected_scores"], "frame_scores": frames["frame_scores"],
        "frame_probs": frames["frame_probs"],
    }


def clip_viewer(*, clip: ZoneClip, user: Any) -> dict[str, Any]:
    """Both players of the viewer: this clip and the same zone at the previous exam (or None).
    ``exam_label`` is the exam's time as the user may see it (a day number for researchers)."""
    previous = previous_zone_clip(clip=clip)
    label = _zone_label(clip.zone, [get_protocol(clip.exam.protocol)])
    clock = chrono.clock_for(user=user, patient=clip.exam.patient)
    return {"zone": clip.zone, "label": label, "current": _player(clip, clock),
            "previous": _player(previous, clock) if previous else None}
