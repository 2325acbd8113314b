"""The study inbox page (``/studies/<id>/inbox/``): received instances the study's rules could not
file, each with what the sender said and one form to assign patient, exam and zone, or to discard it.
Clinicians and study admins only (researchers 403, outsiders 404)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.receiving import inbox, inbox_selectors
from patients.receiving.models import InboxItem
from patients.records.models import Exam, Patient
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import get_protocol
from patients.studies.selectors import study_for


class TargetForm(forms.Form):
    """Patient and exam (an exam id, or ``new`` with its date and time)."""

    patient = forms.IntegerField()
    exam = forms.CharField(required=False, help_text="an exam id, or 'new'")
    exam_acquired_at = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    replace = forms.BooleanField(required=False)


class AssignForm(TargetForm):
    zone = forms.CharField(max_length=8)


@dataclass
class SeriesGroup:
    """The waiting items of one Series Instance UID, as the page shows them together."""

    series: str
    items: list[InboxItem] = field(default_factory=list)

    @property
    def first(self) -> InboxItem:
        return self.items[0]


def series_groups(items: list[InboxItem]) -> list[SeriesGroup]:
    groups: dict[str, SeriesGroup] = {}
    for item in items:
        key = item.series_instance_uid or f"item-{item.pk}"
        groups.setdefault(key, SeriesGroup(item.series_instance_uid)).items.append(item)
    return list(groups.values())


def _writer_study(request: HttpRequest, pk: int) -> Study:
    study, role = study_for(user=request.user, pk=pk)
    if role not in permissions.WRITE_ROLES:
        raise PermissionDenied("Researchers do not see received instances before they are filed.")
    return study


def _writer_item(request: HttpRequest, pk: int) -> InboxItem:
    item = inbox_selectors.inbox_item_for(user=request.user, pk=pk)
    _writer_study(request, item.study_id)
    return item


@login_required
def study_inbox(request: HttpRequest, pk: int) -> HttpResponse:
    """The waiting items, grouped by series, each with its assignment form."""
    study = _writer_study(request, pk)
    patients, exams = inbox_selectors.assign_choices(study=study)
    items = list(inbox_selectors.inbox_waiting(study=study))
    return render(request, "receiving/inbox.html", {
        "study": study, "items": items, "groups": series_groups(items), "patients": patients, "exams": exams,
        "zones": get_protocol(study.protocol).codes, "can_write": not study.archived,
    })


def _targets(item: InboxItem, data: dict[str, Any]) -> tuple[Patient, Exam | None, dt.datetime | None]:
    patient = Patient.objects.filter(pk=data["patient"], study_id=item.study_id).first()
    if patient is None:
        raise ServiceError("choose a patient of this study", code="bad_patient")
    choice = str(data.get("exam") or "new")
    exam = None
    if choice != "new":
        exam = Exam.objects.filter(pk=int(choice) if choice.isdigit() else 0, patient=patient).first()
        if exam is None:
            raise ServiceError(f"the chosen exam is not one of {patient.code}'s exams", code="bad_exam")
    when = data.get("exam_acquired_at")
    if isinstance(when, dt.datetime) and timezone.is_naive(when):
        when = timezone.make_aware(when)
    return patient, exam, when if isinstance(when, dt.datetime) else None


@login_required
@require_POST
def inbox_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign one waiting item: the clip goes through the upload's ingest."""
    item = _writer_item(request, pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_problem(form))
        return redirect(item)
    try:
        patient, exam, when = _targets(item, form.cleaned_data)
        clip = inbox.inbox_item_assign(item=item, patient=patient, exam=exam, exam_acquired_at=when,
                                       zone=form.cleaned_data["zone"], replace=form.cleaned_data["replace"],
                                       by=request.user)
    except ServiceError as exc:
        messages.error(request, f"Instance {item.sop_instance_uid or item.pk}: {exc.message}")
        return redirect(item)
    messages.success(request, f"Filed as zone {clip.zone} of {patient.code}'s exam: checking the file…")
    return redirect(item)


def _form_problem(form: forms.Form) -> str:
    return "Assign: " + "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items())


@login_required
@require_POST
def inbox_assign_many(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign the chosen items of one series on the page to one patient and exam, each in its zone
    (``zone-<item id>``): all of them or none."""
    study = _writer_study(request, pk)
    form = TargetForm(request.POST)
    ids = {int(x) for x in request.POST.getlist("items") if x.isdigit()}
    items = list(InboxItem.objects.filter(study=study, pk__in=ids).select_related("study").order_by("pk"))
    if not form.is_valid():
        messages.error(request, _form_problem(form))
        return redirect("study-inbox", study.pk)
    try:
        if not items:
            raise ServiceError("tick at least one received instance", code="no_items")
        patient, exam, when = _targets(items[0], form.cleaned_data)
        clips = inbox.inbox_items_assign(items=items, patient=patient, exam=exam, exam_acquired_at=when,
                                         zones={i.pk: request.POST.get(f"zone-{i.pk}", "") for i in items},
                                         replace=form.cleaned_data["replace"], by=request.user)
    except ServiceError as exc:
        messages.error(request, f"Nothing was filed: {exc.message}")
        return redirect("study-inbox", study.pk)
    zones = ", ".join(c.zone for c in clips)
    messages.success(request, f"Filed as zone{'s' if len(clips) > 1 else ''} {zones} of {patient.code}'s exam: "
                              "checking the files…")
    return redirect("study-inbox", study.pk)


@login_required
@require_POST
def inbox_discard(request: HttpRequest, pk: int) -> HttpResponse:
    item = _writer_item(request, pk)
    try:
        inbox.inbox_item_discard(item=item, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Instance discarded; its file was removed.")
    return redirect(item)
