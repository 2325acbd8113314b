"""Dashboard pages. Thin: access check (404 for outsiders), a selector, a template."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from patients.dashboards import gradcam, selectors, stats
from patients.dashboards.correlation import correlation
from patients.dashboards.overview import study_overview as overview_data
from patients.dashboards.timeline import patient_timeline as timeline_data
from patients.imaging.forms import ClipUploadForm
from patients.imaging.selectors import clip_for
from patients.imaging.views import exam_page_upload
from patients.readings.forms import OverrideForm
from patients.readings.models import FINDINGS, BlindRead, ZoneReading
from patients.readings.selectors import (
    CLINICIAN_SOURCES,
    exam_history,
    open_blind_exams,
    record_scores,
    review_states,
)
from patients.records import chrono
from patients.records.models import Exam
from patients.records.selectors import exam_for, patient_for
from patients.studies import permissions
from patients.studies.protocols import get_protocol
from patients.studies.selectors import study_for
from scoring.models import SEVERITY_ORDER
from scoring.selectors import exam_scores_payload
from scoring.severity import severity_payload


def _number(request: HttpRequest, name: str, default: float, *, low: float, high: float) -> float:
    """A numeric query parameter; a bad value falls back to ``default`` with a message."""
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        messages.warning(request, f"{name}={raw!r} is not a number between {low:g} and {high:g}; using {default:g}.")
        return default
    return value


@login_required
def exam_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The exam page: its zones with clips, the score of record and the AI's beside it, the review
    state, readings and signatures, severity; the upload form."""
    exam, role = exam_for(user=request.user, pk=pk)
    form = ClipUploadForm()
    if request.method == "POST":
        form, stored = exam_page_upload(request, exam)
        if stored:
            return redirect(exam)
    protocol = get_protocol(exam.protocol)
    clips = {c.zone: c for c in exam.clips.all()}
    scores = exam_scores_payload(exam=exam, user=request.user)
    by_zone = {z["zone"]: z for z in scores["zones"]}
    records = record_scores(exam_ids=[exam.pk], user=request.user)[exam.pk]
    overrides = _latest_clinician_readings(exam, request.user)
    zones: list[dict[str, Any]] = []
    for z in protocol.zones:
        ai = _ai_zone(by_zone.get(z.code))
        # ``score`` is the AI's result (the page's "AI" column, as before); ``record`` the score of
        # record; ``override`` the latest clinician reading.
        zones.append({"zone": z, "clip": clips.get(z.code), "score": ai, "ai": ai, "record": records.get(z.code),
                      "payload": by_zone.get(z.code),
                      "override": overrides.get(clips[z.code].pk) if z.code in clips else None})
    can_write = role in permissions.WRITE_ROLES and not exam.study.archived
    return render(request, "dashboards/exam_detail.html", {
        "exam": exam, "patient": exam.patient, "study": exam.study, "role": role, "can_write": can_write,
        "clock": chrono.clock_for(user=request.user, patient=exam.patient),
        "identifying": permissions.can_see_identifying(request.user, exam.study),
        "is_admin": role in permissions.ADMIN_ROLES and not exam.study.archived,
        "zones": zones, "protocol": protocol, "missing": [z["zone"].code for z in zones if z["clip"] is None],
        "form": form, "scores": scores, "progress_pct": round(100 * (scores["progress"] or 0)),
        "override_form": OverrideForm(),
        "chest_zones": selectors.chest_diagram_zones(exam=exam, user=request.user),
        "severity": _severity_context(exam) if not open_blind_exams(user=request.user, exam_ids=[exam.pk]) else None,
        "review": review_states(exam_ids=[exam.pk])[exam.pk],
        "history": exam_history(exam_id=exam.pk, user=request.user),
        "blind_read": BlindRead.objects.filter(exam=exam, reader_id=request.user.pk).first(),
        "can_sign": can_write, "findings": FINDINGS,
    })


def _ai_zone(zone: dict[str, Any] | None) -> dict[str, Any] | None:
    """The AI's side of a zone of the ``scores`` block (None when the AI's reading is not shown)."""
    if zone is None or zone["ai_score"] is None:
        return None
    return {"score": zone["ai_score"], "probs": zone["probs"] or [], "confidence": zone["confidence"],
            "in_domain": zone["in_domain"], "domain_distance": zone["domain_distance"],
            "findings": zone["ai_findings"]}


def _latest_clinician_readings(exam: Exam, user: Any) -> dict[int, dict[str, Any]]:
    """clip id -> the latest clinician or adjudication reading, in the shape of the page's former
    override (score, reason, by.username, at); during the user's blind read only their own."""
    qs = ZoneReading.objects.filter(clip__exam=exam, source__in=CLINICIAN_SOURCES).order_by("clip_id", "-created_at",
                                                                                              "-pk")
    if open_blind_exams(user=user, exam_ids=[exam.pk]):
        qs = qs.filter(rater_id=user.pk)
    latest: dict[int, dict[str, Any]] = {}
    for r in qs.values("clip_id", "score", "comment", "rater_name", "created_at", "source", "blind"):
        latest.setdefault(r["clip_id"], {"score": r["score"], "reason": r["comment"], "by": {"username": r["rater_name"]},
                                         "at": r["created_at"], "source": r["source"], "blind": r["blind"]})
    return latest


