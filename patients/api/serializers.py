"""API representations. Identifying patient fields are removed for roles that may not see them,
and so are calendar dates: researchers get days since the patient's day 0 instead
(:mod:`patients.chrono`, the export's convention)."""
from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from rest_framework import serializers

from patients import chrono, permissions, selectors
from patients.models import (
    AuditEvent,
    BloodGas,
    ClinicalInfo,
    Exam,
    GasUnit,
    Patient,
    Role,
    ScoreOverride,
    Study,
    ZoneClip,
)
from patients.protocols import PROTOCOLS


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


class StudySerializer(serializers.ModelSerializer[Study]):
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS))
    role = serializers.SerializerMethodField()
    zones = serializers.SerializerMethodField()
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = Study
        fields = ["id", "name", "protocol", "description", "archived", "deidentify", "keep_original", "created_at",
                  "role", "zones", "page_url"]
        read_only_fields = ["archived", "created_at"]

    def get_role(self, obj: Study) -> str | None:
        return permissions.role_in_study(self.context["request"].user, obj)

    def get_zones(self, obj: Study) -> list[str]:
        return list(PROTOCOLS[obj.protocol].codes)


class MemberInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()


class PatientSerializer(PatientTimeMixin, serializers.ModelSerializer[Patient]):
    HIDDEN_DATES = ("created_at", "admission_date")
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "study" in self.fields:
            # Only the user's own studies are valid targets: others look nonexistent.
            self.fields["study"].queryset = selectors.study_list(user=request.user)  # type: ignore[attr-defined]

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


class ExamSerializer(PatientTimeMixin, serializers.ModelSerializer[Exam]):
    TIME_FIELD = "acquired_at"
    # Free text (clinicians write names, dates and places in it) and the operator's name, which
    # DICOM's de-identification profile removes too (Operators' Name).
    HIDDEN_FIELDS = ("notes", "operator")
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS), required=False)
    zones = serializers.SerializerMethodField()
    missing_zones = serializers.SerializerMethodField()
    clips = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()
    severity = serializers.SerializerMethodField()
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "patient" in self.fields:
            self.fields["patient"].queryset = selectors.patient_list(user=request.user)  # type: ignore[attr-defined]

    class Meta:
        model = Exam
        fields = ["id", "patient", "acquired_at", "protocol", "device", "probe", "operator", "notes",
                  "created_at", "zones", "missing_zones", "clips", "scores", "severity", "page_url"]
        read_only_fields = ["created_at"]

    def get_zones(self, obj: Exam) -> list[str]:
        return list(obj.zone_codes)

    def get_missing_zones(self, obj: Exam) -> list[str]:
        present = {c.zone for c in obj.clips.all()}
        return [z for z in obj.zone_codes if z not in present]

    def get_scores(self, obj: Exam) -> dict[str, Any]:
        from scoring.selectors import exam_scores_payload

        return exam_scores_payload(exam=obj)

    def get_severity(self, obj: Exam) -> dict[str, Any] | None:
        from scoring.severity import severity_payload

        return severity_payload(exam=obj)

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


class MemberRoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class ArchiveSerializer(serializers.Serializer[Any]):
    archived = serializers.BooleanField()


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


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_username", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "changes", "row_count", "ip"]
        read_only_fields = fields


class AgreementSerializer(serializers.Serializer[Any]):
    study = serializers.IntegerField()
    rater = serializers.CharField()
    model = serializers.CharField()
    raters = serializers.ListField(child=serializers.CharField())
    models = serializers.ListField(child=serializers.CharField())
    n = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    within1 = serializers.FloatField(allow_null=True)
    qwk = serializers.FloatField(allow_null=True)
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
