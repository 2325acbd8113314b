"""Pages. Thin: permission check, selector or service, template."""
from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from patients import audit, chrono, export, permissions, selectors, services
from patients.forms import (
    AuditFilterForm,
    BloodGasForm,
    ClinicalInfoForm,
    ClipUploadForm,
    ExamForm,
    ExportForm,
    MemberForm,
    OverrideForm,
    PatientForm,
    StudyForm,
    StudySettingsForm,
)
from patients.models import AuditAction, Exam, Membership, Patient, ScoreOverride, Study, ZoneClip
from patients.protocols import get_protocol


def _visible(user: Any, study: Study) -> str:
    """The user's role; 404 (not 403) for outsiders so study existence does not leak."""
    role = permissions.role_in_study(user, study)
    if role is None:
        raise Http404("Not found")
    return role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = services.study_create(created_by=request.user, **form.cleaned_data)
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect(study)
    return render(request, "patients/home.html", {
        "studies": selectors.study_list(user=request.user),
        "form": form,
        "can_create": permissions.can_create_study(request.user),
    })


@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    form = PatientForm(request.POST or None)
    if request.method == "POST":
        permissions.require_write(request.user, study)
        if form.is_valid():
            try:
                patient = services.patient_create(study=study, by=request.user, **form.cleaned_data)
            except services.ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect(patient)
    patients = list(selectors.patient_list(user=request.user, study=study))
    identifying = permissions.can_see_identifying(request.user, study)
    if identifying and patients:
        audit.audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study,
                           object_type="patient", object_id="list", row_count=len(patients),
                           changes={"patients": [p.pk for p in patients], "via": "study page"})
    return render(request, "patients/study_detail.html", {
        "study": study, "role": role, "form": form, "patients": patients,
        "can_write": role in permissions.WRITE_ROLES and not study.archived,
        "is_admin": role in permissions.ADMIN_ROLES,
        "identifying": identifying,
    })


@login_required
def study_members(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_set(study=study, by=request.user, **form.cleaned_data)
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}.")
            return redirect("study-members", pk=study.pk)
    members = Membership.objects.filter(study=study).select_related("user").order_by("user__username")
    return render(request, "patients/study_members.html", {
        "study": study, "role": role, "members": members, "form": form,
        "is_admin": role in permissions.ADMIN_ROLES and not study.archived,
    })


@login_required
@require_POST
def study_member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    _visible(request.user, study)
    username = request.POST.get("username", "")
    try:
        services.membership_remove(study=study, username=username, by=request.user)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{username} was removed from the study.")
    return redirect("study-members", pk=study.pk)


@login_required
def study_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: description, de-identification and original-keeping; archive / unarchive."""
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    if role not in permissions.ADMIN_ROLES:
        raise PermissionDenied("Only a study admin can change the study's settings.")
    initial = {"description": study.description, "deidentify": study.deidentify, "keep_original": study.keep_original}
    form = StudySettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.study_update(study=study, by=request.user, **form.cleaned_data)
        except services.ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("study-settings", pk=study.pk)
    return render(request, "patients/study_settings.html", {"study": study, "role": role, "form": form})


@login_required
@require_POST
def study_archive(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    _visible(request.user, study)
    archived = request.POST.get("archived") == "1"
    services.study_set_archived(study=study, archived=archived, by=request.user)
    messages.success(request, "Study archived: it is now read-only." if archived else "Study unarchived.")
    return redirect("study-settings", pk=study.pk)


@login_required
def study_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The export page: choose level, format and gas window; download the CSV or its dictionary."""
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    return render(request, "patients/study_export.html", {
        "study": study, "role": role, "form": ExportForm(),
        "identifying": permissions.can_see_identifying(request.user, study),
    })


@login_required
def study_export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The CSV (streamed) or, with ``dictionary=1``, its data dictionary; 400 names a bad parameter."""
    study = get_object_or_404(Study, pk=pk)
    _visible(request.user, study)
    try:
        params = export.parse_export_params(request.GET, identifying=permissions.can_see_identifying(request.user,
                                                                                                      study))
        dictionary = export.parse_flag(request.GET, "dictionary")
    except export.ExportParamError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    if dictionary:
        return export.dictionary_http_response(study=study, params=params)
    return export.export_http_response(user=request.user, study=study, params=params,
                                       asgi=isinstance(request, ASGIRequest))


@login_required
def study_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: the study's audit trail, filtered by action, user and dates."""
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    if role not in permissions.ADMIN_ROLES:
        raise PermissionDenied("Only a study admin can read the audit trail.")
    form = AuditFilterForm(request.GET or None)
    error = ""
    try:
        events = audit.audit_events(study=study, query=request.GET)
    except audit.AuditFilterError as exc:
        error = str(exc)
        events = audit.audit_events(study=study, query={})
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "patients/study_audit.html", {
        "study": study, "role": role, "form": form, "page": page, "error": error, "query": query.urlencode(),
    }, status=400 if error else 200)


