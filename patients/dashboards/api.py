"""Dashboard API views (``/api/v1/...``): thin wrappers around the dashboard selectors."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients.dashboards import selectors, stats

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
        patient, _ = selectors.patient_for(user=request.user, pk=pk)
        return Response(selectors.patient_timeline(patient=patient, user=request.user))


class StudyCorrelationAPI(APIView):
    """Score vs blood gas over every exam of a study: Pearson (Fisher CI), Spearman, regression."""

    @extend_schema(parameters=CORRELATION_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        params = _params(request)
        study, _ = selectors.study_for(user=request.user, pk=pk)
        return Response(selectors.correlation(params=params, user=request.user, study=study))


class PatientCorrelationAPI(APIView):
    """Score vs blood gas over one patient's exams."""

    @extend_schema(parameters=CORRELATION_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        params = _params(request)
        patient, _ = selectors.patient_for(user=request.user, pk=pk)
        return Response(selectors.correlation(params=params, user=request.user, patient=patient))
