"""Acknowledging an alert (a comment is required, audited, once) and the alerts API: the state
filter, who sees what, who may acknowledge, and the study's rules."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from lusweb.errors import ServiceError
from patients.alerts.models import Alert, AlertRule, AlertState
from patients.alerts.services import alert_acknowledge, alerts_evaluate_gas
from patients.audit.models import AuditAction, AuditEvent
from tests.factories import BloodGasFactory, MembershipFactory, UserFactory
from tests.patients.alerts.cohort import Cohort, cohort

pytestmark = pytest.mark.django_db


def two_alerts(c: Cohort) -> list[Alert]:
    return [alerts_evaluate_gas(gas_id=BloodGasFactory(patient=c.patient, pao2_mmhg=p, fio2=0.5).pk)[0]
            for p in (120.0, 90.0)]  # P/F 240 and 180


def test_acknowledging_needs_a_comment_and_is_audited_once() -> None:
    c = cohort()
    alert, _ = two_alerts(c)
    for blank in ("", "   "):
        with pytest.raises(ServiceError) as refused:
            alert_acknowledge(alert=alert, by=c.clinician, comment=blank)
        assert refused.value.code == "missing_comment"
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN and not AuditEvent.objects.filter(action=AuditAction.UPDATE).exists()
    done = alert_acknowledge(alert=alert, by=c.clinician, comment="  FiO2 raised, gas repeated in 1 h ")
    assert (done.state, done.acknowledged_by, done.comment) == ("acknowledged", c.clinician,
                                                                "FiO2 raised, gas repeated in 1 h")
    assert done.acknowledged_at is not None
    [event] = AuditEvent.objects.filter(action=AuditAction.UPDATE, object_type="alert")
    assert (event.actor, event.object_id) == (c.clinician, str(alert.pk))
    assert event.changes["state"] == {"old": "open", "new": "acknowledged"}
    assert event.changes["comment"]["new"] == "FiO2 raised, gas repeated in 1 h"
    with pytest.raises(ServiceError) as again:
        alert_acknowledge(alert=alert, by=c.admin, comment="seen")
    assert (again.value.code, again.value.status) == ("already_acknowledged", 409)


def test_researchers_may_not_acknowledge() -> None:
    c = cohort()
    alert, _ = two_alerts(c)
    with pytest.raises(PermissionDenied):
        alert_acknowledge(alert=alert, by=c.researcher, comment="seen")


def test_the_list_filters_by_state_for_members_only(api_for: Callable[..., Any]) -> None:
    c = cohort()
    first, second = two_alerts(c)
    alert_acknowledge(alert=first, by=c.clinician, comment="treated")
    url = f"/api/v1/studies/{c.study.pk}/alerts/"
    clinician = api_for(c.clinician)
    answer = clinician.get(url, {"state": "open"}).json()
    assert (answer["count"], [a["id"] for a in answer["alerts"]]) == (1, [second.pk])
    row = answer["alerts"][0]
    assert (row["patient_code"], row["kind"], row["message"], row["source"]) == (
        c.patient.code, "pf_ratio", "P/F 180 mmHg, below 300", "blood gas")
    acknowledged = clinician.get(url, {"state": "acknowledged"}).json()["alerts"]
    assert [(a["id"], a["acknowledged_by"], a["comment"]) for a in acknowledged] == [
        (first.pk, c.clinician.username, "treated")]
    assert [a["id"] for a in clinician.get(url).json()["alerts"]] == [second.pk, first.pk]
    assert clinician.get(url, {"state": "closed"}).status_code == 400
    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider)  # a clinician of another study
    assert api_for(outsider).get(url).status_code == 404


def test_researchers_see_codes_and_days_only(api_for: Callable[..., Any]) -> None:
    c = cohort()
    first, _ = two_alerts(c)
    alert_acknowledge(alert=first, by=c.clinician, comment="Mrs Doe called her daughter")
    rows = api_for(c.researcher).get(f"/api/v1/studies/{c.study.pk}/alerts/").json()["alerts"]
    assert [r["patient_code"] for r in rows] == [c.patient.code] * 2
    for row in rows:
        assert not {"created_at", "acknowledged_at", "acknowledged_by", "comment"} & set(row)
        assert "day" in row
    assert c.patient.name not in str(rows)


def test_acknowledge_over_the_api(api_for: Callable[..., Any]) -> None:
    c = cohort()
    alert, _ = two_alerts(c)
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"
    refused = api_for(c.clinician).post(url, {}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "missing_comment"
    assert api_for(c.researcher).post(url, {"comment": "seen"}, format="json").status_code == 403
    assert api_for(UserFactory(username="nobody")).post(url, {"comment": "seen"}, format="json").status_code == 404
    done = api_for(c.admin).post(url, {"comment": "reviewed at the ward round"}, format="json")
    assert done.status_code == 200
    assert (done.json()["state"], done.json()["acknowledged_by"]) == ("acknowledged", c.admin.username)
    again = api_for(c.clinician).post(url, {"comment": "me too"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_acknowledged"


def test_rules_over_the_api(api_for: Callable[..., Any]) -> None:
    c = cohort()
    url = f"/api/v1/studies/{c.study.pk}/alert-rules/"
    rules = api_for(c.clinician).get(url).json()["rules"]
    assert [(r["kind"], r["enabled"], r["threshold"]) for r in rules] == [
        ("zone_worsened", True, 2.0), ("global_score", True, 0.5), ("pf_ratio", True, 300.0),
        ("new_consolidation", True, None)]
    body = {"rules": [{"kind": "pf_ratio", "threshold": 200}, {"kind": "global_score", "enabled": False}]}
    assert api_for(c.clinician).put(url, body, format="json").status_code == 403
    answer = api_for(c.admin).put(url, body, format="json")
    assert answer.status_code == 200
    assert {r["kind"]: (r["enabled"], r["threshold"]) for r in answer.json()["rules"]}["pf_ratio"] == (True, 200.0)
    assert AlertRule.objects.get(study=c.study, kind="global_score").enabled is False
    assert AuditEvent.objects.filter(object_type="alertrule", action=AuditAction.UPDATE).count() == 2
    for bad, code in (({"rules": [{"kind": "pf_ratio", "threshold": 5000}]}, "bad_threshold"),
                      ({"rules": [{"kind": "zone_worsened", "threshold": 1.5}]}, "bad_threshold"),
                      ({"rules": [{"kind": "sepsis"}]}, "bad_kind"),
                      ({"rules": [{"kind": "pf_ratio", "enabled": "yes"}]}, "bad_enabled")):
        refused = api_for(c.admin).put(url, bad, format="json")
        assert (refused.status_code, refused.json()["code"]) == (400, code), bad
    # Nothing half-saved: the refused bodies changed nothing.
    assert AlertRule.objects.get(study=c.study, kind="pf_ratio").threshold == 200.0
    assert AlertRule.objects.get(study=c.study, kind="zone_worsened").threshold == 2.0


def test_the_summary_counts_the_user_s_open_alerts(api_for: Callable[..., Any]) -> None:
    c = cohort()
    first, _ = two_alerts(c)
    assert api_for(c.researcher).get("/api/v1/alerts/summary/").json() == {"open": 2}
    alert_acknowledge(alert=first, by=c.clinician, comment="ok")
    assert api_for(c.clinician).get("/api/v1/alerts/summary/").json() == {"open": 1}
    assert api_for(UserFactory(username="lonely")).get("/api/v1/alerts/summary/").json() == {"open": 0}
