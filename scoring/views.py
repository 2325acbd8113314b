"""Scoring pages: the model cards, and the buttons that (re)queue scoring."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.records.selectors import exam_for
from patients.studies import permissions
from patients.studies.selectors import study_for
from scoring import services
from scoring.models import ScoringJob
from scoring.selectors import model_cards


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    """Every registered scoring model with its validation: any signed-in user may read it, since
    everyone who sees a score should be able to see how far it was checked."""
    return render(request, "scoring/models.html", {"cards": model_cards(user=request.user)})


@login_required
@require_POST
def exam_rescore(request: HttpRequest, pk: int) -> HttpResponse:
    """Score the exam again with the active model (clinicians and admins); earlier results stay."""
    exam, _role = exam_for(user=request.user, pk=pk)
    permissions.require_write(request.user, exam.study)
    if not exam.clips.exists():
        messages.error(request, "This exam has no clips to score.")
    else:
        services.scoring_job_request(exam=exam, reason="rescore", by=request.user)
        messages.success(request, "Scoring queued.")
    return redirect(exam)


@login_required
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ScoringJob.objects.select_related("exam__patient__study"), pk=pk)
    permissions.role_or_404(request.user, job.exam.patient.study)
    try:
        services.scoring_job_retry(job=job, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Scoring queued again.")
    return redirect(job.exam)


@login_required
@require_POST
def study_rescore(request: HttpRequest, pk: int) -> HttpResponse:
    """Study admins: rescore every exam with the active model version."""
    study, _role = study_for(user=request.user, pk=pk)
    jobs = services.study_rescore(study=study, by=request.user)
    messages.success(request, f"{len(jobs)} exams queued for rescoring with the active model.")
    return redirect(study)
