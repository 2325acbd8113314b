"""API views: thin. They parse input, call a selector or a service, and serialise the result."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import Http404, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients import audit, export, permissions, selectors, services
from patients.api.serializers import (
    AgreementSerializer,
    ArchiveSerializer,
    AuditEventSerializer,
    BloodGasSerializer,
    ClinicalInfoSerializer,
    ClipCreateSerializer,
    ClipSerializer,
    ClipUploadSerializer,
    ExamSerializer,
    MemberInputSerializer,
    MemberRoleSerializer,
    MemberSerializer,
    OverrideInputSerializer,
    OverrideSerializer,
    PatientSerializer,
    StudySerializer,
)
from patients.models import AuditAction, Exam, Membership, Patient, ScoreOverride, Study, ZoneClip


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
        serializer.instance = services.study_update(study=serializer.instance, by=self.request.user,
                                                    **serializer.validated_data)

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

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        if permissions.can_see_identifying(request.user, patient.study_id):
            audit.audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=patient.study,
                               obj=patient, changes={"fields": list(Patient.IDENTIFYING_FIELDS), "via": "api"})
        return Response(self.get_serializer(patient).data)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        # One event per study whose identifying fields this page of results showed.
        rows = response.data.get("results", response.data) if isinstance(response.data, dict) else response.data
        shown: dict[int, list[int]] = {}
        for row in rows or []:
            if "name" in row:
                shown.setdefault(int(row["study"]), []).append(int(row["id"]))
        for study in Study.objects.filter(pk__in=shown):
            audit.audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study,
                               object_type="patient", object_id="list", row_count=len(shown[study.pk]),
                               changes={"patients": shown[study.pk], "via": "api"})
        return response

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        study = data.pop("study")
        permissions.require_write(self.request.user, study)
        serializer.instance = services.patient_create(study=study, by=self.request.user, **data)

    def perform_update(self, serializer: Any) -> None:
        permissions.require_write(self.request.user, serializer.instance.study)
        data = dict(serializer.validated_data)
        if data.pop("study", serializer.instance.study) != serializer.instance.study:
            raise ValidationError({"study": "a patient cannot move to another study"})
        serializer.instance = services.patient_update(patient=serializer.instance, by=self.request.user, **data)

    @extend_schema(request=BloodGasSerializer, responses=BloodGasSerializer(many=True))
    @action(detail=True, methods=["get", "post"], url_path="blood-gases")
    def blood_gases(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        if request.method == "POST":
            ser = BloodGasSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            gas = services.blood_gas_create(patient=patient, by=request.user, **ser.validated_data)
            return Response(BloodGasSerializer(gas, context={"request": request}).data, status=status.HTTP_201_CREATED)
        return Response(BloodGasSerializer(selectors.blood_gas_list(patient=patient), many=True,
                                          context={"request": request}).data)

    @extend_schema(request=ClinicalInfoSerializer, responses=ClinicalInfoSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def clinical(self, request: Request, pk: str | None = None) -> Response:
        patient = self.get_object()
        if request.method == "POST":
            ser = ClinicalInfoSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            record = services.clinical_info_create(patient=patient, by=request.user, **ser.validated_data)
            return Response(ClinicalInfoSerializer(record, context={"request": request}).data, status=status.HTTP_201_CREATED)
        return Response(ClinicalInfoSerializer(selectors.clinical_info_list(patient=patient), many=True,
                                               context={"request": request}).data)


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
        data = dict(serializer.validated_data)
        if data.pop("patient", serializer.instance.patient) != serializer.instance.patient:
            raise ValidationError({"patient": "an exam cannot move to another patient"})
        serializer.instance = services.exam_update(exam=serializer.instance, by=self.request.user, **data)

    def perform_destroy(self, instance: Exam) -> None:
        services.exam_delete(exam=instance, by=self.request.user)

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
        history = (ScoreOverride.objects.filter(clip=clip).select_related("by", "clip__exam__patient")
                   .order_by("-at", "-pk"))
        return Response(OverrideSerializer(history, many=True, context={"request": request}).data)

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



# --- study administration, export, audit, agreement -------------------------------------------------


def _study_for(request: Request, pk: int) -> tuple[Study, str]:
    """The study and the user's role in it; 404 for non-members so existence does not leak."""
    study = Study.objects.filter(pk=pk).first()
    role = permissions.role_in_study(request.user, study) if study is not None else None
    if study is None or role is None:
        raise Http404("Not found")
    return study, role


class _CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b"" if data is None else str(data).encode()


