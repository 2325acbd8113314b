"""``GET /api/v1/exams/<id>/report/?format=...``: content types, attachments, permissions, the error
shape, the audit trail, and the exam page's links."""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pydicom
import pytest
from django.test import Client

from patients.audit.models import AuditAction, AuditEvent
from patients.studies.models import Role
from tests.factories import ExamFactory
from tests.patients.reports.conftest import Case, output_dir
from tests.patients.reports.test_pdf import pdf_text

pytestmark = pytest.mark.django_db

TYPES = {"pdf": "application/pdf", "sr": "application/dicom", "fhir": "application/fhir+json"}


def _url(case: Case, fmt: str | None) -> str:
    return f"/api/v1/exams/{case.exam.pk}/report/" + (f"?format={fmt}" if fmt else "")


@pytest.mark.parametrize("fmt", list(TYPES))
def test_each_format_downloads_and_is_audited(case: Case, api_for: Callable[..., Any], fmt: str) -> None:
    res = api_for(case.users[Role.CLINICIAN]).get(_url(case, fmt))
    assert res.status_code == 200, res.content
    assert res["Content-Type"] == TYPES[fmt]
    extension = {"pdf": ".pdf", "sr": ".dcm", "fhir": ".fhir.json"}[fmt]
    assert res["Content-Disposition"] == f'attachment; filename="lus-report-W9-017-exam{case.exam.pk}{extension}"'
    body = res.content
    if fmt == "pdf":
        assert body.startswith(b"%PDF")
    elif fmt == "sr":
        assert pydicom.dcmread(io.BytesIO(body)).Modality == "SR"
    else:
        assert json.loads(body)["resourceType"] == "Bundle"
    event = AuditEvent.objects.get(action=AuditAction.EXPORT, object_type="exam", object_id=str(case.exam.pk))
    assert event.actor == case.users[Role.CLINICIAN] and event.study_id == case.study.pk
    assert event.changes["report"] == fmt and event.changes["identifying"] is True
    assert event.changes["bytes"] == len(body)


def test_pdf_is_the_default(case: Case, api_for: Callable[..., Any]) -> None:
    res = api_for(case.users[Role.RESEARCHER]).get(_url(case, None))
    assert res.status_code == 200 and res["Content-Type"] == "application/pdf"
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.changes["identifying"] is False


def test_bad_format_is_400_with_the_error_shape(case: Case, api_for: Callable[..., Any]) -> None:
    res = api_for(case.users[Role.CLINICIAN]).get(_url(case, "docx"))
    assert res.status_code == 400
    assert res.json() == {"error": "unknown report format 'docx'; expected one of pdf, sr, fhir", "code": "bad_format"}
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


@pytest.mark.parametrize("fmt", ["pdf", "docx"])
def test_outsiders_get_404(case: Case, api_for: Callable[..., Any], fmt: str) -> None:
    res = api_for(case.users["outsider"]).get(_url(case, fmt))
    assert res.status_code == 404
    assert "error" in res.json()
    missing = api_for(case.users[Role.CLINICIAN]).get(f"/api/v1/exams/{case.exam.pk + 9999}/report/?format=pdf")
    assert missing.status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_anonymous_is_refused(case: Case) -> None:
    res = Client().get(_url(case, "pdf"))
    assert res.status_code in (401, 403)


def test_exam_page_links_to_the_reports_with_session_auth(case: Case) -> None:
    client = Client()
    client.force_login(case.users[Role.RESEARCHER])
    page = client.get(f"/exams/{case.exam.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    for fmt, word in (("pdf", "PDF"), ("sr", "DICOM SR"), ("fhir", "FHIR")):
        assert f'href="{_url(case, fmt)}" download>{word}</a>' in html
    res = client.get(_url(case, "fhir"))  # the page's session is enough
    assert res.status_code == 200 and res["Content-Type"] == "application/fhir+json"
    assert "Ana Lima" not in res.content.decode()


def test_an_exam_without_scores(case: Case, api_for: Callable[..., Any]) -> None:
    """The PDF and FHIR say so; an SR (TID 1500 needs a measurement) is refused, unaudited."""

    empty = ExamFactory(patient=case.patient, acquired_at=case.exam.acquired_at.replace(day=9))
    api = api_for(case.users[Role.STUDY_ADMIN])
    pdf = api.get(f"/api/v1/exams/{empty.pk}/report/?format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "no zone scored yet" in pdf_text(pdf.content, output_dir("exam-report") / "report-empty.pdf")
    sr = api.get(f"/api/v1/exams/{empty.pk}/report/?format=sr")
    assert sr.status_code == 409
    assert sr.json() == {"error": "the exam has no zone score yet: a DICOM SR has nothing to report",
                         "code": "no_scores"}
    bundle = json.loads(api.get(f"/api/v1/exams/{empty.pk}/report/?format=fhir").content)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["DiagnosticReport"]
    assert bundle["entry"][0]["resource"]["conclusion"] == "No zone scored yet."
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, object_id=str(empty.pk)).count() == 2
