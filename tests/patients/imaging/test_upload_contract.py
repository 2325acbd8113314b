"""The upload API contract that outside checks call: 202 with the clip and a ``Location`` for
``GET /api/v1/clips/<id>/``; ``pending`` until the ingest worker's check, then ``ready`` with the
decoded fields, or ``failed`` with ``error`` and ``code`` and no files; 200 for the same file
again; refusals the request can see as 400/413/409 ``{"error", "code"}``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

from patients.imaging.process import clip_process
from patients.studies.models import Membership, Role
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import png_bytes, stored_files

pytestmark = pytest.mark.django_db
DECODED = ("frame_count", "fps", "rows", "columns", "manufacturer")


@pytest.fixture
def api_exam(api_for: Callable[..., APIClient]) -> tuple[APIClient, Any]:
    study = StudyFactory(protocol="12-zone")
    user = UserFactory()
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    return api_for(user), ExamFactory(patient=PatientFactory(study=study))


def _post(api: APIClient, url: str, data: bytes, name: str, **fields: Any) -> Any:
    return api.post(url, {"zone": "R1", "file": SimpleUploadedFile(name, data), **fields}, format="multipart")


@pytest.mark.parametrize("endpoint", ["exam", "clips"])
def test_202_then_pending_then_ready(api_exam: tuple[APIClient, Any], endpoint: str) -> None:
    api, exam = api_exam
    raw = Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes()
    if endpoint == "exam":
        answer = _post(api, f"/api/v1/exams/{exam.pk}/clips/", raw, "us.dcm")
    else:
        answer = _post(api, "/api/v1/clips/", raw, "us.dcm", exam=exam.pk)
    assert answer.status_code == 202 and answer["Content-Type"] == "application/json"
    clip_id = answer.data["id"]
    assert answer["Location"] == f"http://testserver/api/v1/clips/{clip_id}/"
    assert answer.data["status"] == "pending" and answer.data["zone"] == "R1"
    pending = api.get(answer["Location"]).data
    assert pending["status"] == "pending" and (pending["error"], pending["code"]) == ("", "")
    assert [pending[k] for k in DECODED] == [None, None, None, None, ""]
    assert clip_process(clip_id=clip_id) is not None
    ready = api.get(answer["Location"]).data
    assert ready["status"] == "ready" and ready["page_url"] == f"/clips/{clip_id}/"
    assert (ready["frame_count"], ready["rows"], ready["columns"]) == (30, 240, 320)
    assert ready["fps"] is not None and ready["fps"] > 0 and ready["manufacturer"] == "SonoSite, Inc."
    again = _post(api, f"/api/v1/exams/{exam.pk}/clips/", raw, "again.dcm")
    assert again.status_code == 200 and again.data["id"] == clip_id and again.data["status"] == "ready"


def test_failed_in_the_worker_keeps_its_error_and_no_file(api_exam: tuple[APIClient, Any]) -> None:
    api, exam = api_exam
    cut = Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes()[:20000]
    answer = _post(api, f"/api/v1/exams/{exam.pk}/clips/", cut, "cut.dcm")
    assert answer.status_code == 202
    clip_process(clip_id=answer.data["id"])
    failed = api.get(answer["Location"]).data
    assert failed["status"] == "failed" and failed["code"] == "truncated" and "truncated" in failed["error"]
    assert [failed[k] for k in DECODED] == [None, None, None, None, ""] and failed["page_url"] is None
    assert stored_files() == []
    assert api.delete(answer["Location"]).status_code == 204 and api.get(answer["Location"]).status_code == 404
    assert _post(api, f"/api/v1/exams/{exam.pk}/clips/", png_bytes(1), "a.png").status_code == 202  # zone free


def test_what_the_request_refuses(api_exam: tuple[APIClient, Any]) -> None:
    api, exam = api_exam
    url = f"/api/v1/exams/{exam.pk}/clips/"
    bad = _post(api, url, b"not a clip at all", "x.dcm")
    assert bad.status_code == 400 and bad.data["code"] == "unsupported_format" and "not a recognised" in bad.data["error"]
    with override_settings(MAX_UPLOAD_MB=1):
        big = _post(api, url, png_bytes(2) + b"\0" * (1024 * 1024), "big.png")
    assert big.status_code == 413 and big.data["code"] == "too_large"
    assert _post(api, url, png_bytes(3), "a.png").status_code == 202
    busy = _post(api, url, png_bytes(4), "b.png", replace="true")
    assert busy.status_code == 409 and busy.data["code"] == "zone_busy"
    elsewhere = api.post(url, {"zone": "L1", "file": SimpleUploadedFile("a.png", png_bytes(3))}, format="multipart")
    assert elsewhere.status_code == 409 and elsewhere.data["code"] == "duplicate_file"
    for answer in (bad, big, busy, elsewhere):
        assert set(answer.data) == {"error", "code"}


def test_the_schema_documents_the_202(api_exam: tuple[APIClient, Any]) -> None:
    api, _ = api_exam
    paths = api.get("/api/v1/schema/?format=json").json()["paths"]
    for path in ("/api/v1/exams/{id}/clips/", "/api/v1/clips/"):
        responses = paths[path]["post"]["responses"]
        assert {"200", "202"} <= set(responses), (path, sorted(responses))
    clip = api.get("/api/v1/schema/?format=json").json()["components"]["schemas"]["Clip"]["properties"]
    assert {"status", "error", "code", *DECODED} <= set(clip)
