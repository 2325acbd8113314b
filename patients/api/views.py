"""API views: thin. They parse input, call a selector or a service, and serialise the result."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients import permissions, selectors, services
from patients.api.serializers import (
    BloodGasSerializer,
    ClinicalInfoSerializer,
    ClipCreateSerializer,
    ClipSerializer,
    ClipUploadSerializer,
    ExamSerializer,
    MemberInputSerializer,
    MemberSerializer,
    PatientSerializer,
    StudySerializer,
)
from patients.models import Exam, Membership, Patient, Study, ZoneClip


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({name: f"{raw!r} is not an integer id"}) from None


class StudyViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = StudySerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Study]:
        return selectors.study_list(user=self.request.user)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.study_create(created_by=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        permissions.require_admin(self.request.user, serializer.instance)
        serializer.save()

    @extend_schema(request=MemberInputSerializer, responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        study = self.get_object()
        if request.method == "POST":
            data = MemberInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            membership, created = services.membership_set(study=study, by=request.user, **data.validated_data)
            return Response(MemberSerializer(membership).data,
                            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
        permissions.require_read(request.user, study)
        members = Membership.objects.filter(study=study).select_related("user").order_by("user__username")
        return Response(MemberSerializer(members, many=True).data)


class PatientViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = PatientSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Patient]:
        return selectors.patient_list(user=self.request.user, study=_int_param(self.request, "study"))

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        study = data.pop("study")
        permissions.require_write(self.request.user, study)
        serializer.instance = services.patient_create(study=study, by=self.request.user, **data)

    def perform_update(self, serializer: Any) -> None:
        permissions.require_write(self.request.user, serializer.instance.study)
        if serializer.validated_data.get("study", serializer.instance.study) != serializer.instance.study:
            raise ValidationError({"study": "a patient cannot move to another study"})
        serializer.save()

    @extend_schema(request=BloodGasSerializer, responses=BloodGasSerializer(many=True))
    @action(detail=True, methods=["get", "post"], url_path="blood-gases")
    def blood_gases(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        if request.method == "POST":
            ser = BloodGasSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            gas = services.blood_gas_create(patient=patient, by=request.user, **ser.validated_data)
            return Response(BloodGasSerializer(gas).data, status=status.HTTP_201_CREATED)
        return Response(BloodGasSerializer(selectors.blood_gas_list(patient=patient), many=True).data)

    @extend_schema(request=ClinicalInfoSerializer, responses=ClinicalInfoSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def clinical(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        if request.method == "POST":
            ser = ClinicalInfoSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            record = services.clinical_info_create(patient=patient, by=request.user, **ser.validated_data)
            return Response(ClinicalInfoSerializer(record).data, status=status.HTTP_201_CREATED)
        return Response(ClinicalInfoSerializer(selectors.clinical_info_list(patient=patient), many=True).data)


def _upload_response(result: services.IngestResult, request: Request) -> Response:
    data = ClipSerializer(result.clip, context={"request": request}).data
    return Response(data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ExamViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = ExamSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Exam]:
        return selectors.exam_list(user=self.request.user, patient=_int_param(self.request, "patient")).prefetch_related(
            "clips"
        )

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        patient = data.pop("patient")
        serializer.instance = services.exam_create(patient=patient, by=self.request.user, **data)

    def perform_update(self, serializer: Any) -> None:
        permissions.require_write(self.request.user, serializer.instance.study)
        if serializer.validated_data.get("patient", serializer.instance.patient) != serializer.instance.patient:
            raise ValidationError({"patient": "an exam cannot move to another patient"})
        serializer.save()

    def perform_destroy(self, instance: Exam) -> None:
        permissions.require_write(self.request.user, instance.study)
        instance.delete()

    @extend_schema(request={"multipart/form-data": ClipUploadSerializer}, responses=ClipSerializer)
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def clips(self, request: Request, pk: str | None = None) -> Response:
        exam = self.get_object()
        ser = ClipUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        upload = ser.validated_data["file"]
        result = services.clip_ingest(
            exam=exam, upload=upload, zone=ser.validated_data["zone"], by=request.user,
            filename=upload.name or "", replace=ser.validated_data["replace"],
        )
        return _upload_response(result, request)


class ClipViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, mixins.DestroyModelMixin,
                  viewsets.GenericViewSet):  # type: ignore[type-arg]
    serializer_class = ClipSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[ZoneClip]:
        return selectors.clip_list(user=self.request.user, exam=_int_param(self.request, "exam"))

    @extend_schema(request={"multipart/form-data": ClipCreateSerializer}, responses=ClipSerializer)
    def create(self, request: Request) -> Response:
        ser = ClipCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        exam = selectors.exam_list(user=request.user).filter(pk=ser.validated_data["exam"]).first()
        if exam is None:
            raise ValidationError({"exam": f"exam {ser.validated_data['exam']} does not exist or belongs to a "
                                           "study you are not a member of"})
        upload = ser.validated_data["file"]
        result = services.clip_ingest(
            exam=exam, upload=upload, zone=ser.validated_data["zone"], by=request.user,
            filename=upload.name or "", replace=ser.validated_data["replace"],
        )
        return _upload_response(result, request)

    def perform_destroy(self, instance: ZoneClip) -> None:
        services.clip_delete(clip=instance, by=self.request.user)

    @action(detail=True, methods=["get"])
    def frames(self, request: Request, pk: str | None = None) -> Response:
        """Per-frame probabilities, scores and expected scores of the clip's current score."""
        from scoring.selectors import clip_frames_payload

        return Response(clip_frames_payload(clip=self.get_object()))


class MeView(APIView):
    """The logged-in user and their roles."""

    def get(self, request: Request) -> Response:
        memberships = Membership.objects.filter(user_id=int(request.user.pk or 0)).select_related("study")
        return Response({
            "username": request.user.username,
            "studies": [{"id": m.study_id, "name": m.study.name, "role": m.role} for m in memberships],
        })

