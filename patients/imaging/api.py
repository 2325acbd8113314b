"""Imaging API: clips (list, read, delete) and the ONE upload path, which serves both
``POST /api/v1/clips/`` (exam in the form) and ``POST /api/v1/exams/<id>/clips/``."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from patients.imaging import selectors, services
from patients.imaging.ingest import clip_ingest
from patients.imaging.models import ZoneClip
from patients.records.api import PatientTimeMixin, query_int
from patients.records.models import Exam, Patient
from patients.records.selectors import exam_list

# --- serializers -------------------------------------------------------------------------------


class ClipSerializer(PatientTimeMixin, serializers.ModelSerializer[ZoneClip]):
    # Devices and users often name files after the patient ("DOE_JOHN_20260304.dcm").
    HIDDEN_FIELDS = ("original_filename",)
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)
    model = serializers.CharField(source="model_name", read_only=True)

    def patient_of(self, instance: Any) -> Patient:
        return instance.exam.patient  # type: ignore[no-any-return]

    class Meta:
        model = ZoneClip
        fields = ["id", "exam", "zone", "original_filename", "sha256", "size_bytes", "format", "codec",
                  "frame_count", "fps", "rows", "columns", "manufacturer", "model", "transducer",
                  "sop_instance_uid", "study_instance_uid", "created_at", "page_url"]
        read_only_fields = fields


class ClipUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=True)
    zone = serializers.CharField(max_length=8)
    replace = serializers.BooleanField(default=False)


class ClipCreateSerializer(ClipUploadSerializer):
    exam = serializers.IntegerField()


# --- the upload path -----------------------------------------------------------------------------


def _upload(request: Request, exam: Exam, data: dict[str, Any]) -> Response:
    """Ingest the validated upload into ``exam``: 201 with the new clip, 200 when the same bytes
    were already stored in that zone."""
    upload = data["file"]
    result = clip_ingest(exam=exam, upload=upload, zone=data["zone"], by=request.user, filename=upload.name or "",
                         replace=data["replace"])
    body = ClipSerializer(result.clip, context={"request": request}).data
    return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


# --- views -------------------------------------------------------------------------------------


class ClipViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, mixins.DestroyModelMixin,
                  viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = ClipSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[ZoneClip]:
        return selectors.clip_list(user=self.request.user, exam=query_int(self.request, "exam"))

    @extend_schema(request={"multipart/form-data": ClipCreateSerializer}, responses=ClipSerializer)
    def create(self, request: Request) -> Response:
        ser = ClipCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        exam = exam_list(user=request.user).filter(pk=ser.validated_data["exam"]).first()
        if exam is None:
            raise ValidationError({"exam": f"exam {ser.validated_data['exam']} does not exist or belongs to a "
                                           "study you are not a member of"})
        return _upload(request, exam, ser.validated_data)

    def perform_destroy(self, instance: ZoneClip) -> None:
        services.clip_delete(clip=instance, by=self.request.user)


# ``POST /api/v1/exams/<id>/clips/``: the upload path with the exam in the URL. (No docstring: the
# schema would take it as the description of the operation.)
class ExamClipsViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = ClipSerializer

    def get_queryset(self) -> QuerySet[Exam]:
        return exam_list(user=self.request.user, patient=query_int(self.request, "patient")).prefetch_related("clips")

    @extend_schema(request={"multipart/form-data": ClipUploadSerializer}, responses=ClipSerializer)
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def clips(self, request: Request, pk: str | None = None) -> Response:
        exam = self.get_object()
        ser = ClipUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return _upload(request, exam, ser.validated_data)


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("clips", ClipViewSet, basename="clip")
# Only the ``clips`` action: the exam resource itself is routed by the dashboards.
router.register("exams", ExamClipsViewSet, basename="exam")

urlpatterns: list[Any] = []
