"""Readings API: a clip's score overrides (``/api/v1/clips/<id>/override/``)."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from patients.imaging.models import ZoneClip
from patients.imaging.selectors import clip_list
from patients.readings import selectors, services
from patients.readings.models import ScoreOverride
from patients.records.api import PatientTimeMixin, query_int
from patients.records.models import Patient


class OverrideInputSerializer(serializers.Serializer[Any]):
    score = serializers.IntegerField(min_value=0, max_value=3)
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)


class OverrideSerializer(PatientTimeMixin, serializers.ModelSerializer[ScoreOverride]):
    TIME_FIELD = "at"
    HIDDEN_FIELDS = ("reason",)  # free text, like an exam's notes
    by = serializers.CharField(source="by.username", default=None, read_only=True)

    def patient_of(self, instance: Any) -> Patient:
        return instance.clip.exam.patient  # type: ignore[no-any-return]

    class Meta:
        model = ScoreOverride
        fields = ["id", "clip", "score", "reason", "by", "at"]
        read_only_fields = fields


class ClipOverrideViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    def get_queryset(self) -> QuerySet[ZoneClip]:
        return clip_list(user=self.request.user, exam=query_int(self.request, "exam"))

    @extend_schema(request=OverrideInputSerializer, responses=OverrideSerializer(many=True))
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser, FormParser, MultiPartParser])
    def override(self, request: Request, pk: str | None = None) -> Response:
        """GET: the clip's override history (newest first; the first one is in effect).
        POST ``{"score": 0-3, "reason": "..."}``: clinicians and study admins override the AI score."""
        clip = self.get_object()
        if request.method == "POST":
            ser = OverrideInputSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            override = services.score_override_create(clip=clip, by=request.user, **ser.validated_data)
            return Response(OverrideSerializer(override, context={"request": request}).data,
                            status=status.HTTP_201_CREATED)
        history = selectors.override_history(clip=clip)
        return Response(OverrideSerializer(history, many=True, context={"request": request}).data)


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
# Only the ``override`` action: the clip resource itself is imaging's.
router.register("clips", ClipOverrideViewSet, basename="clip")

urlpatterns: list[Any] = []
