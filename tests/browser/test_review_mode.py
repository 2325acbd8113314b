"""The exam page's review mode in a real browser, driven with the keyboard only: R opens it, 0-3
score, letters toggle findings, Enter saves and moves on through 12 zones, Enter on the summary
signs.

The readings and sign-off endpoints are answered by :func:`review_api_stub` (``page.route``) with
the shapes of the API contract (/work/plan/ISSUE14.md); the exam API and the frame strips are the
real server's.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.models import ZoneClip
from patients.records.models import Exam
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.browser.conftest import login
from tests.factories import ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.dashboards import builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "pw-for-tests-1"
FINDINGS = ("a_lines", "b_lines", "confluent_b_lines", "consolidation", "pleural_irregularity", "effusion")
AI_SCORES = (2, 1, 0, 3, 1, 2, 0, 1, 2, 3, 1, 0)
CINE_ZONES = ("R1", "R2")


@dataclass
class Ward:
    exam: Exam
    clips: dict[str, ZoneClip]
    ai: dict[str, int]


def _ingest(exam: Exam, zone: str, score: int, seed: int, by: Any) -> ZoneClip:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4
    from patients.imaging.ingest import clip_ingest
    from tests.patients.imaging.core.phantom_images import write_png

    buf = io.BytesIO()
    if zone in CINE_ZONES:
        write_mp4(phantom_cohort_clip(score, seed=seed, n_frames=30, rows=192, columns=256), buf)
        name = f"{zone}.mp4"
    else:
        write_png(phantom_cohort_clip(score, seed=seed, n_frames=1, rows=96, columns=128), buf)
        name = f"{zone}.png"
    return clip_ingest(exam=exam, upload=SimpleUploadedFile(name, buf.getvalue()), zone=zone, by=by,
                       filename=name).clip


def build_ward() -> Ward:
    study = StudyFactory(name="Review ward", protocol="12-zone")
    clinician = UserFactory(username="r-clinician")
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study, code="RV-001"),
                       acquired_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    codes = get_protocol("12-zone").codes
    ai = dict(zip(codes, AI_SCORES, strict=True))
    clips = {zone: _ingest(exam, zone, score, seed=i, by=clinician) for i, (zone, score) in enumerate(ai.items())}
    builders.record_scores(exam, ai, mv=builders.model_version("review-model-1"))
    return Ward(exam, clips, ai)


@dataclass
class ApiStub:
    """What the page POSTed to the readings and sign-off endpoints, and a switch to refuse one."""
    readings: list[dict[str, Any]] = field(default_factory=list)
    signs: list[dict[str, Any]] = field(default_factory=list)
    refuse_next: str | None = None


@pytest.fixture
def review_api_stub(page: Any) -> ApiStub:
    """Answers ``POST /api/v1/clips/<id>/readings/`` (201) and ``POST /api/v1/exams/<id>/sign/`` (200)
    with the contract's shapes until the readings backend is merged; then delete this fixture and
    read the stored readings and signature from the database instead."""
    stub = ApiStub()

    def readings(route: Any, request: Any) -> None:
        clip = int(request.url.rstrip("/").split("/")[-2])
        stub.readings.append({"clip": clip, "method": request.method, "body": request.post_data_json,
                              "csrf": request.headers.get("x-csrftoken")})
        if stub.refuse_next:
            body, stub.refuse_next = {"error": stub.refuse_next, "code": "invalid"}, None
            route.fulfill(status=400, content_type="application/json", body=json.dumps(body))
            return
        reading = {"id": len(stub.readings), "clip": clip, "source": "clinician", "rater": "r-clinician",
                   **request.post_data_json, "confidence": None, "blind": False, "created_at": "2026-03-02T10:00:00Z"}
        route.fulfill(status=201, content_type="application/json", body=json.dumps(reading))

    def sign(route: Any, request: Any) -> None:
        exam = int(request.url.rstrip("/").split("/")[-2])
        stub.signs.append({"exam": exam, "method": request.method, "csrf": request.headers.get("x-csrftoken")})
        route.fulfill(status=200, content_type="application/json", body=json.dumps(
            {"id": exam, "review_status": "reviewed", "signed_by": "r-clinician", "signed_at": "2026-03-02T10:01:00Z"}))

    page.route("**/api/v1/clips/*/readings/", readings)
    page.route("**/api/v1/exams/*/sign/", sign)
    return stub


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _position(page: Any) -> str:
    return str(page.inner_text("#review-position"))


def _wait_position(page: Any, text: str) -> None:
    page.wait_for_function("t => document.getElementById('review-position').textContent === t", arg=text)


def _pressed(page: Any, selector: str) -> list[str]:
    return list(page.eval_on_selector_all(f"#review {selector}[aria-pressed=true]",
                                          "els => els.map(e => e.dataset.score ?? e.dataset.finding)"))


def _ai_findings(score: int) -> dict[str, bool]:
    """The findings the builders' AI reports (probabilities > 0.5)."""
    return {k: (k == "a_lines" and score == 0) or (k == "b_lines" and score >= 1) or (k == "consolidation" and score == 3)
            for k in FINDINGS}


