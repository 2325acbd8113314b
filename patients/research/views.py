"""Research pages: the cohort export and AI-vs-rater agreement."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse

from patients.readings.forms import AdjudicationForm
from patients.readings.selectors import disagreements, open_blind_exams
from patients.records import chrono
from patients.research import agreement
from patients.research.export.params import ExportParamError, parse_export_params, parse_flag
from patients.research.export.stream import dictionary_http_response, export_http_response
from patients.research.forms import ExportForm
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.selectors import study_for


@login_required
def study_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The export page: choose level, format and gas window; download the CSV or its dictionary."""
    study, role = study_for(user=request.user, pk=pk)
    return _export_page(request, study, role, ExportForm())


def _export_page(request: HttpRequest, study: Study, role: str, form: ExportForm, *,
                 error: str = "") -> HttpResponse:
    """The export page; with ``error`` (a refused download) answered 400 with the form as it was sent."""
    return render(request, "research/study_export.html", {
        "study": study, "role": role, "form": form, "error": error,
        "identifying": permissions.can_see_identifying(request.user, study),
    }, status=400 if error else 200)


@login_required
def study_export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The CSV (streamed) or, with ``dictionary=1``, its data dictionary; 400 names a bad parameter."""
    study, role = study_for(user=request.user, pk=pk)
    try:
        params = parse_export_params(request.GET, identifying=permissions.can_see_identifying(request.user, study))
        dictionary = parse_flag(request.GET, "dictionary")
    except ExportParamError as exc:
        # The page again, in the site's layout, with the form as sent and what was wrong with it.
        return _export_page(request, study, role, ExportForm(request.GET), error=str(exc))
    if dictionary:
        return dictionary_http_response(study=study, params=params)
    return export_http_response(user=request.user, study=study, params=params, asgi=isinstance(request, ASGIRequest))


def _labelled(rows: list[dict[str, Any]], study: Study, user: Any) -> list[dict[str, Any]]:
    """Disagreements with the exam's time as the user may see it (``label``; ``acquired_at`` dropped
    for researchers), and the exam page's address."""
    dates = permissions.can_see_identifying(user, study)
    clocks = chrono.study_clocks(study_id=study.pk, shows_dates=dates)
    for row in rows:
        row["label"] = clocks[row["patient"]].label(row["acquired_at"])
        row["exam_url"] = reverse("exam-detail", args=[row["exam"]])
        if not dates:
            row["acquired_at"] = None
    return rows


@login_required
def study_agreement(request: HttpRequest, pk: int) -> HttpResponse:
    """AI-vs-rater agreement for any rater (imported experts, clinicians' overrides ...)."""
    study, role = study_for(user=request.user, pk=pk)
    error = ""
    report = None
    try:
        report = agreement.agreement_report(study=study, rater=request.GET.get("rater"),
                                            model=request.GET.get("model"), user=request.user)
    except agreement.AgreementQueryError as exc:
        error = str(exc)
    rows = []
    if report is not None:
        rows = [{"rater": r, "cells": cells, "total": sum(cells)} for r, cells in enumerate(report["confusion"])]
    blind = open_blind_exams(user=request.user)
    return render(request, "research/study_agreement.html", {
        "study": study, "role": role, "report": report, "error": error, "rows": rows,
        "raters": agreement.agreement_raters(study=study, user=request.user),
        "models": agreement.agreement_models(study=study),
        "pairs": report["pairs"] if report else [],
        "disagreements": _labelled(disagreements(study=study, exclude_exams=blind), study, request.user),
        "can_adjudicate": role in permissions.ADMIN_ROLES and not study.archived,
        "adjudication_form": AdjudicationForm(),
    }, status=400 if error and (request.GET.get("rater") or request.GET.get("model")) else 200)
