"""Scoring API: jobs (status, retry, cancel), model cards and per-frame results of clips."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from patients.imaging.api import ClipSerializer
from patients.imaging.models import ZoneClip
from patients.imaging.selectors import clip_list
from patients.readings.selectors import open_blind_exams
from patients.records.api import PatientTimeMixin, query_int
from patients.records.models import Patient
from scoring import services
from scoring.models import ModelVersion, ScoringJob
from scoring.selectors import clip_frames_payload, model_card, visible_model_versions


class JobSerializer(PatientTimeMixin, serializers.ModelSerializer[ScoringJob]):
    # A job runs when its clips arrive, so its times would date the exam: researchers get none.
    HIDDEN_DATES = ("created_at", "started_at", "finished_at")
    model_version = serializers.CharField(source="model_version.version", read_only=True)
    exam_url = serializers.SerializerMethodField()

    def patient_of(self, instance: Any) -> Patient:
        return instance.exam.patient  # type: ignore[no-any-return]

    class Meta:
        model = ScoringJob
        fields = ["id", "exam", "status", "progress", "step", "error", "reason", "model_version", "worker",
                  "attempts", "created_at", "started_at", "finished_at", "timings", "exam_url"]
        read_only_fields = fields

    def get_exam_url(self, obj: ScoringJob) -> str:
        return obj.exam.get_absolute_url()


class JobViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[ScoringJob]:
        qs = ScoringJob.objects.select_related("model_version", "exam", "exam__patient")
        user = self.request.user
        if not user.is_superuser:
            qs = qs.filter(exam__patient__study__memberships__user_id=int(user.pk or 0))
        exam = self.request.query_params.get("exam")
        if exam and exam.isdigit():
            qs = qs.filter(exam_id=int(exam))
        return qs.order_by("-created_at", "-pk")

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        job = services.scoring_job_retry(job=self.get_object(), by=request.user)
        return Response(JobSerializer(job, context={"request": request}).data, status=202)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = services.scoring_job_cancel(job=self.get_object(), by=request.user)
        return Response(JobSerializer(job, context={"request": request}).data)


class ModelVersionSerializer(serializers.Serializer[Any]):
    """A model card (see ``scoring.selectors.model_card``)."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        card = model_card(version=instance)
        card["registered_at"] = instance.created_at.isoformat()
        return card


class ModelVersionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Registered scoring models with their validation, calibration and domain check (read-only)."""

    serializer_class = ModelVersionSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return visible_model_versions(user=self.request.user)


# The clip's per-frame results. Its schema answers with the Clip component, as it always has:
# the viewset's serializer is the clip's.
class ClipFramesViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = ClipSerializer

    def get_queryset(self) -> QuerySet[ZoneClip]:
        return clip_list(user=self.request.user, exam=query_int(self.request, "exam"))

    @action(detail=True, methods=["get"])
    def frames(self, request: Request, pk: str | None = None) -> Response:
        """Per-frame probabilities, scores and expected scores of the clip's current score (none
        during the caller's blind read of the exam)."""
        clip = self.get_object()
        hidden = bool(open_blind_exams(user=request.user, exam_ids=[clip.exam_id]))
        return Response(clip_frames_payload(clip=clip, hidden=hidden))


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("models", ModelVersionViewSet, basename="model")
# Only the ``frames`` action: the clip resource itself is imaging's.
router.register("clips", ClipFramesViewSet, basename="clip")

urlpatterns: list[Any] = []
