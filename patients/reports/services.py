"""Exam report exports: one call per download, audited (``AuditAction.EXPORT``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lusweb.errors import ServiceError
from patients.audit.models import AuditAction
from patients.audit.services import audit_record
from patients.records.models import Exam
from patients.reports.content import exam_report
from patients.reports.fhir import exam_fhir
from patients.reports.pdf import exam_pdf
from patients.reports.sr import exam_sr
from patients.studies import permissions

#: format -> (content type, file extension, maker).
FORMATS = {
    "pdf": ("application/pdf", "pdf", exam_pdf),
    "sr": ("application/dicom", "dcm", exam_sr),
    "fhir": ("application/fhir+json", "fhir.json", exam_fhir),
}


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    content_type: str
    filename: str


def report_export(*, exam: Exam, user: Any, fmt: str) -> ReportFile:
    """The exam's report in ``fmt`` (pdf, sr, fhir) as ``user`` may see it, audited as an export.
    Refuses (``bad_format``) another format; the caller has made sure the user may read the exam."""
    if fmt not in FORMATS:
        raise ServiceError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}", code="bad_format")
    permissions.require_read(user, exam.study)
    content_type, extension, make = FORMATS[fmt]
    report = exam_report(exam=exam, user=user)
    content = make(report)
    audit_record(actor=user, action=AuditAction.EXPORT, study=exam.study, obj=exam, changes={
        "report": fmt, "review_status": report.review.status, "identifying": report.identifying,
        "bytes": len(content)})
    name = f"lus-report-{report.patient_code}-exam{exam.pk}.{extension}"
    return ReportFile(content, content_type, "".join(c if c.isalnum() or c in "-._" else "_" for c in name))
