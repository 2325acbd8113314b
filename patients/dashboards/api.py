"""Dashboard API (``/api/v1/...``): timelines and correlations, and the exam resource as served,
with its scores and severity (records' exam resource extended)."""
from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from patients.dashboards import stats
from patients.dashboards.correlation import correlation
from patients.dashboards.timeline import patient_timeline
from patients.records import api as records_api
from patients.records.models import Exam
from patients.records.selectors import patient_for
from patients.studies.selectors import study_for
from scoring.selectors import exam_scores_payload
from scoring.severity import severity_payload

CORRELATION_PARAMETERS = [
    OpenApiParameter("score", str, enum=list(stats.SCORES), default="luss",
                     description="luss (global LUS score), mean (mean zone score), severity (ordinal 0 mild .. "
                                 "3 critical) or severe_prob (P(severe or critical))"),
    OpenApiParameter("gas", str, enum=list(stats.GASES), default="paco2", description="paco2, pao2 or pf (PaO2/FiO2)"),
    OpenApiParameter("window_hours", float, default=stats.DEFAULT_WINDOW_HOURS,
                     description="pair each exam with the nearest gas within +- this many hours (ties: earlier gas)"),
    OpenApiParameter("unit", str, enum=list(stats.UNITS), default="mmHg",
                     description="mmHg or kPa for PaCO2/PaO2; P/F is always mmHg"),
]


def _params(request: Request) -> stats.CorrelationParams:
    try:
        return stats.parse_correlation_params(request.query_params)
    except ValueError as exc:
        raise ValidationError({"detail": str(exc)}) from None


class PatientTimelineAPI(APIView):
    """A patient's exams (global and zone scores, severity) and blood gases over time."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        patient, _ = patient_for(user=request.user, pk=pk)
        return Response(patient_timeline(patient=patient, user=request.user))


class StudyCorrelationAPI(APIView):
    """Score vs blood gas over every exam of a study: Pearson (Fisher CI), Spearman, regression."""

    @extend_schema(parameters=CORRELATION_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        params = _params(request)
        study, _ = study_for(user=request.user, pk=pk)
        return Response(correlation(params=params, user=request.user, study=study))


class PatientCorrelationAPI(APIView):
    """Score vs blood gas over one patient's exams."""

    @extend_schema(parameters=CORRELATION_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        params = _params(request)
        patient, _ = patient_for(user=request.user, pk=pk)
        return Response(correlation(params=params, user=request.user, patient=patient))


# An exam with its current ``scores`` and newest ``severity``. (No docstring: the schema would take
# it as the description of the Exam component.)
@extend_schema_serializer(component_name="Exam")
class ExamWithScoresSerializer(records_api.ExamSerializer):
    scores = serializers.SerializerMethodField()
    severity = serializers.SerializerMethodField()

    class Meta(records_api.ExamSerializer.Meta):
        fields = ["id", "patient", "acquired_at", "protocol", "device", "probe", "operator", "notes",
                  "created_at", "zones", "missing_zones", "clips", "scores", "severity", "page_url"]

    def get_scores(self, obj: Exam) -> dict[str, Any]:
        return exam_scores_payload(exam=obj)

    def get_severity(self, obj: Exam) -> dict[str, Any] | None:
        return severity_payload(exam=obj)


class ExamViewSet(records_api.ExamViewSet):
    serializer_class = ExamWithScoresSerializer


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("exams", ExamViewSet, basename="exam")

urlpatterns = [
    path("patients/<int:pk>/timeline/", PatientTimelineAPI.as_view(), name="api-patient-timeline"),
    path("patients/<int:pk>/correlation/", PatientCorrelationAPI.as_view(), name="api-patient-correlation"),
    path("studies/<int:pk>/correlation/", StudyCorrelationAPI.as_view(), name="api-study-correlation"),
]
