"""Every main page under the site's Content-Security-Policy (issue 15, "Headers"), in Chromium.

A clinician, a study admin, a site administrator and an anonymous visitor open each page; the test
checks the enforced policy header, that the page still works (plots drawn, frames loaded, the
review mode open, the API docs rendered) and - through ``tests/browser/conftest.py`` - that no page
reported a single violation.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import csp_violations, login
from tests.browser.course import PASSWORD, Course, build_course
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


def _open(page: Any, url: str, ready: str) -> None:
    """Open ``url``, check its policy header, then wait until ``ready`` (a JS expression) holds."""
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, (url, policy)
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    page.wait_for_function(f"() => {ready}", timeout=15000)


PLOT = "id => document.querySelector(`#${id} .main-svg`) !== null"
OWN_SOCKET = """id => new Promise((done) => {
  const ws = new WebSocket(`ws://${location.host}/ws/exams/${id}/`);
  ws.onopen = () => { ws.close(); done('open'); };
  ws.onerror = () => done('error');
})"""


def _plot(page: Any, url: str, *ids: str) -> None:
    _open(page, url, "true")
    for element_id in ids:
        page.wait_for_function(PLOT, arg=element_id, timeout=15000)
    # plotly.js's own rules went into the static sheet kept for them, by the CSSOM.
    assert page.evaluate("document.getElementById('plotly.js-style-global').sheet.cssRules.length") > 50


def _clinician_pages(page: Any, base: str, c: Course) -> None:
    exam, other = c.exams[2], c.others[0]
    clip = exam.clips.get(zone="R1")
    _open(page, f"{base}/", "document.querySelector('main h1') !== null")
    _open(page, f"{base}/studies/{c.study.pk}/", "document.body.innerText.includes('SR-001')")
    _open(page, f"{base}/patients/{c.patient.pk}/", "document.body.innerText.includes('SR-001')")
    _plot(page, f"{base}/patients/{c.patient.pk}/timeline/", "plot-luss", "plot-heatmap", "plot-severity")
    _plot(page, f"{base}/studies/{c.study.pk}/overview/", "plot-overview")
    _plot(page, f"{base}/studies/{c.study.pk}/correlation/", "plot-correlation")
    _plot(page, f"{base}/patients/{c.patient.pk}/correlation/", "plot-correlation")
    _open(page, f"{base}/studies/{c.study.pk}/worklist/", f"document.body.innerText.includes('{other.patient.code}')")
    _open(page, f"{base}/exams/{exam.pk}/", "document.getElementById('zones') !== null")
    # The live progress's WebSocket to the site itself is allowed (the live server answers no
    # WebSocket, so it errors after connecting is tried; a refusal would be a violation).
    assert page.evaluate(OWN_SOCKET, exam.pk) in ("open", "error")
    page.keyboard.press("r")  # the keyboard review mode
    page.wait_for_function("() => !document.getElementById('review').hidden")
    page.wait_for_function("() => window.LUSReview.player.strip && window.LUSReview.player.strip.count >= 1")
    page.keyboard.press("Escape")
    _open(page, f"{base}/clips/{clip.pk}/", "Array.from(document.images).some(i => i.src.includes('/frames/') && i.naturalWidth > 0)")
    _plot(page, f"{base}/clips/{clip.pk}/viewer/", "plot-frames-current")
    page.wait_for_function("() => document.querySelector('#player-current video').readyState >= 2")
    _open(page, f"{base}/studies/{c.study.pk}/agreement/", "document.querySelector('main table') !== null")
    _open(page, f"{base}/studies/{c.study.pk}/export/", "document.getElementById('export-form') !== null")
    _open(page, f"{base}/models/", "document.querySelector('main h1') !== null")
    _open(page, f"{base}/api/v1/docs/", "document.querySelector('#swagger-ui .info .title') !== null")
    _open(page, f"{base}/api/v1/redoc/", "document.querySelector('redoc .api-info h1, [role=search]') !== null")


def test_every_page_passes_the_policy(live_server: Any, context: Any) -> None:
    c = build_course()
    UserFactory(username="site-admin", password=PASSWORD, is_staff=True, is_superuser=True)
    base = live_server.url
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _open(page, f"{base}/login/", "document.querySelector('form input[name=username]') !== null")
    _open(page, f"{base}/admin/login/", "document.querySelector('#login-form') !== null")
    login(page, base, "w-clinician", PASSWORD)
    _clinician_pages(page, base, c)
    context.clear_cookies()
    login(page, base, "w-study_admin", PASSWORD)
    for tab in ("members", "settings", "audit"):
        _open(page, f"{base}/studies/{c.study.pk}/{tab}/", "document.querySelector('main h1, main h2') !== null")
    context.clear_cookies()
    login(page, base, "site-admin", PASSWORD)
    _open(page, f"{base}/admin/", "document.getElementById('content-main') !== null")
    _open(page, f"{base}/admin/auth/user/", "document.getElementById('changelist') !== null")
    _open(page, f"{base}/admin/auth/user/add/", "document.querySelector('form #id_username') !== null")
    assert errors == []


def test_a_violation_is_caught(live_server: Any, context: Any) -> None:
    """The watch itself: an inline script and a WebSocket to another host are blocked and reported."""
    page = context.new_page()
    _open(page, f"{live_server.url}/login/", "true")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.body.appendChild(s); }""")
    assert page.evaluate("window.ran === undefined")
    page.evaluate("() => { try { new WebSocket('ws://elsewhere.invalid/ws/'); } catch (e) { return String(e); } }")
    page.wait_for_function("() => true")
    page.wait_for_timeout(300)
    caught = list(csp_violations)
    csp_violations.clear()  # expected here; every other test must have none
    assert any("script-src" in v for v in caught), caught
    assert any("connect-src blocked ws://elsewhere.invalid" in v for v in caught), caught
