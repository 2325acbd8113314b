"""Study pages: the home page (study list), members, settings, archiving and the audit trail."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.audit.selectors import AuditFilterError, audit_events
from patients.studies import permissions, selectors, services
from patients.studies.forms import AuditFilterForm, MemberForm, StudyForm, StudySettingsForm
from patients.studies.invite import member_invite


@login_required
def home(request: HttpRequest) -> HttpResponse:
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = services.study_create(created_by=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect(study)
    return render(request, "studies/home.html", {
        "studies": selectors.study_list(user=request.user),
        "form": form,
        "can_create": permissions.can_create_study(request.user),
    })


@login_required
def study_members(request: HttpRequest, pk: int) -> HttpResponse:
    study, role = selectors.study_for(user=request.user, pk=pk)
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invited = member_invite(study=study, who=form.cleaned_data["username"], role=form.cleaned_data["role"],
                                    by=request.user, site_url=request.build_absolute_uri("/"))
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            user = invited.membership.user
            messages.success(request, f"{user.username} is now {invited.membership.get_role_display()}."
                             + (f" Their account was created and a link to choose a password was e-mailed to "
                                f"{user.email}." if invited.account_created else ""))
            return redirect("study-members", pk=study.pk)
    return render(request, "studies/study_members.html", {
        "study": study, "role": role, "members": selectors.membership_list(study=study), "form": form,
        "is_admin": role in permissions.ADMIN_ROLES and not study.archived,
    })


@login_required
@require_POST
def study_member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    study, _role = selectors.study_for(user=request.user, pk=pk)
    username = request.POST.get("username", "")
    try:
        services.membership_remove(study=study, username=username, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{username} was removed from the study.")
    return redirect("study-members", pk=study.pk)


@login_required
def study_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: description, de-identification and original-keeping, receiving from ultrasound
    machines (allowed AE titles, patient and zone mapping); archive / unarchive."""
    study, role = selectors.study_for(user=request.user, pk=pk)
    if role not in permissions.ADMIN_ROLES:
        raise PermissionDenied("Only a study admin can change the study's settings.")
    initial = {"description": study.description, "deidentify": study.deidentify, "keep_original": study.keep_original,
               "dicom_calling_aets": "\n".join(study.dicom_calling_aets or []),
               "dicom_patient_match": study.dicom_patient_match, "dicom_zone_tag": study.dicom_zone_tag,
               "dicom_zone_pattern": study.dicom_zone_pattern}
    form = StudySettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.study_update(study=study, by=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("study-settings", pk=study.pk)
    return render(request, "studies/study_settings.html", {"study": study, "role": role, "form": form,
                                                          "dicom_ae_title": settings.DICOM_AE_TITLE,
                                                          "dicom_port": settings.DICOM_PORT})


@login_required
@require_POST
def study_archive(request: HttpRequest, pk: int) -> HttpResponse:
    """Archive (after the admin typed the study's name: the confirmation step) or unarchive."""
    study, _role = selectors.study_for(user=request.user, pk=pk)
    archived = request.POST.get("archived") == "1"
    typed = request.POST.get("confirm_name", "").strip()
    if archived and typed != study.name:
        messages.error(request, f"Not archived: type the study's name ({study.name}) to confirm archiving it"
                                + (f"; {typed!r} is not its name." if typed else "."))
        return redirect("study-settings", pk=study.pk)
    services.study_set_archived(study=study, archived=archived, by=request.user)
    messages.success(request, "Study archived: it is now read-only." if archived else "Study unarchived.")
    return redirect("study-settings", pk=study.pk)


@login_required
def study_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: the study's audit trail, filtered by action, user and dates."""
    study, role = selectors.study_for(user=request.user, pk=pk)
    if role not in permissions.ADMIN_ROLES:
        raise PermissionDenied("Only a study admin can read the audit trail.")
    form = AuditFilterForm(request.GET or None)
    error = ""
    try:
        events = audit_events(study=study, query=request.GET)
    except AuditFilterError as exc:
        error = str(exc)
        events = audit_events(study=study, query={})
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "studies/study_audit.html", {
        "study": study, "role": role, "form": form, "page": page, "error": error, "query": query.urlencode(),
    }, status=400 if error else 200)
