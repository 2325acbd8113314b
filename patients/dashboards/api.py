"""Dashboard API (``/api/v1/...``): timelines and correlations, and the exam resource as served,
with its scores and severity (records' exam resource extended)."""
from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from patients.dashboards import stats
from patients.dashboards.correlation import correlation
from patients.dashboards.pagecache import Located, page_cached
from patients.dashboards.timeline import timeline_cached
from patients.readings import services as readings_services
from patients.readings.selectors import ReviewState, exam_history, open_blind_exams, review_states
from patients.records import api as records_api
from patients.records import chrono
from patients.records.models import Exam
from patients.records.selectors import patient_for, severity_now_for
from patients.studies import permissions
from patients.studies.selectors import study_for
from scoring.selectors import exam_scores_payload
from scoring.severity import risk_payload, severity_payload

CORRELATION_PARAMETERS = [
    OpenApiParameter("score", str, enum=list(stats.SCORES), default="luss",
                     description="luss (global LUS score of record), mean (mean zone score of record), severity "
                                 "(ordinal 0 mild .. 3 critical), severe_prob (P(severe or critical)) or six_class "
                                 "(the AI's exam severity on the six-class scale of Hu et al. 2021, 0-4: mean over "
                                 "all frames of the exam's scored clips; score_source names the model)"),
    OpenApiParameter("gas", str, enum=list(stats.GASES), default="paco2", description="paco2, pao2 or pf (PaO2/FiO2)"),
    OpenApiParameter("window_hours", float, default=stats.DEFAULT_WINDOW_HOURS,
                     description="pair each exam with the nearest gas within +- this many hours (ties: earlier gas)"),
    OpenApiParameter("unit", str, enum=list(stats.UNITS), default="mmHg",
                     description="mmHg or kPa for PaCO2/PaO2; P/F is always mmHg"),
    OpenApiParameter("reviewed", bool, default=False,
                     description="1: only exams a clinician signed off (n of both choices: n_by_choice)"),
]


def _params(request: Request) -> stats.CorrelationParams:
    try:
        return stats.parse_correlation_params(request.query_params)
    except ValueError as exc:
        raise ValidationError({"detail": str(exc)}) from None