@login_required
def study_agreement(request: HttpRequest, pk: int) -> HttpResponse:
    """AI-vs-rater agreement for any rater (imported experts, clinicians' overrides ...)."""
    study = get_object_or_404(Study, pk=pk)
    role = _visible(request.user, study)
    error = ""
    report = None
    try:
        report = selectors.agreement_report(study=study, rater=request.GET.get("rater"), model=request.GET.get("model"))
    except selectors.AgreementQueryError as exc:
        error = str(exc)
    rows = []
    if report is not None:
        rows = [{"rater": r, "cells": cells, "total": sum(cells)} for r, cells in enumerate(report["confusion"])]
    return render(request, "patients/study_agreement.html", {
        "study": study, "role": role, "report": report, "error": error, "rows": rows,
        "raters": selectors.agreement_raters(study=study), "models": selectors.agreement_models(study=study),
    }, status=400 if error and (request.GET.get("rater") or request.GET.get("model")) else 200)


@login_required
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient.objects.select_related("study"), pk=pk)
    role = _visible(request.user, patient.study)
    can_write = role in permissions.WRITE_ROLES and not patient.study.archived
    exam_form = ExamForm(initial={"protocol": patient.study.protocol})
    clinical_form = ClinicalInfoForm()
    gas_form = BloodGasForm()
    if request.method == "POST":
        permissions.require_write(request.user, patient.study)
        kind = request.POST.get("kind")
        try:
            if kind == "exam":
                exam_form = ExamForm(request.POST)
                if exam_form.is_valid():
                    exam = services.exam_create(patient=patient, by=request.user, **exam_form.cleaned_data)
                    return redirect(exam)
            elif kind == "clinical":
                clinical_form = ClinicalInfoForm(request.POST)
                if clinical_form.is_valid():
                    services.clinical_info_create(patient=patient, by=request.user, **clinical_form.cleaned_data)
                    messages.success(request, "Clinical record saved.")
                    return redirect(patient)
            elif kind == "gas":
                gas_form = BloodGasForm(request.POST)
                if gas_form.is_valid():
                    services.blood_gas_create(patient=patient, by=request.user, **gas_form.cleaned_data)
                    messages.success(request, "Blood gas saved.")
                    return redirect(patient)
        except services.ServiceError as exc:
            messages.error(request, exc.message)
    identifying = permissions.can_see_identifying(request.user, patient.study)
    if identifying:
        audit.audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=patient.study, obj=patient,
                           changes={"fields": list(Patient.IDENTIFYING_FIELDS), "via": "patient page"})
    return render(request, "patients/patient_detail.html", {
        "patient": patient, "study": patient.study, "role": role, "can_write": can_write,
        "identifying": identifying,
        "clock": chrono.clock_for(user=request.user, patient=patient, shows_dates=identifying),
        "exams": selectors.exam_list(user=request.user, patient=patient).prefetch_related("clips"),
        "clinical_records": selectors.clinical_info_list(patient=patient),
        "blood_gases": selectors.blood_gas_list(patient=patient),
        "exam_form": exam_form, "clinical_form": clinical_form, "gas_form": gas_form,
    })


@login_required
def exam_detail(request: HttpRequest, pk: int) -> HttpResponse:
    exam = get_object_or_404(Exam.objects.select_related("patient__study"), pk=pk)
    role = _visible(request.user, exam.study)
    can_write = role in permissions.WRITE_ROLES and not exam.study.archived
    form = ClipUploadForm()
    if request.method == "POST":
        permissions.require_write(request.user, exam.study)
        form = ClipUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = services.clip_ingest(
                    exam=exam, upload=upload, zone=form.cleaned_data["zone"], by=request.user,
                    filename=upload.name or "", replace=form.cleaned_data["replace"],
                )
            except services.ServiceError as exc:
                messages.error(request, f"{upload.name}: {exc.message}")
            else:
                verb = "stored" if result.created else "was already stored"
                messages.success(request, f"{upload.name} {verb} as zone {result.clip.zone}.")
                return redirect(exam)
        else:
            messages.error(request, "Choose a zone and a file.")
    from patients.dashboards.selectors import chest_diagram_zones
    from scoring.selectors import exam_scores_payload

    protocol = get_protocol(exam.protocol)
    clips = {c.zone: c for c in exam.clips.all()}
    scores = exam_scores_payload(exam=exam)
    by_zone = {z["zone"]: z for z in scores["zones"]}
    overrides: dict[int, ScoreOverride] = {}
    for o in ScoreOverride.objects.filter(clip__exam=exam).select_related("by").order_by("clip_id", "-at", "-pk"):
        overrides.setdefault(o.clip_id, o)
    zones: list[dict[str, Any]] = [
        {"zone": z, "clip": clips.get(z.code), "score": by_zone.get(z.code),
         "override": overrides.get(clips[z.code].pk) if z.code in clips else None}
        for z in protocol.zones
    ]
    return render(request, "patients/exam_detail.html", {
        "exam": exam, "patient": exam.patient, "study": exam.study, "role": role, "can_write": can_write,
        "clock": chrono.clock_for(user=request.user, patient=exam.patient),
        "identifying": permissions.can_see_identifying(request.user, exam.study),
        "is_admin": role in permissions.ADMIN_ROLES and not exam.study.archived,
        "zones": zones, "protocol": protocol, "missing": [z["zone"].code for z in zones if z["clip"] is None],
        "form": form, "scores": scores, "progress_pct": round(100 * (scores["progress"] or 0)),
        "override_form": OverrideForm(),
        "chest_zones": chest_diagram_zones(exam=exam),
        "severity": _severity_context(exam),
    })


