"""The study's site-model page: its model, the candidates with their figures, train / promote / roll
back (study admins; the services check and audit)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.studies.selectors import study_for
from scoring.models import ModelVersion
from scoring.selectors import model_card
from scoring.site import selectors, services


@login_required
def site_models_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Members read; the forms are shown to study admins."""
    study, role = study_for(user=request.user, pk=pk)
    listing = selectors.site_models(study=study)
    cards = {v.version: model_card(version=v) for v in ModelVersion.objects.filter(study=study)}
    candidates = [{**row, "card": cards.get(row["version"])} for row in listing["candidates"]]
    labelled = selectors.labelled_clips(study=study)
    rollback = [v.version for v in selectors.rollback_targets(study=study)
                if listing["active"] is None or v.version != listing["active"]["version"]]
    return render(request, "scoring/site_models.html", {
        "study": study, "role": role, "listing": listing, "candidates": candidates, "rollback_targets": rollback,
        "shipped": selectors.shipped_model_rows(study=study), "min_patients": services.MIN_SITE_PATIENTS, "clips": len(labelled),
        "patients": len({c.patient for c in labelled})})


@login_required
@require_POST
def site_models_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """``train``, ``promote``, ``rollback`` or ``choose`` (a shipped model); all but ``train`` need
    the confirmation box ticked."""
    if action != "train" and action not in services.MODEL_ACTIONS:
        raise Http404(f"no site-model action {action!r}")
    study, _role = study_for(user=request.user, pk=pk)
    version = request.POST.get("version", "")
    try:
        if action == "train":
            training = services.site_training_request(study=study, by=request.user,
                                                      include_shipped=request.POST.get("include_shipped") == "on")
            messages.success(request, f"Training {training.pk} queued; it runs after the clinicians' work.")
        elif request.POST.get("confirm") != "on":
            messages.error(request, "Tick the box to confirm: the study's AI readings change to the chosen model.")
        else:
            jobs = services.study_model_switch(study=study, action=action, version=version, by=request.user)
            messages.success(request, f"The study now scores with {version}; "
                                      f"{len(jobs)} exam{'s' if len(jobs) != 1 else ''} queued for rescoring.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "Only a study admin can do this.")
    return redirect("site-models", pk=study.pk)
