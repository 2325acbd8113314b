"""Research API: the cohort export (CSV) and AI-vs-rater agreement of a study."""
from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponseBase
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from lusweb.errors import ServiceError
from patients.research import agreement
from patients.research.export import params as export_params
from patients.research.export.stream import dictionary_http_response, export_http_response
from patients.studies import permissions


class AgreementSerializer(serializers.Serializer[Any]):
    study = serializers.IntegerField()
    rater = serializers.CharField()
    model = serializers.CharField()
    raters = serializers.ListField(child=serializers.CharField())
    models = serializers.ListField(child=serializers.CharField())
    n = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    within1 = serializers.FloatField(allow_null=True)
    qwk = serializers.FloatField(allow_null=True)
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    everyone = serializers.ListField(child=serializers.CharField())
    pairs = serializers.ListField(child=serializers.DictField())


class _CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b"" if data is None else str(data).encode()


class _IgnoreFormatParam(DefaultContentNegotiation):
    """``?format=long|wide`` names the export's layout here, not DRF's renderer: errors stay JSON."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class StudyExportView(APIView):
    """``GET /api/v1/studies/<id>/export/?level=zone|exam|patient&format=long|wide`` streams a CSV.

    Optional ``model`` (a model version) and ``window_hours`` (blood-gas pairing, default 12);
    ``dictionary=1`` returns the data dictionary instead. Any member may export; researchers
    never receive calendar dates or the study's own patient codes. Every export is audited.
    """

    renderer_classes = [JSONRenderer, _CsvRenderer]
    content_negotiation_class = _IgnoreFormatParam

    @extend_schema(
        parameters=[
            OpenApiParameter("level", str, enum=list(export_params.LEVELS), default="zone"),
            OpenApiParameter("format", str, enum=list(export_params.FORMATS), default="long"),
            OpenApiParameter("model", str, description="model version (default: the active one per exam)"),
            OpenApiParameter("window_hours", float, default=export_params.DEFAULT_WINDOW_HOURS),
            OpenApiParameter("dictionary", bool, description="1: the data dictionary (column, type, unit, meaning)"),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        study, _role = permissions.visible_study(request.user, pk)
        try:
            params = export_params.parse_export_params(
                request.query_params, identifying=permissions.can_see_identifying(request.user, study))
            dictionary = export_params.parse_flag(request.query_params, "dictionary")
        except export_params.ExportParamError as exc:
            raise ServiceError(str(exc), code="bad_parameter") from exc
        if dictionary:
            return dictionary_http_response(study=study, params=params)
        return export_http_response(user=request.user, study=study, params=params,
                                    asgi=isinstance(request._request, ASGIRequest))


class StudyAgreementView(APIView):
    """``GET /api/v1/studies/<id>/agreement/?rater=<rater>&model=<version>``: AI-vs-rater agreement
    (accuracy, within-1, quadratic weighted kappa, 4x4 confusion [rater][model], n), and ``pairs``:
    the same figures for every pair of raters (``a``, ``b``, confusion [a][b]) - imported raters,
    clinicians, the AI's readings (``model:<version>``), all clinicians and the score of record."""

    @extend_schema(parameters=[OpenApiParameter("rater", str), OpenApiParameter("model", str)],
                   responses=AgreementSerializer)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        try:
            report = agreement.agreement_report(study=study, rater=request.query_params.get("rater"),
                                                model=request.query_params.get("model"), user=request.user)
        except agreement.AgreementQueryError as exc:
            raise ServiceError(str(exc), code="bad_parameter") from exc
        return Response(report)


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()

urlpatterns = [
    path("studies/<int:pk>/export/", StudyExportView.as_view(), name="api-study-export"),
    path("studies/<int:pk>/agreement/", StudyAgreementView.as_view(), name="api-study-agreement"),
]
