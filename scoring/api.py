"""Scoring API: jobs (status, retry, cancel) and per-frame results of clips."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from patients.api.serializers import PatientTimeMixin
from patients.models import Patient
from scoring import services
from scoring.models import ModelVersion, ScoringJob


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


def exam_scores_field(obj: Any) -> dict[str, Any]:
    from scoring.selectors import exam_scores_payload

    return exam_scores_payload(exam=obj)


class ModelVersionSerializer(serializers.Serializer[Any]):
    """A model card (see ``scoring.selectors.model_card``)."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        from scoring.selectors import model_card

        card = model_card(version=instance)
        card["registered_at"] = instance.created_at.isoformat()
        return card


class ModelVersionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Registered scoring models with their validation, calibration and domain check (read-only)."""

    serializer_class = ModelVersionSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return ModelVersion.objects.order_by("-is_active", "-created_at")
