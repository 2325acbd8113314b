"""Report API: ``GET /api/v1/exams/<id>/report/?format=pdf|sr|fhir`` (the exam page links to it).

The query parameter is ``format``, which DRF would otherwise take for its renderer choice, so
this view negotiates nothing: its files are plain responses, its errors JSON.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from patients.records.selectors import exam_for
from patients.reports.services import FORMATS, report_export


class ExamReportAPI(APIView):
    """The exam's report: a one-page PDF, a DICOM SR (TID 1500) or a FHIR R4 Bundle. Whoever may
    read the exam may download it (404 otherwise); researchers get the pseudonymous report. Every
    download is audited."""

    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), default="pdf",
                                     description="pdf (application/pdf), sr (application/dicom) or fhir "
                                                 "(application/fhir+json)")],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "application/dicom"): OpenApiTypes.BINARY,
                   (200, "application/fhir+json"): OpenApiTypes.OBJECT,
                   400: OpenApiResponse(description="unknown format: {error, code: bad_format}")})
    def get(self, request: Request, pk: int) -> Any:
        exam, _role = exam_for(user=request.user, pk=pk)
        result = report_export(exam=exam, user=request.user, fmt=request.query_params.get("format", "pdf"))
        response = HttpResponse(result.content, content_type=result.content_type)
        response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        return response


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()

urlpatterns = [
    path("exams/<int:pk>/report/", ExamReportAPI.as_view(), name="api-exam-report"),
]
