"""Dashboard pages. Thin: access check (404 for outsiders), a selector, a template."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string

from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.dashboards import gradcam, selectors, stats
from patients.dashboards.correlation import correlation
from patients.dashboards.exam_page import exam_page
from patients.dashboards.overview import study_overview as overview_data
from patients.dashboards.pagecache import located_patient, page_cached
from patients.dashboards.timeline import patient_timeline as timeline_data
from patients.dashboards.ward import SORT_KEYS, sort_rows, ward_rows
from patients.imaging.forms import ClipUploadForm
from patients.imaging.selectors import clip_for
from patients.imaging.views import exam_page_upload
from patients.readings.selectors import open_blind_exams
from patients.records import chrono
from patients.records.models import Patient
from patients.records.selectors import exam_for, patient_for
from patients.studies import permissions
from patients.studies.protocols import get_protocol
from patients.studies.selectors import study_for


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
    return render(request, "dashboards/exam_detail.html", {
        "exam": exam, "patient": exam.patient, "study": exam.study, "protocol": get_protocol(exam.protocol),
        "clock": chrono.clock_for(user=request.user, patient=exam.patient), "form": form,
        **exam_page(exam=exam, user=request.user, role=role),
    })


@login_required
def study_overview(request: HttpRequest, pk: int) -> HttpResponse:
    study, role = study_for(user=request.user, pk=pk)
    n_zones = len(get_protocol(study.protocol).codes)
    threshold = _number(request, "threshold", stats.default_threshold(n_zones), low=0, high=3 * n_zones)
    window = _number(request, "window_hours", stats.DEFAULT_WINDOW_HOURS, low=0.5, high=stats.MAX_WINDOW_HOURS)
    data = overview_data(study=study, user=request.user, threshold=threshold, window_hours=window)
    return render(request, "dashboards/study_overview.html", {
        "study": study, "role": role, "data": data, "chart": data["chart"],
        "colours": {"severity": selectors.SEVERITY_COLOURS, "now": selectors.NOW_COLOURS,
                    "none": selectors.NO_SEVERITY_COLOUR},
    })


#: The ward list's columns: sort key, header, what the header's title explains.
WARD_COLUMNS = (
    ("code", "Patient", "pseudonym code"),
    ("score", "Latest score", "global LUS score of record of the latest scored exam, as % of its protocol's maximum"),
    ("change", "Change", "since the previous scored exam, in points of % of the maximum"),
    ("review", "Review", "review state of the exam whose score is shown"),
    ("alerts", "Open alerts", "alerts not acknowledged yet"),
    ("pf", "Last P/F", "PaO2/FiO2 of the latest blood gas, mmHg"),
    ("paco2", "Last PaCO2", "of the latest blood gas, mmHg"),
    ("gas_at", "Gas taken", "when the latest blood gas was taken"),
    ("days", "Days in", "days since admission (since the first exam when the admission date is unknown)"),
)


@login_required
def study_ward(request: HttpRequest, pk: int) -> HttpResponse:
    """The ward list: one row per patient, sorted server-side by ``?sort=<key>&dir=asc|desc``."""
    study, role = study_for(user=request.user, pk=pk)
    key = request.GET.get("sort", "code")
    key = key if key in SORT_KEYS else "code"
    direction = "desc" if request.GET.get("dir") == "desc" else "asc"
    rows = sort_rows(ward_rows(study=study, user=request.user), key, direction)
    identifying = permissions.can_see_identifying(request.user, study)
    if identifying and rows:
        audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study,
                     object_type="patient", object_id="list", row_count=len(rows),
                     changes={"patients": [r["id"] for r in rows], "via": "ward list"})
    columns = [{"key": k, "label": label, "title": title, "current": k == key,
                "aria": ("descending" if direction == "desc" else "ascending") if k == key else "none",
                "next": "desc" if k == key and direction == "asc" else "asc"} for k, label, title in WARD_COLUMNS]
    return render(request, "dashboards/ward.html", {
        "study": study, "role": role, "rows": rows, "columns": columns, "sort": key, "dir": direction,
        "identifying": identifying,
    })


@login_required
def patient_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    (patient, role), body = page_cached(
        kind="timeline-page", part=pk, user=request.user,
        locate=lambda: located_patient(user=request.user, pk=pk),
        compute=lambda found: _timeline_body(patient=found[0], user=request.user))
    return render(request, "dashboards/patient_timeline.html", {
        "patient": patient, "study": patient.study, "role": role, "body": body})


def _timeline_body(*, patient: Patient, user: Any) -> str:
    """The timeline page's content (no request, session or CSRF token in it: it is cached)."""
    return render_to_string("dashboards/_timeline_body.html", {
        "patient": patient, "study": patient.study, "data": timeline_data(patient=patient, user=user),
        "identifying": permissions.can_see_identifying(user, patient.study),
        "colours": {"scores": selectors.SCORE_COLOURS, "meanings": selectors.SCORE_MEANINGS,
                    "severity": selectors.SEVERITY_COLOURS, "now": selectors.NOW_COLOURS,
                    "none": selectors.NO_SEVERITY_COLOUR},
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
    """Heat map (RGBA PNG) of one frame the clip model read, for the clip score shown; 404 with a
    plain message for a frame it did not read, 503 when no scorer runs here."""
    clip, _ = clip_for(user=request.user, pk=pk)
    if open_blind_exams(user=request.user, exam_ids=[clip.exam_id]):
        return HttpResponse("The heat map is the AI's view of the clip: hidden during your blind read of the exam.",
                            status=403, content_type="text/plain; charset=utf-8")
    try:
        overlay = gradcam.gradcam_png(clip, index)
    except IndexError as exc:
        raise Http404(str(exc)) from None
    except gradcam.FrameNotRead as exc:
        return HttpResponse(str(exc), status=404, content_type="text/plain; charset=utf-8")
    except gradcam.GradcamUnavailable as exc:
        return HttpResponse(f"Heat map unavailable: {exc}", status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(overlay.png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"
    # What the map explains, for the page's caption (and its tests).
    response["X-Explained-Score"] = str(overlay.score)
    response["X-Read-Frames"] = ",".join(str(i) for i in overlay.read_frames)
    if overlay.summary_share is not None:
        response["X-Summary-Share"] = f"{overlay.summary_share:.4f}"
    return response
