"""Receiving's API: the study inbox (``/api/v1/studies/<id>/inbox/``, ``/api/v1/inbox/<id>/assign/``
and ``.../discard/``) and DICOMweb (STOW-RS and QIDO-RS under ``/dicomweb/``, routed by
``patients.receiving.urls``), all with the API's token or session authentication."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from lusweb.errors import ServiceError
from patients.receiving import dicomweb, inbox, inbox_selectors, qido
from patients.receiving.models import InboxItem
from patients.records.models import Exam, Patient
from patients.studies import permissions


class InboxItemSerializer(serializers.ModelSerializer[InboxItem]):
    class Meta:
        model = InboxItem
        fields = ["id", "study", "state", "reason", "received_at", "received_via", "calling_aet", "size_bytes",
                  "sop_class_uid", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
                  "patient_identifier", "series_description", "image_comments", "zone_hint", "acquired_at",
                  "patient", "exam", "clip", "resolved_at"]


class AssignInputSerializer(serializers.Serializer[Any]):
    patient = serializers.IntegerField()
    exam = serializers.IntegerField(required=False, allow_null=True, default=None)
    exam_acquired_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    zone = serializers.CharField(max_length=8)
    replace = serializers.BooleanField(required=False, default=False)


def writable_item(request: Request, pk: int) -> InboxItem:
    """The item for a writer of its study: 404 for outsiders, 403 for researchers."""
    item = inbox_selectors.inbox_item_for(user=request.user, pk=pk)
    permissions.require_write(request.user, item.study)
    return item


def assign_targets(item: InboxItem, data: dict[str, Any]) -> tuple[Patient, Exam | None]:
    """The chosen patient and exam, of the item's study only (the same refusal whether missing or not)."""
    patient = Patient.objects.filter(pk=data["patient"], study_id=item.study_id).first()
    if patient is None:
        raise ServiceError("no such patient in this study", code="bad_patient")
    exam = None
    if data.get("exam") is not None:
        exam = Exam.objects.filter(pk=data["exam"], patient=patient).first()
        if exam is None:
            raise ServiceError("no such exam of this patient", code="bad_exam")
    return patient, exam


class StudyInboxAPI(APIView):
    """The study's received instances waiting for a clinician to assign them (writers only)."""

    @extend_schema(responses=InboxItemSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        if _role not in permissions.WRITE_ROLES:
            raise PermissionDenied("Researchers do not see received instances before they are filed.")
        items = inbox_selectors.inbox_waiting(study=study)
        return Response({"study": study.pk, "count": items.count(),
                         "items": InboxItemSerializer(items, many=True).data})


class InboxAssignAPI(APIView):
    """Assign a waiting instance to a patient, an exam (or a new exam at ``exam_acquired_at``) and a
    zone; it then goes through the upload's ingest (202, the clip pending its check)."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=AssignInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        item = writable_item(request, pk)
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patient, exam = assign_targets(item, data.validated_data)
        clip = inbox.inbox_item_assign(item=item, patient=patient, exam=exam, zone=data.validated_data["zone"],
                                       exam_acquired_at=data.validated_data["exam_acquired_at"],
                                       replace=data.validated_data["replace"], by=request.user)
        item.refresh_from_db()
        return Response({"item": InboxItemSerializer(item).data,
                         "clip": {"id": clip.pk, "exam": clip.exam_id, "zone": clip.zone, "status": clip.status}},
                        status=202, headers={"Location": f"/api/v1/clips/{clip.pk}/"})


class InboxDiscardAPI(APIView):
    """Discard a waiting instance: its held file is removed."""

    @extend_schema(request=None, responses=InboxItemSerializer)
    def post(self, request: Request, pk: int) -> Response:
        item = inbox.inbox_item_discard(item=writable_item(request, pk), by=request.user)
        return Response(InboxItemSerializer(item).data)


# --- DICOMweb -------------------------------------------------------------------------------------


class DicomJSONRenderer(JSONRenderer):
    media_type = "application/dicom+json"
    format = "dicomjson"


class _DicomWeb(APIView):
    renderer_classes = [DicomJSONRenderer, JSONRenderer]

    def study_param(self, request: Request) -> int | None:
        raw = request.query_params.get("study")
        if raw in (None, ""):
            return None
        if not str(raw).isdigit():
            raise ServiceError("study must be a study id", code="bad_study")
        permissions.visible_study(request.user, int(str(raw)))
        return int(str(raw))


class StowAPI(_DicomWeb):
    """STOW-RS: ``multipart/related; type="application/dicom"`` instances into a study
    (``?study=<id>`` when the user writes to more than one); ``/dicomweb/studies/<uid>``: every
    instance must belong to that DICOM study."""

    @extend_schema(operation_id="dicomweb_study_store", request=OpenApiTypes.BINARY, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, uid: str | None = None) -> Response:
        return self.stow(request, uid)

    def stow(self, request: Request, uid: str | None) -> Response:
        study_uid = dicomweb.study_uid_checked(uid) if uid is not None else None
        content_type = request.META.get("CONTENT_TYPE", "")
        dicomweb.boundary_of(content_type)  # 415 before reading the body
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > dicomweb.body_limit():
            raise ServiceError("the request is larger than the upload limit; send fewer instances at a time",
                               code="too_large", status=413)
        status, answer, outcomes = dicomweb.stow(user=request.user, content_type=content_type,
                                                 body=request._request.body, study_uid=study_uid,
                                                 study_param=request.query_params.get("study"))
        headers = {}
        notes = [o.message for o in outcomes if o.message] + (
            [f"{n} instance(s) wait in the study inbox for assignment"]
            if (n := sum(o.kind == "inbox" for o in outcomes)) else [])
        if notes:
            headers["Warning"] = ", ".join('299 lusweb "' + n.replace('"', "'").encode("ascii", "replace")
                                           .decode()[:200] + '"' for n in notes[:20])
        return Response(answer, status=status, headers=headers)


class StudiesAPI(StowAPI):
    """``/dicomweb/studies``: QIDO-RS (GET, the user's exams as DICOM studies) and STOW-RS (POST)."""

    @extend_schema(operation_id="dicomweb_studies_store", request=OpenApiTypes.BINARY, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, uid: str | None = None) -> Response:
        return self.stow(request, None)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(qido.studies_search(user=request.user, params=dict(request.query_params.lists()),
                                            study=self.study_param(request)))


class QidoSeriesAPI(_DicomWeb):
    """QIDO-RS: series of the user's studies (all, or of one Study Instance UID: 404 when it is not theirs)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, uid: str | None = None) -> Response:
        params = dict(request.query_params.lists())
        study = self.study_param(request)
        if uid is not None:
            uid = dicomweb.study_uid_checked(uid)
            if not qido.exams_matching(user=request.user, match={"StudyInstanceUID": uid}, study=study).exists():
                raise Http404("Not found")
        return Response(qido.series_search(user=request.user, params=params, study_uid=uid, study=study))


router = SimpleRouter()

urlpatterns: list[Any] = [
    path("studies/<int:pk>/inbox/", StudyInboxAPI.as_view(), name="api-study-inbox"),
    path("inbox/<int:pk>/assign/", InboxAssignAPI.as_view(), name="api-inbox-assign"),
    path("inbox/<int:pk>/discard/", InboxDiscardAPI.as_view(), name="api-inbox-discard"),
]
