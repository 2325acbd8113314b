"""A study's alert rules: the defaults (created lazily, all four enabled), reading them and
changing them (study admins, audited).

=====================  =========  ==========================================================
rule                   default    fires when
=====================  =========  ==========================================================
``zone_worsened``      2 points   a zone's record score is >= N points above the same zone's
                                  record at the patient's previous exam (the zone in both)
``global_score``       0.5        LUSS / (3 x the protocol's zones) > the threshold, every
                                  zone of the protocol scored (full coverage only)
``pf_ratio``           300 mmHg   a blood gas's PaO2/FiO2 < the threshold (Berlin: 300 mild,
                                  200 moderate, 100 severe)
``new_consolidation``  -          a zone has consolidation on its record and did not at the
                                  patient's previous exam (see ``patients.alerts.evaluate``)
=====================  =========  ==========================================================
"""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from lusweb.errors import ServiceError
from patients.alerts.models import AlertKind, AlertRule
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.studies import permissions
from patients.studies.models import Study

#: kind -> (default threshold, lowest, highest, words for its unit)
THRESHOLDS: dict[str, tuple[float | None, float, float, str]] = {
    AlertKind.ZONE_WORSENED: (2.0, 1.0, 3.0, "points"),
    AlertKind.GLOBAL_SCORE: (0.5, 0.0, 1.0, "of the maximum"),
    AlertKind.PF_RATIO: (300.0, 50.0, 500.0, "mmHg"),
    AlertKind.NEW_CONSOLIDATION: (None, 0.0, 0.0, ""),
}
KINDS: tuple[str, ...] = tuple(THRESHOLDS)


def study_rules(study: Study) -> dict[str, AlertRule]:
    """kind -> the study's rule of that kind, the missing ones created with their defaults."""
    rules = {r.kind: r for r in AlertRule.objects.filter(study=study)}
    for kind in KINDS:
        if kind not in rules:
            try:
                with transaction.atomic():
                    rules[kind] = AlertRule.objects.create(study=study, kind=kind, threshold=THRESHOLDS[kind][0])
            except IntegrityError:  # created meanwhile by another process
                rules[kind] = AlertRule.objects.get(study=study, kind=kind)
    return {kind: rules[kind] for kind in KINDS}


def rule_json(rule: AlertRule) -> dict[str, Any]:
    return {"kind": rule.kind, "label": AlertKind(rule.kind).label, "enabled": rule.enabled,
            "threshold": rule.threshold, "email": rule.email, "unit": THRESHOLDS[rule.kind][3]}


def _threshold(kind: str, value: Any) -> float | None:
    default, low, high, unit = THRESHOLDS[kind]
    if default is None:
        if value not in (None, ""):
            raise ServiceError(f"rule {kind} has no threshold", code="bad_threshold")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServiceError(f"threshold of {kind}: {value!r} is not a number", code="bad_threshold") from None
    if isinstance(value, bool) or not low <= number <= high or number != number:
        raise ServiceError(f"threshold of {kind} must be between {low:g} and {high:g} {unit}".rstrip(),
                           code="bad_threshold")
    if kind == AlertKind.ZONE_WORSENED and number != int(number):
        raise ServiceError("threshold of zone_worsened is a whole number of points (1-3)", code="bad_threshold")
    return number


def _flag(kind: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ServiceError(f"{name} of {kind} must be true or false", code=f"bad_{name}")
    return value


def alert_rules_update(*, study: Study, by: Any, rules: list[dict[str, Any]]) -> dict[str, AlertRule]:
    """A study admin sets rules: ``[{"kind", "enabled"?, "threshold"?, "email"?}, ...]`` (kinds not
    given stay as they are). All checked before anything is saved; audited with old and new values."""
    permissions.require_admin(by, study)
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ServiceError("rules must be a list of objects {kind, enabled, threshold, email}", code="bad_rules")
    current = study_rules(study)
    wanted: dict[str, dict[str, Any]] = {}
    for item in rules:
        kind = item.get("kind")
        if kind not in current:
            raise ServiceError(f"unknown rule {kind!r}; known: {', '.join(KINDS)}", code="bad_kind")
        rule = current[kind]
        unknown = sorted(set(item) - {"kind", "enabled", "threshold", "email", "label", "unit"})
        if unknown:
            raise ServiceError(f"unknown fields of rule {kind}: {', '.join(unknown)}", code="bad_rules")
        wanted[kind] = {
            "enabled": _flag(kind, "enabled", item.get("enabled", rule.enabled)),
            "threshold": _threshold(kind, item["threshold"]) if "threshold" in item else rule.threshold,
            "email": _flag(kind, "email", item.get("email", rule.email)),
        }
    with transaction.atomic():
        for kind, values in wanted.items():
            rule = current[kind]
            changes = {k: {"old": getattr(rule, k), "new": v} for k, v in values.items() if getattr(rule, k) != v}
            if changes:
                AlertRule.objects.filter(pk=rule.pk).update(**values)
                for k, v in values.items():
                    setattr(rule, k, v)
                audit_record(actor=by, action=AuditAction.UPDATE, study=study, obj=rule,
                             changes={"kind": kind, **changes})
    return current
