"""Headers on every answer (issue 15, "Headers"): the Content-Security-Policy (and its report-only
switch), and ``Cache-Control: no-store`` on everything that identifies patients. The browser
test (tests/browser/test_csp.py) shows the pages pass the policy."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import override_settings

from lusweb.headers import NoStoreMiddleware, render_policy
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split("; ")}


@pytest.fixture
def ward() -> dict[str, Any]:
    study = StudyFactory()
    clinician = UserFactory()
    MembershipFactory(study=study, user=clinician, role="clinician")
    patient = PatientFactory(study=study, name="Alice Secret")
    exam = ExamFactory(patient=patient, acquired_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    return {"clinician": clinician, "patient": patient, "exam": exam, "study": study}


def test_the_policy_is_strict() -> None:
    policy = _directives(Client().get("/login/")["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["style-src"] == ["'self'"]  # no <style> blocks; style attributes only (plotly.js)
    assert policy["style-src-attr"] == ["'unsafe-inline'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    # The exam page's live progress: its own host's WebSocket, no other.
    assert policy["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]


def test_websockets_of_a_secure_site_are_wss_only() -> None:
    policy = _directives(Client().get("/login/", secure=True, HTTP_HOST="localhost")["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", "wss://localhost"]


def test_report_only_switch() -> None:
    with override_settings(CSP_REPORT_ONLY=True, CSP_REPORT_URI="/csp-reports/"):
        response = Client().get("/login/")
    assert "Content-Security-Policy" not in response
    policy = _directives(response["Content-Security-Policy-Report-Only"])
    assert policy["script-src"] == ["'self'"] and policy["report-uri"] == ["/csp-reports/"]


def test_only_redoc_widens_the_policy() -> None:
    redoc = _directives(Client().get("/api/v1/redoc/")["Content-Security-Policy"])
    assert redoc["style-src"] == ["'self'", "'unsafe-inline'"] and redoc["worker-src"] == ["'self'", "blob:"]
    assert redoc["script-src"] == ["'self'"]
    assert redoc["img-src"][-1] == "https://cdn.redoc.ly"  # ReDoc's own logo, nothing else
    docs = Client().get("/api/v1/docs/")
    assert _directives(docs["Content-Security-Policy"])["style-src"] == ["'self'"]
    assert "<script>" not in docs.content.decode() and "<style>" not in docs.content.decode()


def test_render_policy_adds_without_repeating() -> None:
    assert render_policy({"a": ["x"], "b": ["y"]}, {"a": ["x", "z"], "c": ["w"]}) == "a x z; b y; c w"


def test_identifying_api_answers_are_not_stored(ward: dict[str, Any], api_for: Any) -> None:
    api = api_for(ward["clinician"])
    for url in (f"/api/v1/patients/{ward['patient'].pk}/", f"/api/v1/patients/{ward['patient'].pk}/timeline/",
                f"/api/v1/exams/{ward['exam'].pk}/", f"/api/v1/studies/{ward['study'].pk}/"):
        response = api.get(url)
        assert response.status_code == 200, url
        assert (response["Cache-Control"], response["Pragma"]) == ("no-store", "no-cache"), url
    assert api.get("/api/v1/patients/999999/")["Cache-Control"] == "no-store"  # errors too
    anonymous = Client().get(f"/api/v1/patients/{ward['patient'].pk}/")
    assert anonymous.status_code == 401 and anonymous["Cache-Control"] == "no-store"


def test_pages_for_signed_in_users_are_not_stored(ward: dict[str, Any]) -> None:
    client = Client()
    client.force_login(ward["clinician"])
    for url in (f"/patients/{ward['patient'].pk}/", f"/patients/{ward['patient'].pk}/timeline/",
                f"/exams/{ward['exam'].pk}/", "/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "no-store" and response["Pragma"] == "no-cache", url
    assert "Alice Secret" in client.get(f"/patients/{ward['patient'].pk}/").content.decode()
    assert "Cache-Control" not in Client().get("/healthz/")  # nothing identifying, nobody signed in


def test_a_chosen_cache_control_is_kept() -> None:
    """Decoded frames say ``private, max-age=3600`` themselves (the cine player re-reads them)."""
    request = RequestFactory().get("/clips/1/frames/0.png")
    request.user = UserFactory()

    def frame(_: HttpRequest) -> HttpResponse:
        response = HttpResponse(b"png", content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    assert NoStoreMiddleware(frame)(request)["Cache-Control"] == "private, max-age=3600"
    request.user = AnonymousUser()
    assert "Cache-Control" not in NoStoreMiddleware(lambda _: HttpResponse("home"))(request)
