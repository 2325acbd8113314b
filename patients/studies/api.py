"""Study API: studies, members, the caller's roles, archiving and the audit trail."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction, AuditEvent
from patients.audit.selectors import AuditFilterError, audit_events
from patients.studies import permissions, selectors, services
from patients.studies.invite import EMAIL_MAX, member_invite
from patients.studies.models import Membership, Role, Study
from patients.studies.protocols import PROTOCOLS

# --- serializers -------------------------------------------------------------------------------


class StudySerializer(serializers.ModelSerializer[Study]):
    protocol = serializers.ChoiceField(choices=list(PROTOCOLS))
    role = serializers.SerializerMethodField()
    zones = serializers.SerializerMethodField()
    page_url = serializers.CharField(source="get_absolute_url", read_only=True)
    # DICOM receiving (study admins; checked by services.study_update): senders and mapping rules.
    dicom_calling_aets = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                               required=False, help_text="calling AE titles allowed to send")

    class Meta:
        model = Study
        fields = ["id", "name", "protocol", "description", "archived", "deidentify", "keep_original", "created_at",
                  "role", "zones", "page_url", *services.DICOM_SETTINGS]
        read_only_fields = ["archived", "created_at"]

    def get_role(self, obj: Study) -> str | None:
        return permissions.role_in_study(self.context["request"].user, obj)

    def get_zones(self, obj: Study) -> list[str]:
        return list(PROTOCOLS[obj.protocol].codes)


class MemberInputSerializer(serializers.Serializer[Any]):
    """Who to add: an existing ``username``, or an ``email`` - an address no account has creates
    the account and e-mails it a set-password link (as the members page does)."""

    username = serializers.CharField(required=False)
    email = serializers.EmailField(required=False, max_length=EMAIL_MAX)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("username")) == bool(attrs.get("email")):
            raise serializers.ValidationError("give either username or email")
        return attrs


class MemberSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()


class InvitedMemberSerializer(MemberSerializer):
    account_created = serializers.BooleanField(
        help_text="a new account for the e-mail, sent a link to choose its password")


class MemberRoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class ArchiveSerializer(serializers.Serializer[Any]):
    archived = serializers.BooleanField()


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_username", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "changes", "row_count", "ip"]
        read_only_fields = fields


# --- views -------------------------------------------------------------------------------------


class StudyViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    serializer_class = StudySerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Study]:
        return selectors.study_list(user=self.request.user)

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        dicom = {key: data.pop(key) for key in services.DICOM_SETTINGS if key in data}
        with transaction.atomic():  # a refused DICOM setting leaves no study behind
            study = services.study_create(created_by=self.request.user, **data)
            serializer.instance = services.study_update(study=study, by=self.request.user, **dicom) if dicom else study

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = services.study_update(study=serializer.instance, by=self.request.user,
                                                    **serializer.validated_data)

    @extend_schema(request=MemberInputSerializer, responses={200: MemberSerializer(many=True),
                                                            201: InvitedMemberSerializer})
    @action(detail=True, methods=["get", "post"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        study = self.get_object()
        if request.method == "POST":
            data = MemberInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            invited = member_invite(study=study, who=data.validated_data.get("username") or data.validated_data["email"],
                                    role=data.validated_data["role"], by=request.user,
                                    site_url=request.build_absolute_uri("/"))
            body = {**MemberSerializer(invited.membership).data, "account_created": invited.account_created}
            return Response(body, status=status.HTTP_201_CREATED if invited.created else status.HTTP_200_OK)
        permissions.require_read(request.user, study)
        return Response(MemberSerializer(selectors.membership_list(study=study), many=True).data)


class MeView(APIView):
    """The logged-in user and their roles."""

    def get(self, request: Request) -> Response:
        memberships = selectors.memberships_of(user=request.user)
        return Response({
            "username": request.user.username,
            "studies": [{"id": m.study_id, "name": m.study.name, "role": m.role} for m in memberships],
        })


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
        study, role = permissions.visible_study(request.user, pk)
        if role not in permissions.ADMIN_ROLES:
            raise PermissionDenied("Only a study admin can read the audit trail.")
        try:
            events = audit_events(study=study, query=request.query_params)
        except AuditFilterError as exc:
            raise ServiceError(str(exc), code="bad_filter") from exc
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)


class StudyArchiveView(APIView):
    """``POST /api/v1/studies/<id>/archive/ {"archived": true|false}`` (study admins)."""

    @extend_schema(request=ArchiveSerializer, responses=StudySerializer)
    def post(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        ser = ArchiveSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        study = services.study_set_archived(study=study, archived=ser.validated_data["archived"], by=request.user)
        return Response(StudySerializer(study, context={"request": request}).data)


class StudyMemberView(APIView):
    """``PATCH /api/v1/studies/<id>/members/<username>/ {"role": ...}`` changes a role;
    ``DELETE`` removes the member (study admins; a study keeps at least one study admin)."""

    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, pk: int, username: str) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        ser = MemberRoleSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        permissions.require_admin(request.user, study)
        if not Membership.objects.filter(study=study, user__username=username).exists():
            raise ServiceError(f"{username!r} is not a member of this study", code="not_member")
        membership, _created = services.membership_set(study=study, username=username, by=request.user,
                                                       role=ser.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, username: str) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        services.membership_remove(study=study, username=username, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- routes (assembled by lusweb.api_urls) -------------------------------------------------------

router = SimpleRouter()
router.register("studies", StudyViewSet, basename="study")

urlpatterns = [
    path("me/", MeView.as_view(), name="api-me"),
    path("studies/<int:pk>/audit/", StudyAuditView.as_view(), name="api-study-audit"),
    path("studies/<int:pk>/archive/", StudyArchiveView.as_view(), name="api-study-archive"),
    path("studies/<int:pk>/members/<str:username>/", StudyMemberView.as_view(), name="api-study-member"),
]
