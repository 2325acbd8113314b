"""Readings API: a clip's readings (``/api/v1/clips/<id>/readings/``), its override history and
overrides (``.../override/``), adjudication (``.../adjudicate/``); a study's review worklist
(``/api/v1/studies/<id>/worklist/``) and its disagreements (``.../disagreements/``).

Signing and blind reads are actions of the exam resource (``patients.dashboards.api``), which
answer with the exam and its scores."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from patients.imaging.models import ZoneClip
from patients.imaging.selectors import clip_list
from patients.readings import selectors, services
from patients.readings.models import ZoneReading
from patients.readings.worklist import URGENT, worklist_orders, worklist_reordered
from patients.records import chrono
from patients.records.api import PatientTimeMixin, query_int
from patients.records.models import Patient
from patients.studies import permissions

PARSERS = [JSONParser, FormParser, MultiPartParser]


class ReadingInputSerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField(min_value=0, max_value=3)
    findings = serializers.DictField(child=serializers.BooleanField(), required=False, default=dict)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                    trim_whitespace=True)


class AdjudicationInputSerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField(min_value=0, max_value=3)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                    trim_whitespace=True)


class OverrideInputSerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField(min_value=0, max_value=3)
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)


class _ClipRowMixin(PatientTimeMixin):
    def patient_of(self, instance: Any) -> Patient:
        return instance.clip.exam.patient  # type: ignore[no-any-return]


class ReadingSerializer(_ClipRowMixin, serializers.ModelSerializer[ZoneReading]):
    """A reading; researchers get ``day`` instead of ``created_at`` and no comment (free text)."""

    TIME_FIELD = "created_at"
    HIDDEN_DATES = ()
    HIDDEN_FIELDS = ("comment",)
    rater = serializers.CharField(source="rater_name", read_only=True)
    zone = serializers.CharField(source="clip.zone", read_only=True)

    class Meta:
        model = ZoneReading
        fields = ["id", "clip", "zone", "source", "rater", "score", "findings", "comment", "confidence", "in_domain",
                  "blind", "created_at"]
        read_only_fields = fields


class OverrideSerializer(_ClipRowMixin, serializers.ModelSerializer[ZoneReading]):
    """A clinician reading in the override history's shape: ``reason`` is its comment, ``by`` its
    rater, ``at`` its time (researchers: ``day``, no reason)."""

    TIME_FIELD = "created_at"
    HIDDEN_DATES = ()
    HIDDEN_FIELDS = ("reason",)
    reason = serializers.CharField(source="comment", read_only=True)
    by = serializers.CharField(source="rater_name", read_only=True)

    class Meta:
        model = ZoneReading
        fields = ["id", "clip", "score", "reason", "by", "created_at", "source"]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if "created_at" in data:
            data["at"] = data.pop("created_at")
        return data


def _created(reading: ZoneReading, request: Request, serializer: type[serializers.Serializer[Any]]) -> Response:
    return Response(serializer(reading, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ClipReadingViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    def get_queryset(self) -> QuerySet[ZoneClip]:
        return clip_list(user=self.request.user, exam=query_int(self.request, "exam"))

    @extend_schema(request=ReadingInputSerializer, responses=ReadingSerializer(many=True))
    @action(detail=True, methods=["get", "post"], parser_classes=PARSERS)
    def readings(self, request: Request, pk: str | None = None) -> Response:
        """GET: the readings the caller may see, newest first (during the caller's blind read of the
        exam, only their own). POST ``{"score": 0-3, "findings": {...}, "comment": "..."}``: a
        clinician's reading, which becomes the zone's score of record."""
        clip = self.get_object()
        if request.method == "POST":
            ser = ReadingInputSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            reading = services.reading_create(clip=clip, by=request.user, **ser.validated_data)
            return _created(reading, request, ReadingSerializer)
        rows = selectors.visible_readings(clip=clip, user=request.user)
        return Response(ReadingSerializer(rows, many=True, context={"request": request}).data)

    @extend_schema(request=OverrideInputSerializer, responses=OverrideSerializer(many=True))
    @action(detail=True, methods=["get", "post"], parser_classes=PARSERS)
    def override(self, request: Request, pk: str | None = None) -> Response:
        """GET: the clip's clinician readings, newest (the record) first. POST ``{"score": 0-3,
        "reason": "..."}``: a clinician reading with the reason as its comment."""
        clip = self.get_object()
        if request.method == "POST":
            ser = OverrideInputSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            return _created(services.score_override_create(clip=clip, by=request.user, **ser.validated_data),
                            request, OverrideSerializer)
        history = selectors.clinician_history(clip=clip)
        if selectors.open_blind_exams(user=request.user, exam_ids=[clip.exam_id]):
            history = history.filter(rater_id=request.user.pk)
        return Response(OverrideSerializer(history, many=True, context={"request": request}).data)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def record(self, request: Request, pk: str | None = None) -> Response:
        """The zone's score of record (``source``: clinician | ai; ``kind`` adds adjudication) with
        the AI's score beside it; during the caller's blind read only their own reading."""
        clip = self.get_object()
        record = selectors.clip_record(clip=clip, user=request.user)
        data = selectors.record_json(record)
        if not permissions.can_see_identifying(request.user, clip.exam.patient.study_id):
            clock = chrono.clock_for(user=None, patient=clip.exam.patient, shows_dates=False)
            data.pop("read_at")
            data["read_day"] = clock.day(record.read_at) if record.read_at else None
        return Response(data)

    @extend_schema(request=AdjudicationInputSerializer, responses=ReadingSerializer)
    @action(detail=True, methods=["post"], parser_classes=PARSERS)
    def adjudicate(self, request: Request, pk: str | None = None) -> Response:
        """Study admins: ``{"score": 0-3, "comment": "..."}`` settles a zone whose clinicians
        disagree; the adjudication sets the record."""
        ser = AdjudicationInputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        reading = services.reading_adjudicate(clip=self.get_object(), by=request.user, **ser.validated_data)
        return _created(reading, request, ReadingSerializer)


def _when(clock: chrono.PatientClock, at: Any, dates: bool) -> dict[str, Any]:
    return {"acquired_at": chrono.local(at).isoformat() if dates else None, "day": clock.day(at),
            "label": clock.label(at)}


class StudyWorklistAPI(APIView):
    """The study's exams waiting for review (draft or amended), most urgent first: zones the AI was
    unsure of, then zones whose AI score moved by >= 2 from the previous record, then the oldest.
    ``?order=label-more``: most informative first (the unread zones most worth labelling to improve
    the model), each exam with ``informativeness``, ``why`` and its ``informative_zones``."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        order = request.query_params.get("order", URGENT)
        known = [key for key, _label in worklist_orders()]
        if order not in known:
            raise ValidationError({"order": f"{order!r} is not one of {known}"})
        reordered = worklist_reordered(study=study, user=request.user, order=order)
        dates = permissions.can_see_identifying(request.user, study)
        clocks = chrono.study_clocks(study_id=study.pk, shows_dates=dates)
        exams = []
        for r in reordered.items:
            i = r.item
            row = {"exam": i.exam_id, "patient": i.patient_id, "patient_code": i.patient_code, "status": i.status,
                   **_when(clocks[i.patient_id], i.acquired_at, dates), "zones": i.zones, "unsure_zones": i.unsure,
                   "moved_zones": i.moved, "unread_zones": i.unread, "page_url": f"/exams/{i.exam_id}/"}
            if order != URGENT:
                row.update({"informativeness": r.value, "why": r.why,
                            "informative_zones": [{k: v for k, v in z.items() if k != "text"} for z in r.zones]})
            exams.append(row)
        return Response({"study": study.pk, "order": order, **reordered.meta, "count": len(exams), "exams": exams})


class StudyDisagreementsAPI(APIView):
    """Zones of the study whose clinicians' latest readings disagree, with any adjudication."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        blind = selectors.open_blind_exams(user=request.user)
        rows = selectors.disagreements(study=study, exclude_exams=blind)
        dates = permissions.can_see_identifying(request.user, study)
        clocks = chrono.study_clocks(study_id=study.pk, shows_dates=dates)
        for row in rows:
            row.update(_when(clocks[row["patient"]], row.pop("acquired_at"), dates))
        return Response({"study": study.pk, "zones": rows})


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
# Only the readings' actions: the clip resource itself is imaging's.
router.register("clips", ClipReadingViewSet, basename="clip")

urlpatterns: list[Any] = [
    path("studies/<int:pk>/worklist/", StudyWorklistAPI.as_view(), name="api-study-worklist"),
    path("studies/<int:pk>/disagreements/", StudyDisagreementsAPI.as_view(), name="api-study-disagreements"),
]