@login_required
@require_POST
def exam_rescore(request: HttpRequest, pk: int) -> HttpResponse:
    """Score the exam again with the active model (clinicians and admins); earlier results stay."""
    from scoring.services import scoring_job_request

    exam = get_object_or_404(Exam.objects.select_related("patient__study"), pk=pk)
    _visible(request.user, exam.study)
    permissions.require_write(request.user, exam.study)
    if not exam.clips.exists():
        messages.error(request, "This exam has no clips to score.")
    else:
        scoring_job_request(exam=exam, reason="rescore", by=request.user)
        messages.success(request, "Scoring queued.")
    return redirect(exam)


@login_required
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    from scoring.models import ScoringJob
    from scoring.services import scoring_job_retry

    job = get_object_or_404(ScoringJob.objects.select_related("exam__patient__study"), pk=pk)
    _visible(request.user, job.exam.patient.study)
    try:
        scoring_job_retry(job=job, by=request.user)
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Scoring queued again.")
    return redirect(job.exam)


@login_required
@require_POST
def study_rescore(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: rescore every exam with the active model version."""
    from scoring.services import study_rescore as rescore

    study = get_object_or_404(Study, pk=pk)
    _visible(request.user, study)
    jobs = rescore(study=study, by=request.user)
    messages.success(request, f"{len(jobs)} exams queued for rescoring with the active model.")
    return redirect(study)


def _clip_for(request: HttpRequest, pk: int) -> ZoneClip:
    clip = get_object_or_404(ZoneClip.objects.select_related("exam__patient__study"), pk=pk)
    _visible(request.user, clip.exam.study)
    return clip


@login_required
def clip_detail(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    return render(request, "patients/clip_detail.html", {
        "clip": clip, "exam": clip.exam, "patient": clip.exam.patient, "study": clip.exam.study,
        "clock": chrono.clock_for(user=request.user, patient=clip.exam.patient),
        "identifying": permissions.can_see_identifying(request.user, clip.exam.study),
    })


@login_required
def clip_original(request: HttpRequest, pk: int) -> FileResponse:
    """The stored file: the de-identified DICOM in de-identifying studies (anyone in the study),
    otherwise the untouched upload (clinicians and study admins only, audited)."""
    clip = _clip_for(request, pk)
    if clip.deidentified:
        return FileResponse(clip.file.open("rb"), as_attachment=True, filename=f"clip-{clip.pk}-deidentified.dcm")
    return _identifying_download(request, clip, clip.file, "original")


@login_required
def clip_source(request: HttpRequest, pk: int) -> FileResponse:
    """The untouched upload kept beside a de-identified clip (``keep_original`` studies)."""
    clip = _clip_for(request, pk)
    if not clip.source:
        raise Http404("this clip's original was not kept (the study does not keep originals)")
    return _identifying_download(request, clip, clip.source, "source")


def _identifying_download(request: HttpRequest, clip: ZoneClip, field: Any, which: str) -> FileResponse:
    study = clip.exam.study
    if not permissions.can_see_identifying(request.user, study):
        raise PermissionDenied("The original file may identify the patient: clinicians and study admins only.")
    audit.audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study, obj=clip,
                       changes={"download": which})
    name = clip.original_filename or f"clip-{clip.pk}.{clip.format}"
    return FileResponse(field.open("rb"), as_attachment=True, filename=name)


@login_required
@require_POST
def clip_override(request: HttpRequest, pk: int) -> HttpResponse:
    """A clinician or study admin sets the zone's score with a reason."""
    clip = _clip_for(request, pk)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Override: " + "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()))
    else:
        try:
            services.score_override_create(clip=clip, by=request.user, **form.cleaned_data)
        except services.ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Zone {clip.zone} set to {form.cleaned_data['score']} (override).")
    return redirect(clip.exam)


@login_required
def clip_frame(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One decoded frame as PNG (for previews and the cine viewer)."""
    from PIL import Image

    clip = _clip_for(request, pk)
    try:
        frame = selectors.clip_frame_for(clip=clip, user=request.user, index=index)
    except IndexError as exc:
        raise Http404(str(exc)) from None
    except selectors.FramesWithheld as exc:
        return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    response = HttpResponse(buf.getvalue(), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def clip_delete(request: HttpRequest, pk: int) -> HttpResponse:
    clip = _clip_for(request, pk)
    exam = clip.exam
    try:
        services.clip_delete(clip=clip, by=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect(exam)


def _severity_context(exam: Exam) -> dict[str, Any] | None:
    """Severity with its probabilities and the zones that drove it, strongest first."""
    from scoring.models import SEVERITY_ORDER
    from scoring.severity import severity_payload

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