class _IgnoreFormatParam(DefaultContentNegotiation):
    """``?format=long|wide`` names the export's layout here, not DRF's renderer: errors stay JSON."""

    def select_renderer(self, request: Any, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class StudyExportView(APIView):
    """``GET /api/v1/studies/<id>/export/?level=zone|exam|patient&format=long|wide`` streams a CSV.

    Optional ``model`` (a model version) and ``window_hours`` (blood-gas pairing, default 12);
    ``dictionary=1`` returns the data dictionary instead. Any member may export; researchers
    never receive calendar dates or the study's own patient codes. Every export is audited.
    """

    renderer_classes = [JSONRenderer, _CsvRenderer]
    content_negotiation_class = _IgnoreFormatParam

    @extend_schema(
        parameters=[
            OpenApiParameter("level", str, enum=list(export.LEVELS), default="zone"),
            OpenApiParameter("format", str, enum=list(export.FORMATS), default="long"),
            OpenApiParameter("model", str, description="model version (default: the active one per exam)"),
            OpenApiParameter("window_hours", float, default=export.DEFAULT_WINDOW_HOURS),
            OpenApiParameter("dictionary", bool, description="1: the data dictionary (column, type, unit, meaning)"),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        study, _role = _study_for(request, pk)
        try:
            params = export.parse_export_params(
                request.query_params, identifying=permissions.can_see_identifying(request.user, study))
            dictionary = export.parse_flag(request.query_params, "dictionary")
        except export.ExportParamError as exc:
            raise services.ServiceError(str(exc), code="bad_parameter") from exc
        if dictionary:
            return export.dictionary_http_response(study=study, params=params)
        return export.export_http_response(user=request.user, study=study, params=params,
                                           asgi=isinstance(request._request, ASGIRequest))


class StudyAuditView(APIView):
    """``GET /api/v1/studies/<id>/audit/?action=&user=&since=YYYY-MM-DD&until=YYYY-MM-DD``:
    the study's audit trail, newest first (study admins only; limit/offset paginated)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str, enum=list(AuditAction.values)),
            OpenApiParameter("user", str, description="username of the actor"),
            OpenApiParameter("since", OpenApiTypes.DATE),
            OpenApiParameter("until", OpenApiTypes.DATE),
        ],
        responses=AuditEventSerializer(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        study, role = _study_for(request, pk)
        if role not in permissions.ADMIN_ROLES:
            raise PermissionDenied("Only a study admin can read the audit trail.")
        try:
            events = audit.audit_events(study=study, query=request.query_params)
        except audit.AuditFilterError as exc:
            raise services.ServiceError(str(exc), code="bad_filter") from exc
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)


class StudyAgreementView(APIView):
    """``GET /api/v1/studies/<id>/agreement/?rater=<rater>&model=<version>``: AI-vs-rater agreement
    (accuracy, within-1, quadratic weighted kappa, 4x4 confusion [rater][model], n)."""

    @extend_schema(parameters=[OpenApiParameter("rater", str), OpenApiParameter("model", str)],
                   responses=AgreementSerializer)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = _study_for(request, pk)
        try:
            report = selectors.agreement_report(study=study, rater=request.query_params.get("rater"),
                                                model=request.query_params.get("model"))
        except selectors.AgreementQueryError as exc:
            raise services.ServiceError(str(exc), code="bad_parameter") from exc
        return Response(report)


class StudyArchiveView(APIView):
    """``POST /api/v1/studies/<id>/archive/ {"archived": true|false}`` (study admins)."""

    @extend_schema(request=ArchiveSerializer, responses=StudySerializer)
    def post(self, request: Request, pk: int) -> Response:
        study, _role = _study_for(request, pk)
        ser = ArchiveSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        study = services.study_set_archived(study=study, archived=ser.validated_data["archived"], by=request.user)
        return Response(StudySerializer(study, context={"request": request}).data)


class StudyMemberView(APIView):
    """``PATCH /api/v1/studies/<id>/members/<username>/ {"role": ...}`` changes a role;
    ``DELETE`` removes the member (study admins; a study keeps at least one study admin)."""

    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, pk: int, username: str) -> Response:
        study, _role = _study_for(request, pk)
        ser = MemberRoleSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        permissions.require_admin(request.user, study)
        if not Membership.objects.filter(study=study, user__username=username).exists():
            raise services.ServiceError(f"{username!r} is not a member of this study", code="not_member")
        membership, _created = services.membership_set(study=study, username=username, by=request.user,
                                                       role=ser.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, username: str) -> Response:
        study, _role = _study_for(request, pk)
        services.membership_remove(study=study, username=username, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
