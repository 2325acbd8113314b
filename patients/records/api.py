"""Records API: patients (with blood gases and clinical records) and the exam resource's CRUD.

Identifying patient fields are removed for roles that may not see them, and so are calendar
dates: researchers get days since the patient's day 0 instead (:mod:`patients.records.chrono`,
the export's convention). The exam resource is routed by the dashboards, which add its scores.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.records import chrono, selectors, services
from patients.records.models import BloodGas, ClinicalInfo, Exam, GasUnit, Patient
from patients.studies import permissions
from patients.studies.models import Study
from patients.studies.protocols import PROTOCOLS
from patients.studies.selectors import study_list


def query_int(request: Request, name: str) -> int | None:
    """An optional integer id from the query string; 400 names the parameter when it is not one."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({name: f"{raw!r} is not an integer id"}) from None


# --- serializers -------------------------------------------------------------------------------


class PatientTimeMixin:
    """Replaces a patient's calendar times by days since day 0 for users who may not see dates.

    ``TIME_FIELD`` (the moment the row describes) becomes ``day``; ``HIDDEN_DATES`` (other dates,
    e.g. when the row was entered, which sits next to the moment) are dropped. Clocks are cached
    per patient in the serializer context, so a list costs at most one query per patient.
    """

    TIME_FIELD: ClassVar[str] = ""
    HIDDEN_DATES: ClassVar[tuple[str, ...]] = ("created_at",)
    HIDDEN_FIELDS: ClassVar[tuple[str, ...]] = ()  # other fields that may identify the patient
    context: dict[str, Any]

    def patient_of(self, instance: Any) -> Patient:
        return instance.patient  # type: ignore[no-any-return]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.hide_dates(instance, super().to_representation(instance))  # type: ignore[misc]  # a mixin: the serializer comes next in the MRO

    def hide_dates(self, instance: Any, data: dict[str, Any]) -> dict[str, Any]:
        request = self.context.get("request")
        patient = self.patient_of(instance)
        if request is not None and permissions.can_see_identifying(request.user, patient.study_id):
            return data
        clocks: dict[int, chrono.PatientClock] = self.context.setdefault("_lusweb_clocks", {})
        if patient.pk not in clocks:
            clocks[patient.pk] = chrono.clock_for(user=None, patient=patient, shows_dates=False)
        for name in self.HIDDEN_DATES + self.HIDDEN_FIELDS:
            data.pop(name, None)
        if self.TIME_FIELD:
            at: dt.datetime | None = getattr(instance, self.TIME_FIELD)
            data.pop(self.TIME_FIELD, None)
            data["day"] = clocks[patient.pk].day(at) if at is not None else None
            data["day_zero"] = clocks[patient.pk].origin_kind or None
        return data


class PatientSerializer(PatientTimeMixin, serializers.ModelSerializer[Patient]):
    HIDDEN_DATES = ("created_at", "admission_date")
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "study" in self.fields:
            # Only the user's own studies are valid targets: others look nonexistent.
            self.fields["study"].queryset = study_list(user=request.user)  # type: ignore[attr-defined]

    class Meta:
        model = Patient
        fields = ["id", "study", "code", "sex", "birth_year", "admission_date", "name", "hospital_number",
                  "created_at", "page_url"]
        read_only_fields = ["created_at"]
        # Uniqueness is checked by the service, which names the clashing code and study.
        validators: list[object] = []

    def to_representation(self, instance: Patient) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not permissions.can_see_identifying(request.user, instance.study_id):
            for field in Patient.IDENTIFYING_FIELDS:
                data.pop(field, None)
        return data

    def patient_of(self, instance: Any) -> Patient:
        return instance  # type: ignore[no-any-return]


