"""Alert writes: evaluating the rules of an exam or a blood gas (raising each alert once), and
acknowledging an alert with a comment. Everything is audited; raising by the system (actor None).

Evaluation is idempotent: an alert is keyed by its study, rule and cause (``Alert.key``: the exam
and zone, the exam, or the gas), so evaluating again raises nothing new. Once an alert's row
commits, the members' pages hear of it (``patients.alerts.live``) and, when its rule says so, the
study's clinicians and admins get an e-mail (``patients.alerts.notify``).
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from lusweb.errors import ServiceError
from patients.alerts.evaluate import Finding, exam_findings, gas_findings
from patients.alerts.live import alert_publish
from patients.alerts.models import Alert, AlertRule, AlertState
from patients.alerts.notify import alert_email
from patients.alerts.rules import study_rules
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.records.models import BloodGas, Exam
from patients.studies import permissions


def _announce(alert: Alert, *, email: bool) -> None:
    alert_publish(alert, "raised")
    if email:
        alert_email(alert)


def _raise(finding: Finding, rule: AlertRule, *, exam: Exam | None = None, gas: BloodGas | None = None) -> Alert | None:
    """The finding's alert, created and audited unless its cause already has one (then None)."""
    patient = exam.patient if exam is not None else gas.patient  # type: ignore[union-attr]
    study = patient.study
    if Alert.objects.filter(study=study, kind=finding.kind, key=finding.key).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                study=study, patient=patient, exam=exam, blood_gas=gas, kind=finding.kind, key=finding.key,
                message=finding.message, source=finding.source,
                details={**finding.details, "rule": {"kind": rule.kind, "threshold": rule.threshold}})
            audit_record(actor=None, action=AuditAction.CREATE, study=study, obj=alert, changes={
                "kind": alert.kind, "key": alert.key, "patient": patient.code, "message": alert.message,
                "source": alert.source, "by": "system"})
    except IntegrityError:  # raised meanwhile by another process
        return None
    transaction.on_commit(lambda: _announce(alert, email=rule.email))
    return alert


def _next_exam(exam: Exam) -> Exam | None:
    """The patient's next exam: its previous record is this one's, so it is checked again too."""
    later = (Exam.objects.filter(patient_id=exam.patient_id, acquired_at__gte=exam.acquired_at).exclude(pk=exam.pk)
             .select_related("patient__study").order_by("acquired_at", "pk"))
    return next((e for e in later if e.acquired_at > exam.acquired_at or e.pk > exam.pk), None)


def alerts_evaluate_exam(*, exam_id: int, follow: bool = True) -> list[Alert]:
    """Check the study's exam rules on the exam's score of record (and, with ``follow``, on the
    patient's next exam, whose comparison this exam is); the alerts newly raised."""
    exam = Exam.objects.select_related("patient__study").filter(pk=exam_id).first()
    if exam is None:
        return []
    rules = study_rules(exam.patient.study)
    raised = [a for f in exam_findings(exam, rules) if (a := _raise(f, rules[f.kind], exam=exam)) is not None]
    following = _next_exam(exam) if follow else None
    if following is not None:
        raised += alerts_evaluate_exam(exam_id=following.pk, follow=False)
    return raised


def alerts_evaluate_gas(*, gas_id: int) -> list[Alert]:
    """Check the study's P/F rule on the blood gas; the alerts newly raised."""
    gas = BloodGas.objects.select_related("patient__study").filter(pk=gas_id).first()
    if gas is None:
        return []
    rules = study_rules(gas.patient.study)
    return [a for f in gas_findings(gas, rules) if (a := _raise(f, rules[f.kind], gas=gas)) is not None]


def alert_acknowledge(*, alert: Alert, by: Any, comment: str) -> Alert:
    """A clinician or study admin acknowledges an open alert with a comment (required); audited."""
    permissions.require_write(by, alert.study)
    comment = (comment or "").strip() if isinstance(comment, str) else ""
    if not comment:
        raise ServiceError("acknowledging an alert needs a comment", code="missing_comment")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.state != AlertState.OPEN:
            raise ServiceError(f"alert {alert.pk} was already acknowledged by "
                               f"{getattr(locked.acknowledged_by, 'username', 'someone')}", code="already_acknowledged",
                               status=409)
        now = timezone.now()
        Alert.objects.filter(pk=alert.pk).update(state=AlertState.ACKNOWLEDGED, acknowledged_by=by,
                                                 acknowledged_at=now, comment=comment)
        audit_record(actor=by, action=AuditAction.UPDATE, study=alert.study, obj=alert, changes={
            "state": {"old": AlertState.OPEN, "new": AlertState.ACKNOWLEDGED}, "comment": {"old": "", "new": comment},
            "kind": alert.kind, "patient": alert.patient.code})
    alert.refresh_from_db()
    transaction.on_commit(lambda: alert_publish(alert, "acknowledged"))
    return alert
