"""Imaging API: clips (list, read, delete) and the ONE upload path, which serves both
``POST /api/v1/clips/`` (exam in the form) and ``POST /api/v1/exams/<id>/clips/``.

An upload answers 202 with the pending clip and ``Location: /api/v1/clips/<id>/``, where its
``status`` becomes ``ready`` (decoded fields filled) or ``failed`` (``error`` and ``code``, the
words a 400 would have carried) once an ingest worker has checked it."""
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

from patients.imaging import selectors, services, zone_hints
from patients.imaging.ingest import IngestError, clip_accept
from patients.imaging.models import IN_FLIGHT, ClipStatus, ZoneClip
from patients.records.api import PatientTimeMixin, query_int
from patients.records.models import Exam, Patient
from patients.records.selectors import exam_list

# --- serializers -------------------------------------------------------------------------------


class ClipSerializer(PatientTimeMixin, serializers.ModelSerializer[ZoneClip]):
    # Devices and users often name files after the patient ("DOE_JOHN_20260304.dcm").
    HIDDEN_FIELDS = ("original_filename",)
    page_url = serializers.SerializerMethodField()
    model = serializers.CharField(source="model_name", read_only=True)
    status = serializers.SerializerMethodField()
    code = serializers.CharField(source="error_code", read_only=True)
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True)

    def patient_of(self, instance: Any) -> Patient:
        return instance.exam.patient  # type: ignore[no-any-return]

    def get_status(self, instance: ZoneClip) -> str:
        """``pending`` (also while a worker checks it), ``ready`` or ``failed``."""
        return ClipStatus.PENDING.value if instance.status in IN_FLIGHT else str(instance.status)

    def get_page_url(self, instance: ZoneClip) -> str | None:
        return instance.get_absolute_url() if instance.is_ready else None

    class Meta:
        model = ZoneClip
        fields = ["id", "exam", "zone", "status", "error", "code", "original_filename", "sha256", "size_bytes",
                  "format", "codec", "frame_count", "fps", "rows", "columns", "manufacturer", "model", "transducer",
                  "sop_instance_uid", "study_instance_uid", "created_at", "page_url", "warnings"]
        read_only_fields = fields


class ClipUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=True)
    zone = serializers.CharField(max_length=8)
    replace = serializers.BooleanField(default=False)


class ClipCreateSerializer(ClipUploadSerializer):
    exam = serializers.IntegerField()


class ZoneHintsSerializer(serializers.Serializer[Any]):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True),
                                  help_text="the first 256 KiB of each file (DICOM or video), named as the file")


class ZoneHintSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    zone = serializers.CharField(allow_null=True)
    # A declared field named like Field.source (the serializer's metaclass takes it out of the class).
    source = serializers.ChoiceField(choices=["dicom", "name", ""])  # type: ignore[assignment]
    dicom = serializers.BooleanField()
    value = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True)


class ZoneHintsAnswer(serializers.Serializer[Any]):
    exam = serializers.IntegerField()
    protocol = serializers.CharField()
    tag = serializers.CharField()
    pattern = serializers.CharField()
    hints = ZoneHintSerializer(many=True)


# --- the upload path -----------------------------------------------------------------------------


def _single_files(request: Request) -> None:
    """Refuse a request that sends several files in one field (only one would be stored)."""
    for field in request.FILES:
        count = len(request.FILES.getlist(field))
        if count > 1:
            raise IngestError(f"the field {field!r} holds {count} files; send one file per upload",
                              code="multiple_files")


def _upload(request: Request, exam: Exam, data: dict[str, Any]) -> Response:
    """Accept the validated upload into ``exam``: 202 with the pending clip and its status URL in
    ``Location``, or 200 with the clip already stored from the same bytes in that zone."""
    upload = data["file"]
    result = clip_accept(exam=exam, upload=upload, zone=data["zone"], by=request.user, filename=upload.name or "",
                         replace=data["replace"])
    body = ClipSerializer(result.clip, context={"request": request}).data
    if not result.created:
        return Response(body, status=status.HTTP_200_OK)
    location = request.build_absolute_uri(f"/api/v1/clips/{result.clip.pk}/")
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


# --- views -------------------------------------------------------------------------------------


class ClipViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, mixins.DestroyModelMixin,
                  viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = ClipSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[ZoneClip]:
        # Uploads being checked and failed ones too: their status (and error) is read here.
        return selectors.clip_list(user=self.request.user, exam=query_int(self.request, "exam"), any_status=True)

    @extend_schema(request={"multipart/form-data": ClipCreateSerializer},
                   responses={202: ClipSerializer, 200: ClipSerializer})
    def create(self, request: Request) -> Response:
        _single_files(request)
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
        return exam_list(user=self.request.user, patient=query_int(self.request, "patient"))

    @extend_schema(request={"multipart/form-data": ClipUploadSerializer},
                   responses={202: ClipSerializer, 200: ClipSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def clips(self, request: Request, pk: str | None = None) -> Response:
        exam = self.get_object()
        _single_files(request)
        ser = ClipUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        return _upload(request, exam, ser.validated_data)

    @extend_schema(request={"multipart/form-data": ZoneHintsSerializer}, responses={200: ZoneHintsAnswer})
    @action(detail=True, methods=["post"], url_path="zone-hints", parser_classes=[MultiPartParser])
    def zone_hints(self, request: Request, pk: str | None = None) -> Response:
        # The zone each file gives (its DICOM zone attribute by the study's rule, else its name),
        # from the first 256 KiB of each file in ``files``; nothing is stored.
        exam = self.get_object()
        files = [(f.name or "", f.read(zone_hints.HEAD_BYTES)) for f in request.FILES.getlist("files")]
        hints = zone_hints.zone_hints(exam=exam, files=files)
        study = exam.study
        return Response({"exam": exam.pk, "protocol": exam.protocol, "tag": study.dicom_zone_tag,
                         "pattern": study.dicom_zone_pattern, "hints": [h.as_dict() for h in hints]})


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("clips", ClipViewSet, basename="clip")
# Only the ``clips`` action: the exam resource itself is routed by the dashboards.
router.register("exams", ExamClipsViewSet, basename="exam")

urlpatterns: list[Any] = []