def _severity_context(exam: Exam) -> dict[str, Any] | None:
    """Severity with its probabilities and the zones that drove it, strongest first."""
    payload = severity_payload(exam=exam)
    if payload is None:
        return None
    attention = sorted(payload["zone_attention"].items(), key=lambda kv: -kv[1])
    return {
        **payload,
        "classes": [{"label": str(c.label), "value": c.value, "p": p} for c, p in zip(SEVERITY_ORDER, payload["probs"],
                                                                                   strict=True)],
        "attention": [{"zone": z, "weight": w, "pct": round(100 * w)} for z, w in attention],
    }


@login_required
def study_overview(request: HttpRequest, pk: int) -> HttpResponse:
    study, role = study_for(user=request.user, pk=pk)
    n_zones = len(get_protocol(study.protocol).codes)
    threshold = _number(request, "threshold", stats.default_threshold(n_zones), low=0, high=3 * n_zones)
    window = _number(request, "window_hours", stats.DEFAULT_WINDOW_HOURS, low=0.5, high=stats.MAX_WINDOW_HOURS)
    data = overview_data(study=study, user=request.user, threshold=threshold, window_hours=window)
    return render(request, "dashboards/study_overview.html", {
        "study": study, "role": role, "data": data, "chart": data["chart"],
        "colours": {"severity": selectors.SEVERITY_COLOURS, "none": selectors.NO_SEVERITY_COLOUR},
    })


@login_required
def patient_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    patient, role = patient_for(user=request.user, pk=pk)
    data = timeline_data(patient=patient, user=request.user)
    return render(request, "dashboards/patient_timeline.html", {
        "patient": patient, "study": patient.study, "role": role, "data": data,
        "identifying": permissions.can_see_identifying(request.user, patient.study),
        "colours": {"scores": selectors.SCORE_COLOURS, "meanings": selectors.SCORE_MEANINGS,
                    "severity": selectors.SEVERITY_COLOURS, "none": selectors.NO_SEVERITY_COLOUR},
    })


def _correlation_params(request: HttpRequest) -> stats.CorrelationParams:
    try:
        return stats.parse_correlation_params(request.GET)
    except ValueError as exc:
        messages.warning(request, f"{exc}; showing the defaults.")
        return stats.CorrelationParams()


def _correlation_page(request: HttpRequest, context: dict[str, Any], **target: Any) -> HttpResponse:
    params = _correlation_params(request)
    data = correlation(params=params, user=request.user, **target)
    return render(request, "dashboards/correlation.html", {
        **context, "data": data, "params": params, "scores": stats.SCORES, "gases": stats.GASES,
        "units": stats.UNITS,
    })


@login_required
def study_correlation(request: HttpRequest, pk: int) -> HttpResponse:
    study, role = study_for(user=request.user, pk=pk)
    return _correlation_page(request, {"study": study, "role": role, "patient": None}, study=study)


@login_required
def patient_correlation(request: HttpRequest, pk: int) -> HttpResponse:
    patient, role = patient_for(user=request.user, pk=pk)
    return _correlation_page(request, {"study": patient.study, "role": role, "patient": patient}, patient=patient)


@login_required
def clip_viewer(request: HttpRequest, pk: int) -> HttpResponse:
    clip, role = clip_for(user=request.user, pk=pk)
    return render(request, "dashboards/clip_viewer.html", {
        "clip": clip, "exam": clip.exam, "patient": clip.exam.patient, "study": clip.exam.patient.study,
        "role": role, "data": selectors.clip_viewer(clip=clip, user=request.user),
        "clock": chrono.clock_for(user=request.user, patient=clip.exam.patient),
    })


@login_required
def clip_gradcam(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """Grad-CAM++ overlay (RGBA PNG) of one frame; 503 with a plain message when no scorer runs here."""
    clip, _ = clip_for(user=request.user, pk=pk)
    if open_blind_exams(user=request.user, exam_ids=[clip.exam_id]):
        return HttpResponse("Grad-CAM++ is the AI's view of the clip: hidden during your blind read of the exam.",
                            status=403, content_type="text/plain; charset=utf-8")
    try:
        png = gradcam.gradcam_png(clip, index)
    except IndexError as exc:
        raise Http404(str(exc)) from None
    except gradcam.GradcamUnavailable as exc:
        return HttpResponse(f"Grad-CAM++ unavailable: {exc}", status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"
    return response