class ExamSerializer(PatientTimeMixin, serializers.ModelSerializer[Exam]):
    TIME_FIELD = "acquired_at"
    # Free text (clinicians write names, dates and places in it) and the operator's name, which
    # DICOM's de-identification profile removes too (Operators' Name).
    HIDDEN_FIELDS = ("notes", "operator")
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS), required=False)
    # Write: the explicit choice an exam of a protocol other than the study's default needs.
    # Read: whether the exam's protocol is not the study's default.
    other_protocol = serializers.BooleanField(required=False, default=False)
    zones = serializers.SerializerMethodField()
    missing_zones = serializers.SerializerMethodField()
    clips = serializers.SerializerMethodField()
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "patient" in self.fields:
            self.fields["patient"].queryset = selectors.patient_list(user=request.user)  # type: ignore[attr-defined]

    class Meta:
        model = Exam
        fields = ["id", "patient", "acquired_at", "protocol", "other_protocol", "device", "probe", "operator", "notes",
                  "created_at", "zones", "missing_zones", "clips", "page_url"]
        read_only_fields = ["created_at"]

    def get_zones(self, obj: Exam) -> list[str]:
        return list(obj.zone_codes)

    def get_missing_zones(self, obj: Exam) -> list[str]:
        present = {c.zone for c in obj.clips.all()}
        return [z for z in obj.zone_codes if z not in present]

    def get_clips(self, obj: Exam) -> list[dict[str, Any]]:
        return [
            {"id": c.pk, "zone": c.zone, "frame_count": c.frame_count, "page_url": c.get_absolute_url()}
            for c in obj.clips.all()
        ]


class BloodGasSerializer(PatientTimeMixin, serializers.ModelSerializer[BloodGas]):
    TIME_FIELD = "sampled_at"
    unit = serializers.ChoiceField(choices=GasUnit.choices, default=GasUnit.MMHG, write_only=True)
    paco2 = serializers.FloatField(required=False, allow_null=True, write_only=True)
    pao2 = serializers.FloatField(required=False, allow_null=True, write_only=True)
    pf_ratio = serializers.FloatField(read_only=True)

    class Meta:
        model = BloodGas
        fields = ["id", "sampled_at", "unit", "paco2", "pao2", "paco2_mmhg", "pao2_mmhg", "ph", "hco3",
                  "lactate", "sao2", "fio2", "pf_ratio", "unit_entered", "created_at"]
        read_only_fields = ["paco2_mmhg", "pao2_mmhg", "unit_entered", "created_at"]


class ClinicalInfoSerializer(PatientTimeMixin, serializers.ModelSerializer[ClinicalInfo]):
    TIME_FIELD = "recorded_at"

    class Meta:
        model = ClinicalInfo
        exclude = ["patient"]
        read_only_fields = ["created_at"]


# --- views -------------------------------------------------------------------------------------


class PatientViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = PatientSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Patient]:
        return selectors.patient_list(user=self.request.user, study=query_int(self.request, "study"))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient = self.get_object()
        if permissions.can_see_identifying(request.user, patient.study_id):
            audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=patient.study,
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
            audit_record(actor=request.user, action=AuditAction.VIEW_IDENTIFYING, study=study,
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
        return _patient_rows(request, self.get_object(), BloodGasSerializer, create=services.blood_gas_create,
                             rows=selectors.blood_gas_list)

    @extend_schema(request=ClinicalInfoSerializer, responses=ClinicalInfoSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def clinical(self, request: Request, pk: str | None = None) -> Response:
        return _patient_rows(request, self.get_object(), ClinicalInfoSerializer,
                             create=services.clinical_info_create, rows=selectors.clinical_info_list)


def _patient_rows(request: Request, patient: Patient, serializer: type[serializers.ModelSerializer[Any]], *,
                  create: Callable[..., Any], rows: Callable[..., Any]) -> Response:
    """A patient's rows of one kind: GET lists them, POST validates one and creates it (201)."""
    if request.method == "POST":
        ser = serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        row = create(patient=patient, by=request.user, **ser.validated_data)
        return Response(serializer(row, context={"request": request}).data, status=status.HTTP_201_CREATED)
    return Response(serializer(rows(patient=patient), many=True, context={"request": request}).data)


# The exam resource's CRUD; ``patients.dashboards.api`` routes it, with the exam's scores. (No
# docstring: the schema would take it as the description of every operation.)
class ExamViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = ExamSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Exam]:
        exams = selectors.exam_list(user=self.request.user, patient=query_int(self.request, "patient"))
        # A list prefetches the clips of all its exams at once; one exam reads its own when asked
        # (an exam answered from the dashboards' cache reads none).
        return exams.prefetch_related("clips") if self.action == "list" else exams

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


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns: list[Any] = []
