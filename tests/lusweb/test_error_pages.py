"""403, 404 and 500 in the site's layout, saying what happened and where to go (issue 16)."""
from __future__ import annotations

import io
import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string

from lusweb.logs import ClientErrorsInOneLine
from tests.conftest import signed_in
from tests.patients.readings.ward import Ward, make_ward

pytestmark = pytest.mark.django_db


@pytest.fixture
def ward(db: object) -> Ward:
    return make_ward()


def test_a_refused_page_is_the_403_page_in_the_layout(ward: Ward) -> None:
    # A researcher may not open the untouched original of a clip: PermissionDenied in the view.
    response = signed_in(ward.researcher).get(f"/clips/{ward.clips['R1'].pk}/original/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="topbar"' in html and 'data-status="403"' in html
    assert "You may not open this page" in html and "rw-researcher" in html
    assert 'href="/"' in html and "ask the study's admin" in html


def test_an_unknown_page_is_the_404_page_in_the_layout(ward: Ward) -> None:
    response = signed_in(ward.clinician).get("/patients/987654/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="topbar"' in html and 'data-status="404"' in html and "/patients/987654/" in html
    assert "your studies" in html


def test_the_500_page_renders_without_a_request_and_says_what_to_do() -> None:
    html = render_to_string("500.html")
    assert 'data-status="500"' in html and "the error was logged" in html and 'href="/"' in html
    assert "<script" not in html and "style=" not in html


def test_permission_denied_message_is_shown() -> None:
    html = render_to_string("403.html", {"exception": str(PermissionDenied("study admins only"))})
    assert "study admins only" in html


def _console() -> logging.StreamHandler:  # type: ignore[type-arg]
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and any(isinstance(f, ClientErrorsInOneLine) for f in h.filters)]
    assert handlers, "the site's console handler carries the ClientErrorsInOneLine filter"
    return handlers[0]


def test_a_403_is_logged_in_one_line_without_a_traceback(ward: Ward) -> None:
    console = _console()
    buffer = io.StringIO()
    old = console.setStream(buffer)
    try:
        assert signed_in(ward.researcher).get(f"/clips/{ward.clips['R1'].pk}/original/").status_code == 403
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("django.request").error("Internal Server Error: /x/", exc_info=True,
                                                      extra={"status_code": 500})
    finally:
        console.setStream(old)  # type: ignore[arg-type]
    out = buffer.getvalue()
    forbidden = [line for line in out.splitlines() if "Forbidden (Permission denied)" in line]
    assert len(forbidden) == 1 and "clinicians and study admins only" not in out.split("Internal Server Error")[0]
    assert out.count("Traceback") == 1 and "RuntimeError: boom" in out  # a server error keeps its traceback
