"""Edit and delete pages for patients, exams, clinical records and blood gases.

Each edit page shows the record's form filled in and saves through the record's service (which
checks the role and audits old and new values); each delete page is a confirmation step that says
what goes with the record, and deletes only on its POST. Clinicians and study admins of an
unarchived study only: researchers get the 403 page, outsiders the 404 page.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.records import selectors, services
from patients.records.forms import BloodGasForm, ClinicalInfoForm, ExamForm, PatientForm
from patients.records.models import BloodGas, ClinicalInfo, GasUnit, Patient
from patients.records.units import KPA_TO_MMHG
from patients.studies import permissions
from patients.studies.models import Study

KINDS = ("patient", "exam", "clinical", "gas")
_LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what an <input type="datetime-local"> shows


@dataclass(frozen=True)
class _Target:
    """A record to edit or delete: the object, its study, its patient, what to call it."""

    obj: Any  # Patient | Exam | ClinicalInfo | BloodGas
    study: Study
    patient: Patient
    label: str


def _target(request: HttpRequest, kind: str, pk: int) -> _Target:
    """The record of ``kind`` (patient, exam, clinical, gas); 404 for outsiders, 403 for readers."""
    if kind not in KINDS:
        raise Http404(f"no record kind {kind!r}")
    if kind == "patient":
        patient, _role = selectors.patient_for(user=request.user, pk=pk)
        target = _Target(patient, patient.study, patient, f"patient {patient.code}")
    elif kind == "exam":
        exam, _role = selectors.exam_for(user=request.user, pk=pk)
        target = _Target(exam, exam.study, exam.patient, f"the exam of {exam.patient.code} ({exam.protocol})")
    else:
        obj: ClinicalInfo | BloodGas = (
            get_object_or_404(ClinicalInfo.objects.select_related("patient__study"), pk=pk) if kind == "clinical"
            else get_object_or_404(BloodGas.objects.select_related("patient__study"), pk=pk))
        permissions.role_or_404(request.user, obj.patient.study)
        what = "clinical record" if kind == "clinical" else "blood gas"
        target = _Target(obj, obj.patient.study, obj.patient, f"the {what} of {obj.patient.code}")
    permissions.require_write(request.user, target.study)
    return target


def _local(value: Any) -> str:
    return timezone.localtime(value).strftime(_LOCAL_INPUT) if value else ""


def _form(kind: str, obj: Any, data: Any) -> forms.BaseForm:
    """The record's form, bound to ``data`` (a POST) or filled from the record. ModelForms get a copy
    of the record: validation writes into its instance, and the service must see the old values."""
    if kind == "patient":
        return PatientForm(data, instance=copy.copy(obj))
    if kind == "clinical":
        return ClinicalInfoForm(data, instance=copy.copy(obj), initial={"recorded_at": _local(obj.recorded_at)})
    if kind == "exam":
        fields = {name: getattr(obj, name) for name in services.EXAM_FIELDS}
        return ExamForm(data, initial={**fields, "acquired_at": _local(obj.acquired_at)})
    scale = KPA_TO_MMHG if obj.unit_entered == GasUnit.KPA else 1.0
    return BloodGasForm(data, instance=copy.copy(obj), initial={
        "sampled_at": _local(obj.sampled_at), "unit": obj.unit_entered,
        "paco2": None if obj.paco2_mmhg is None else round(obj.paco2_mmhg / scale, 2),
        "pao2": None if obj.pao2_mmhg is None else round(obj.pao2_mmhg / scale, 2)})


def _save(kind: str, obj: Any, by: Any, data: dict[str, Any]) -> None:
    savers: dict[str, Callable[..., Any]] = {
        "patient": lambda: services.patient_update(patient=obj, by=by, **data),
        "exam": lambda: services.exam_update(exam=obj, by=by, **data),
        "clinical": lambda: services.clinical_info_update(record=obj, by=by, **data),
        "gas": lambda: services.blood_gas_update(gas=obj, by=by, **data),
    }
    savers[kind]()


def _done(kind: str, target: _Target) -> str:
    return str(target.obj.get_absolute_url()) if kind in ("patient", "exam") else str(target.patient.get_absolute_url())


@login_required
def record_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """The edit page of a patient, an exam, a clinical record or a blood gas."""
    target = _target(request, kind, pk)
    form = _form(kind, target.obj, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            _save(kind, target.obj, request.user, dict(form.cleaned_data))
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved the changes to {target.label}.")
            return redirect(_done(kind, target))
    return render(request, "records/edit.html", {"target": target, "form": form, "kind": kind,
                                                 "study": target.study, "patient": target.patient,
                                                 "back": _done(kind, target)}, status=400 if form.errors else 200)


def _consequences(kind: str, obj: Any) -> list[str]:
    """What goes with the record when it is deleted, in words."""
    if kind == "patient":
        exams = obj.exams.count()
        return [f"{exams} exam{'s' if exams != 1 else ''} with their clips, scores, readings and sign-offs",
                f"{obj.clinical_records.count()} clinical record(s) and {obj.blood_gases.count()} blood gas(es)"]
    if kind == "exam":
        return [f"{obj.clips.count()} clip(s) with their files, the AI's scores, the clinicians' readings and "
                "sign-offs"]
    return []


@login_required
def record_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """The confirmation page of a deletion (GET), and the deletion (POST), audited by the service."""
    target = _target(request, kind, pk)
    if request.method == "POST":
        obj: Any = target.obj
        if kind == "patient":
            services.patient_delete(patient=obj, by=request.user)
        elif kind == "exam":
            services.exam_delete(exam=obj, by=request.user)
        else:
            services.record_delete(record=obj, by=request.user)
        messages.success(request, f"Deleted {target.label}.")
        return redirect(target.study.get_absolute_url() if kind == "patient" else target.patient.get_absolute_url())
    return render(request, "records/confirm_delete.html", {
        "target": target, "kind": kind, "study": target.study, "patient": target.patient,
        "consequences": _consequences(kind, target.obj), "back": _done(kind, target)})