class PatientTimelineAPI(APIView):
    """A patient's exams (global and zone scores, severity now, risk of a severe course) and blood
    gases over time."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        return Response(timeline_cached(user=request.user, pk=pk))


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


# An exam with its ``scores`` (the score of record, the AI's beside it), review state,
# ``severity_now`` (the exam day's state from the clinical record and blood gas: WHO level and
# guideline class), ``risk_severe_course`` (the model's calibrated risk of a severe course of the
# stay, clipped to 1-99 %, with the model's CV figures and the zone attention) and ``severity`` (the
# same model's stored output, kept for older scripts). (No docstring: the schema would take it as
# the description of the Exam component.)
@extend_schema_serializer(component_name="Exam")
class ExamWithScoresSerializer(records_api.ExamSerializer):
    HIDDEN_DATES = ("created_at", "signed_at")
    scores = serializers.SerializerMethodField()
    severity = serializers.SerializerMethodField()
    severity_now = serializers.SerializerMethodField()
    risk_severe_course = serializers.SerializerMethodField()
    review_status = serializers.SerializerMethodField()
    signed_by = serializers.SerializerMethodField()
    signed_at = serializers.SerializerMethodField()

    class Meta(records_api.ExamSerializer.Meta):
        fields = ["id", "patient", "acquired_at", "protocol", "other_protocol", "device", "probe", "operator", "notes",
                  "created_at", "zones", "missing_zones", "clips", "scores", "severity_now", "risk_severe_course", "severity",
                  "review_status",
                  "signed_by", "signed_at", "page_url"]

    def _user(self) -> Any:
        request = self.context.get("request")
        return request.user if request is not None else None

    def _review(self, obj: Exam) -> ReviewState:
        cache: dict[int, ReviewState] = self.context.setdefault("_lusweb_reviews", {})
        if obj.pk not in cache:
            cache[obj.pk] = review_states(exam_ids=[obj.pk])[obj.pk]
        return cache[obj.pk]

    def _blind(self, obj: Exam) -> bool:
        # Asked by three fields of every exam: one query per exam, not three.
        cache: dict[int, bool] = self.context.setdefault("_lusweb_blind", {})
        if obj.pk not in cache:
            cache[obj.pk] = bool(open_blind_exams(user=self._user(), exam_ids=[obj.pk]))
        return cache[obj.pk]

    def get_scores(self, obj: Exam) -> dict[str, Any]:
        scores = exam_scores_payload(exam=obj, user=self._user(), hidden=self._blind(obj))
        if permissions.can_see_identifying(self._user(), obj.study):
            return scores
        clock = chrono.clock_for(user=None, patient=obj.patient, shows_dates=False)
        for zone in scores["zones"]:  # a researcher: the day of each reading, not its date
            at = zone.pop("read_at")
            zone["read_day"] = clock.day(at) if at else None
        return scores

    def get_severity(self, obj: Exam) -> dict[str, Any] | None:
        if self._blind(obj):
            return None  # the AI's view of the exam stays hidden during the user's blind read
        return severity_payload(exam=obj)

    def get_severity_now(self, obj: Exam) -> dict[str, Any]:
        return severity_now_for(exams=[(obj.pk, obj.patient_id, obj.acquired_at)])[obj.pk].as_dict()

    def get_risk_severe_course(self, obj: Exam) -> dict[str, Any] | None:
        if self._blind(obj):
            return None  # the model's output is the AI's: hidden during the user's blind read
        return risk_payload(exam=obj)

    def get_review_status(self, obj: Exam) -> str:
        return self._review(obj).status

    def get_signed_by(self, obj: Exam) -> str | None:
        return self._review(obj).signed_by

    def get_signed_at(self, obj: Exam) -> str | None:
        at = self._review(obj).signed_at
        return at.isoformat() if at else None

    def hide_dates(self, instance: Any, data: dict[str, Any]) -> dict[str, Any]:
        signed_at = self._review(instance).signed_at
        data = super().hide_dates(instance, data)
        if "signed_at" not in data:  # a researcher: the day of the signature instead of its date
            clock = chrono.clock_for(user=None, patient=instance.patient, shows_dates=False)
            data["signed_day"] = clock.day(signed_at) if signed_at else None
        return data


class ExamViewSet(records_api.ExamViewSet):
    serializer_class = ExamWithScoresSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # What the serializer answers, kept while none of the patient's rows changes (pagecache);
        # get_object() is the access check (404 for outsiders), with the patient and its study.
        def locate() -> Located[Exam]:
            exam = self.get_object()
            return Located(exam, exam.patient_id, exam.patient.study_id)

        _, data = page_cached(kind="exam-api", part=str(kwargs["pk"]), user=request.user, locate=locate,
                              compute=lambda exam: dict(self.get_serializer(exam).data))
        return Response(data)

    def _exam(self, request: Request) -> Response:
        exam = self.get_object()
        return Response(self.get_serializer(exam).data)

    @extend_schema(request=None, responses=ExamWithScoresSerializer)
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, pk: str | None = None) -> Response:
        """Clinicians and study admins sign the exam off (every zone needs a clinician reading; 400
        names those without). Answers the exam, ``review_status`` "reviewed"."""
        readings_services.exam_sign(exam=self.get_object(), by=request.user)
        return self._exam(request)

    @extend_schema(request=None, responses=ExamWithScoresSerializer)
    @action(detail=True, methods=["post"])
    def blind(self, request: Request, pk: str | None = None) -> Response:
        """Start reading the exam blind: until you submit, the AI's and others' readings are hidden
        from you here, on the pages and in the rest of the API. Answers the exam as you now see it."""
        readings_services.blind_read_start(exam=self.get_object(), by=request.user)
        return self._exam(request)

    @extend_schema(request=None, responses=ExamWithScoresSerializer)
    @action(detail=True, methods=["post"], url_path="blind/submit", url_name="blind-submit")
    def blind_submit(self, request: Request, pk: str | None = None) -> Response:
        """End your blind read (every zone needs your reading; 400 names those without)."""
        readings_services.blind_read_submit(exam=self.get_object(), by=request.user)
        return self._exam(request)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """The exam's readings and signatures, newest first (researchers: days, no comments)."""
        exam = self.get_object()
        rows = exam_history(exam_id=exam.pk, user=request.user)
        dates = permissions.can_see_identifying(request.user, exam.study)
        clock = chrono.clock_for(user=request.user, patient=exam.patient, shows_dates=dates)
        for row in rows:
            at = row.pop("at")
            row.update({"at": at.isoformat()} if dates else {"day": clock.day(at), "comment": None})
        return Response({"exam": exam.pk, "review_status": review_states(exam_ids=[exam.pk])[exam.pk].status,
                         "history": rows})


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("exams", ExamViewSet, basename="exam")

urlpatterns = [
    path("patients/<int:pk>/timeline/", PatientTimelineAPI.as_view(), name="api-patient-timeline"),
    path("patients/<int:pk>/correlation/", PatientCorrelationAPI.as_view(), name="api-patient-correlation"),
    path("studies/<int:pk>/correlation/", StudyCorrelationAPI.as_view(), name="api-study-correlation"),
]
