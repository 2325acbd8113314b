"""Reading pages: the forms of the exam and agreement pages, posted (reading, override, adjudication,
sign, blind read), each calling its service and going back to the page with a message; and the
study's review worklist."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.imaging.selectors import clip_for
from patients.readings import services
from patients.readings.forms import AdjudicationForm, OverrideForm, ReadingForm
from patients.readings.models import FINDINGS
from patients.readings.worklist import URGENT, worklist_page
from patients.records.selectors import exam_for
from patients.studies import permissions
from patients.studies.selectors import study_for


def _form_errors(form: Any) -> str:
    return "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items())


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """To the page named by ``next`` when it is one of ours, else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _run(request: HttpRequest, call: Callable[[], Any], success: str) -> None:
    try:
        call()
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)


@login_required
@require_POST
def clip_read(request: HttpRequest, pk: int) -> HttpResponse:
    """A clinician or study admin reads a zone from the exam page: score, findings, comment."""
    clip, _role = clip_for(user=request.user, pk=pk)
    form = ReadingForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Reading: " + _form_errors(form))
    else:
        data = form.cleaned_data
        findings = {key: key in data["findings"] for key in FINDINGS}
        _run(request, lambda: services.reading_create(clip=clip, by=request.user, score=data["score"],
                                                      findings=findings, comment=data["comment"]),
             f"Zone {clip.zone} read: {data['score']}.")
    return _back(request, clip.exam.get_absolute_url() + f"#zone-{clip.zone}")


@login_required
@require_POST
def clip_override(request: HttpRequest, pk: int) -> HttpResponse:
    """A clinician or study admin sets the zone's score with a reason (a clinician reading)."""
    clip, _role = clip_for(user=request.user, pk=pk)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Override: " + _form_errors(form))
    else:
        _run(request, lambda: services.score_override_create(clip=clip, by=request.user, **form.cleaned_data),
             f"Zone {clip.zone} set to {form.cleaned_data['score']} (override).")
    return redirect(clip.exam)


@login_required
@require_POST
def clip_adjudicate(request: HttpRequest, pk: int) -> HttpResponse:
    """A study admin settles a zone whose clinicians disagree; back to ``next`` or the exam."""
    clip, _role = clip_for(user=request.user, pk=pk)
    form = AdjudicationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Adjudication: " + _form_errors(form))
    else:
        _run(request, lambda: services.reading_adjudicate(clip=clip, by=request.user, **form.cleaned_data),
             f"Zone {clip.zone} adjudicated: {form.cleaned_data['score']}.")
    return _back(request, clip.exam.get_absolute_url())


@login_required
@require_POST
def exam_sign(request: HttpRequest, pk: int) -> HttpResponse:
    exam, _role = exam_for(user=request.user, pk=pk)
    _run(request, lambda: services.exam_sign(exam=exam, by=request.user), "Exam signed.")
    return redirect(exam)


@login_required
@require_POST
def exam_blind_start(request: HttpRequest, pk: int) -> HttpResponse:
    exam, _role = exam_for(user=request.user, pk=pk)
    _run(request, lambda: services.blind_read_start(exam=exam, by=request.user),
         "Blind read started: the AI's and other readers' scores are hidden until you submit.")
    return redirect(exam)


@login_required
@require_POST
def exam_blind_submit(request: HttpRequest, pk: int) -> HttpResponse:
    exam, _role = exam_for(user=request.user, pk=pk)
    _run(request, lambda: services.blind_read_submit(exam=exam, by=request.user), "Blind read submitted.")
    return redirect(exam)


@login_required
def study_worklist(request: HttpRequest, pk: int) -> HttpResponse:
    """The study's exams waiting for review, each with why it is where it is: most urgent first, or
    in another order chosen with ``?order=`` (``label-more``: most informative first)."""
    study, role = study_for(user=request.user, pk=pk)
    return render(request, "readings/worklist.html", {
        "study": study, "role": role,
        **worklist_page(study=study, user=request.user, order=request.GET.get("order", URGENT)),
        "can_review": role in permissions.WRITE_ROLES and not study.archived,
        "identifying": permissions.can_see_identifying(request.user, study),
    })
