"""Scoring pages: the model cards."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scoring.selectors import model_cards


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    """Every registered scoring model with its validation: any signed-in user may read it, since
    everyone who sees a score should be able to see how far it was checked."""
    return render(request, "scoring/models.html", {"cards": model_cards()})
