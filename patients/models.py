"""The app's model entry point: Django loads the ``patients`` models from here.

Each model lives in its capability's ``models`` module (``patients.records.models`` ...), which is
what code imports; this module only imports them all so that Django registers them with the
``patients`` app (label and tables unchanged).
"""
from __future__ import annotations

from patients.alerts.models import Alert, AlertKind, AlertRule, AlertState
from patients.audit.models import AuditAction, AuditEvent
from patients.dashboards.models import PageChange
from patients.imaging.models import ZoneClip
from patients.readings.models import BlindRead, ExamSignature, ReadingSource, ZoneReading
from patients.receiving.models import InboxItem, InboxState, ReceivedVia
from patients.records.models import BloodGas, ClinicalInfo, Exam, GasUnit, OxygenSupport, Patient, Sex
from patients.studies.models import Membership, Role, Study

__all__ = [
    "Alert", "AlertKind", "AlertRule", "AlertState", "InboxItem", "InboxState", "ReceivedVia",
    "AuditAction", "AuditEvent", "BlindRead", "BloodGas", "ClinicalInfo", "Exam", "ExamSignature", "GasUnit",
    "Membership", "OxygenSupport", "PageChange", "Patient", "ReadingSource", "Role", "Sex", "Study", "ZoneClip", "ZoneReading",
]
