"""Reading pages: the override form of the exam page, posted."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from lusweb.errors import ServiceError
from patients.imaging.selectors import clip_for
from patients.readings import services
from patients.readings.forms import OverrideForm


@login_required
@require_POST
def clip_override(request: HttpRequest, pk: int) -> HttpResponse:
    """A clinician or study admin sets the zone's score with a reason."""
    clip, _role = clip_for(user=request.user, pk=pk)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Override: " + "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()))
    else:
        try:
            services.score_override_create(clip=clip, by=request.user, **form.cleaned_data)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Zone {clip.zone} set to {form.cleaned_data['score']} (override).")
    return redirect(clip.exam)