# The clinician's changes by zone index: a new score and the finding keys pressed.
CHANGES: dict[int, tuple[int | None, str]] = {0: (1, "bc"), 3: (2, "o"), 6: (None, "pe"), 11: (3, "ao")}
KEY_OF = {"a": "a_lines", "b": "b_lines", "c": "confluent_b_lines", "o": "consolidation",
          "p": "pleural_irregularity", "e": "effusion"}


def _expected(ward: Ward) -> dict[int, dict[str, Any]]:
    out = {}
    for i, (zone, ai) in enumerate(ward.ai.items()):
        score, keys = CHANGES.get(i, (None, ""))
        findings = _ai_findings(ai)
        for k in keys:
            findings[KEY_OF[k]] = not findings[KEY_OF[k]]
        out[ward.clips[zone].pk] = {"score": ai if score is None else score, "findings": findings, "comment": ""}
    return out


def _first_zone(page: Any, ward: Ward, out: Path) -> None:
    """R opens the mode on R1 with the AI's suggestion pre-selected and its cine playing; keys change it."""
    page.keyboard.press("r")
    _wait_position(page, "zone 1 of 12")
    assert page.inner_text("#review-zone-code") == "R1"
    assert _pressed(page, "[data-score]") == [str(ward.ai["R1"])]  # the AI's suggestion, pre-selected
    assert "AI suggests 2 · probability 70 %" in page.inner_text("#review-ai")
    assert _pressed(page, "[data-finding]") == ["b_lines"]
    assert "Zone R1" in page.inner_text("#review-live")
    assert page.evaluate("document.activeElement.closest('#review') !== null")
    # The cine plays: the strip is drawn and its frames advance.
    page.wait_for_function("window.LUSReview.player.strip && window.LUSReview.player.strip.count === 30")
    page.wait_for_function("window.LUSReview.player.frame > 2", timeout=5000)
    assert page.evaluate("[window.LUSReview.player.strip.width, window.LUSReview.player.strip.height]") == [256, 192]
    page.keyboard.press("1")
    page.keyboard.press("b")
    page.keyboard.press("c")
    assert _pressed(page, "[data-score]") == ["1"] and _pressed(page, "[data-finding]") == ["confluent_b_lines"]
    assert page.inner_text("#review-live") == "confluent B-lines on."
    page.screenshot(path=str(out / "review-mode-zone.png"))


def _every_zone(page: Any, ward: Ward, stub: ApiStub) -> None:
    """Enter through the 12 zones; one save refused on zone 3, one step back from zone 6."""
    codes = list(ward.ai)
    for i in range(12):
        _wait_position(page, f"zone {i + 1} of 12")
        assert page.inner_text("#review-zone-code") == codes[i]
        score, keys = CHANGES.get(i, (None, ""))
        if i > 0:
            if score is not None:
                page.keyboard.press(str(score))
            for k in keys:
                page.keyboard.press(k)
        if i == 2:  # a refusal shows the server's text and stays on the zone
            stub.refuse_next = "score: Ensure this value is less than or equal to 3. (test)"
            page.keyboard.press("Enter")
            page.wait_for_selector("#review-error:not([hidden])")
            assert "less than or equal to 3. (test)" in page.inner_text("#review-error")
            assert _position(page) == "zone 3 of 12"
        if i == 5:  # back to zone 5 (its saved choice is kept), then on again
            page.keyboard.press("Backspace")
            _wait_position(page, "zone 5 of 12")
            assert _pressed(page, "[data-score]") == [str(ward.ai[codes[4]])]
            page.keyboard.press("Enter")
            _wait_position(page, "zone 6 of 12")
        page.keyboard.press("Enter")


