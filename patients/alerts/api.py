"""Alerts API: a study's alerts (``GET /api/v1/studies/<id>/alerts/?state=open``, its members),
acknowledging one (``POST /api/v1/alerts/<id>/acknowledge/ {"comment"}``, clinicians and study
admins: 400 without a comment, 409 when already acknowledged), the study's rules
(``GET``/``PUT /api/v1/studies/<id>/alert-rules/``: members read them, study admins set them) and
the user's open count (``GET /api/v1/alerts/summary/``, the header badge's fallback).

Researchers see the patient's code and days since day 0, never dates, nor who acknowledged an
alert or their comment (free text).
"""
from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from lusweb.errors import ServiceError
from patients.alerts import rules as alert_rules
from patients.alerts import selectors, services
from patients.alerts.models import Alert, AlertKind, AlertState
from patients.records import chrono
from patients.studies import permissions

router = SimpleRouter()


def alert_json(alert: Alert, *, dates: bool, clock: chrono.PatientClock | None = None) -> dict[str, Any]:
    """An alert as the API and the live page show it (``dates``: the user may see calendar dates)."""
    row: dict[str, Any] = {
        "id": alert.pk, "study": alert.study_id, "patient": alert.patient_id, "patient_code": alert.patient.code,
        "exam": alert.exam_id, "blood_gas": alert.blood_gas_id, "kind": alert.kind,
        "rule": AlertKind(alert.kind).label, "message": alert.message, "source": alert.source,
        "details": alert.details, "state": alert.state,
    }
    if dates:
        row.update({"created_at": alert.created_at.isoformat(), "acknowledged_at":
                    alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
                    "acknowledged_by": getattr(alert.acknowledged_by, "username", None), "comment": alert.comment})
    else:
        row["day"] = clock.day(alert.created_at) if clock is not None else None
    return row


class StudyAlertsAPI(APIView):
    """The study's alerts, newest first; ``?state=open`` or ``?state=acknowledged``."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        state = request.query_params.get("state") or None
        if state is not None and state not in AlertState.values:
            raise ValidationError({"state": f"{state!r} is not one of {AlertState.values}"})
        dates = permissions.can_see_identifying(request.user, study)
        clocks = {} if dates else chrono.study_clocks(study_id=study.pk, shows_dates=False)
        rows = [alert_json(a, dates=dates, clock=clocks.get(a.patient_id))
                for a in selectors.study_alerts(study, state=state)]
        return Response({"study": study.pk, "state": state, "count": len(rows), "alerts": rows})


class AlertAcknowledgeAPI(APIView):
    """Acknowledge an open alert with a comment (clinicians and study admins)."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, pk: int) -> Response:
        alert = Alert.objects.select_related("study", "patient", "acknowledged_by").filter(pk=pk).first()
        if alert is None:
            raise Http404("Not found")
        permissions.role_or_404(request.user, alert.study)
        data = request.data if isinstance(request.data, dict) else {}
        alert = services.alert_acknowledge(alert=alert, by=request.user, comment=data.get("comment", ""))
        return Response(alert_json(alert, dates=True))


class StudyAlertRulesAPI(APIView):
    """The study's four rules (created with their defaults when first asked); PUT ``{"rules": [{"kind",
    "enabled", "threshold", "email"}, ...]}`` (or the list itself) sets them (study admins)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        return Response(self._answer(study.pk, alert_rules.study_rules(study)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request, pk: int) -> Response:
        study, _role = permissions.visible_study(request.user, pk)
        data = request.data
        items = data.get("rules") if isinstance(data, dict) else data
        if items is None:
            raise ServiceError('expected {"rules": [{"kind", "enabled", "threshold", "email"}, ...]}',
                               code="bad_rules")
        rules = alert_rules.alert_rules_update(study=study, by=request.user, rules=items)
        return Response(self._answer(study.pk, rules))

    @staticmethod
    def _answer(study_id: int, rules: dict[str, Any]) -> dict[str, Any]:
        return {"study": study_id, "rules": [alert_rules.rule_json(r) for r in rules.values()]}


class AlertSummaryAPI(APIView):
    """The user's open alerts over their studies (the header badge's count)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response({"open": selectors.user_open_count(request.user)})


urlpatterns: list[Any] = [
    path("studies/<int:pk>/alerts/", StudyAlertsAPI.as_view(), name="api-study-alerts"),
    path("studies/<int:pk>/alert-rules/", StudyAlertRulesAPI.as_view(), name="api-study-alert-rules"),
    path("alerts/summary/", AlertSummaryAPI.as_view(), name="api-alert-summary"),
    path("alerts/<int:pk>/acknowledge/", AlertAcknowledgeAPI.as_view(), name="api-alert-acknowledge"),
]
