"""Record pages: a study's patient list (the study page) and the patient page."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.records import chrono, selectors, services
from patients.records.forms import BloodGasForm, ClinicalInfoForm, ExamForm, PatientForm
from patients.records.models import Patient
from patients.studies import permissions
from patients.studies.selectors import study_for


@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study, role = study_for(user=request.user, pk=pk)
    form = PatientForm(request.POST or None)
    if request.method == "POST":
        permissions.require_write(request.user, study)
        if form.is_valid():
            try:
                patient = services.patient_create(study=study, by=request.user, **form.cleaned_data)
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect(patient)
    patients = list(selectors.patient_list(user=request.user, study=study))
    identifying = permissions.can_see_identifying(request.user, study)
    if identifying and patients:
        audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study,
                     object_type="patient", object_id="list", row_count=len(patients),
                     changes={"patients": [p.pk for p in patients], "via": "study page"})
    return render(request, "records/study_detail.html", {
        "study": study, "role": role, "form": form, "patients": patients,
        "can_write": role in permissions.WRITE_ROLES and not study.archived,
        "is_admin": role in permissions.ADMIN_ROLES,
        "identifying": identifying,
    })


@login_required
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient, role = selectors.patient_for(user=request.user, pk=pk)
    page_forms: dict[str, Any] = {"exam_form": ExamForm(initial={"protocol": patient.study.protocol}),
                                  "clinical_form": ClinicalInfoForm(), "gas_form": BloodGasForm()}
    if request.method == "POST":
        permissions.require_write(request.user, patient.study)
        try:
            done = _record_post(request, patient, page_forms)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            if done is not None:
                return done
    identifying = permissions.can_see_identifying(request.user, patient.study)
    if identifying:
        audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=patient.study, obj=patient,
                     changes={"fields": list(Patient.IDENTIFYING_FIELDS), "via": "patient page"})
    return render(request, "records/patient_detail.html", {
        "patient": patient, "study": patient.study, "role": role,
        "can_write": role in permissions.WRITE_ROLES and not patient.study.archived,
        "identifying": identifying,
        "clock": chrono.clock_for(user=request.user, patient=patient, shows_dates=identifying),
        "exams": selectors.exam_list(user=request.user, patient=patient).prefetch_related("clips"),
        "clinical_records": selectors.clinical_info_list(patient=patient),
        "blood_gases": selectors.blood_gas_list(patient=patient),
        **page_forms,
    })


# kind -> (the form's name in the page context, the form, the service that saves it, the message)
_RECORD_FORMS: dict[str, tuple[str, type[forms.ModelForm[Any]], Callable[..., Any], str]] = {
    "clinical": ("clinical_form", ClinicalInfoForm, services.clinical_info_create, "Clinical record saved."),
    "gas": ("gas_form", BloodGasForm, services.blood_gas_create, "Blood gas saved."),
}


def _record_post(request: HttpRequest, patient: Patient, context: dict[str, Any]) -> HttpResponse | None:
    """One of the patient page's forms (``kind``: exam, clinical or gas): the redirect once saved,
    else None with the bound form left in ``context`` to show its errors."""
    kind = request.POST.get("kind")
    if kind == "exam":
        context["exam_form"] = exam_form = ExamForm(request.POST)
        if exam_form.is_valid():
            return redirect(services.exam_create(patient=patient, by=request.user, **exam_form.cleaned_data))
    elif kind in _RECORD_FORMS:
        name, form_class, create, saved = _RECORD_FORMS[kind]
        context[name] = form = form_class(request.POST)
        if form.is_valid():
            create(patient=patient, by=request.user, **form.cleaned_data)
            messages.success(request, saved)
            return redirect(patient)
    return None