def _summary_and_sign(page: Any, ward: Ward, out: Path) -> None:
    _wait_position(page, "summary")
    luss = sum(r["score"] for r in _expected(ward).values())
    assert page.inner_text("#review-luss") == f"LUSS {luss} / 36"
    assert page.inner_text("#review-luss-ai") == f"AI's sum {sum(AI_SCORES)}"
    assert page.locator("#review-table tbody tr").count() == 12
    page.screenshot(path=str(out / "review-mode-summary.png"))
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('review-status').textContent === 'status: reviewed'")
    assert "Exam signed by r-clinician" in page.inner_text("#review-live")


def test_keyboard_review_of_a_12_zone_exam(live_server: Any, page: Any, review_api_stub: ApiStub,
                                           screenshot_dir: Path) -> None:
    ward = build_ward()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 400" not in m.text else None)
    strips: list[str] = []
    page.on("request", lambda r: strips.append(r.url) if "/strip.png" in r.url else None)
    login(page, live_server.url, "r-clinician", PASSWORD)
    page.goto(f"{live_server.url}/exams/{ward.exam.pk}/")
    assert page.is_hidden("#review")
    page.locator("#review-open").screenshot(path=str(screenshot_dir / "review-mode-button.png"))

    _first_zone(page, ward, screenshot_dir)
    _every_zone(page, ward, review_api_stub)
    _summary_and_sign(page, ward, screenshot_dir)

    stub = review_api_stub
    posted = {r["clip"]: r["body"] for r in stub.readings}  # the last one per clip
    assert posted == _expected(ward)
    assert len(stub.readings) == 12 + 2  # one refused and retried, one saved again after going back
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert {r["method"] for r in stub.readings} == {"POST"} and {r["csrf"] for r in stub.readings} == {cookie}
    assert stub.signs == [{"exam": ward.exam.pk, "method": "POST", "csrf": cookie}]
    # One strip request per zone, whatever the moves back and forth.
    assert sorted(strips) == sorted(f"{live_server.url}/clips/{c.pk}/strip.png" for c in ward.clips.values())

    with page.expect_navigation():  # closing after changes reloads the page with the new readings
        page.keyboard.press("Escape")
    assert page.is_hidden("#review")
    assert errors == [], errors


def test_exam_api_with_readings_fields(live_server: Any, page: Any, review_api_stub: ApiStub) -> None:
    """The exam API as the readings backend serves it (``ai_score``, ``source``, the record's findings as
    booleans, ``review_status``): a clinician's reading is pre-selected, the AI's score shown beside it."""
    ward = build_ward()

    def exam_api(route: Any, request: Any) -> None:
        data = route.fetch().json()
        for z in data["scores"]["zones"]:
            z["ai_score"], z["findings"] = z["score"], _ai_findings(z["score"])
            z["source"] = "ai"
        first = data["scores"]["zones"][0]
        first.update(score=0, source="clinician", findings={**dict.fromkeys(FINDINGS, False), "a_lines": True})
        data["review_status"] = "amended"
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))

    page.route(f"**/api/v1/exams/{ward.exam.pk}/", exam_api)
    login(page, live_server.url, "r-clinician", PASSWORD)
    page.goto(f"{live_server.url}/exams/{ward.exam.pk}/")
    page.focus("select[name=zone]")  # R in a form field is typing, not the shortcut
    page.keyboard.press("r")
    assert page.is_hidden("#review")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("R")
    _wait_position(page, "zone 1 of 12")
    assert page.inner_text("#review-status") == "status: amended"
    assert _pressed(page, "[data-score]") == ["0"] and _pressed(page, "[data-finding]") == ["a_lines"]
    assert "AI suggests 2" in page.inner_text("#review-ai")
    assert page.get_attribute("#review [data-score='2']", "class") == "ai"
    page.keyboard.press("Enter")
    _wait_position(page, "zone 2 of 12")
    assert _pressed(page, "[data-score]") == [str(ward.ai["R2"])]
    assert _pressed(page, "[data-finding]") == ["b_lines"]
    assert review_api_stub.readings[0]["body"] == {"score": 0, "findings": {**dict.fromkeys(FINDINGS, False),
                                                                              "a_lines": True}, "comment": ""}
    with page.expect_navigation():
        page.keyboard.press("Escape")
