"""The exam page's review mode in a real browser, driven with the keyboard only: R opens it, 0-3
score, letters toggle findings, Enter saves and moves on through 12 zones, Enter on the summary
signs (acceptance line 2 of issue 14).

Everything is the real server's: the exam API, the frame strips, ``POST /api/v1/clips/<id>/readings/``
and ``POST /api/v1/exams/<id>/sign/``. The AI's readings come from the builders' finished job
(``tests.patients.dashboards.builders.record_scores``, as the pipeline stores them); the test then
reads the 12 stored readings and the signature back from the database.
"""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from patients.imaging.models import ZoneClip
from patients.readings.models import ExamSignature, ReadingSource, ZoneReading
from patients.readings.selectors import review_states
from patients.readings.services import exam_sign, reading_create
from patients.records.models import Exam
from patients.studies.models import Role, Study
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
    exam = ExamFactory(patient=PatientFactory(study=study, code="RV-001", name="Synthetic Patient",
                                              hospital_number="SYN-0002"),
                       acquired_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    codes = get_protocol("12-zone").codes
    ai = dict(zip(codes, AI_SCORES, strict=True))
    clips = {zone: _ingest(exam, zone, score, seed=i, by=clinician) for i, (zone, score) in enumerate(ai.items())}
    builders.record_scores(exam, ai, mv=builders.model_version("review-model-1"), severity="moderate")
    return Ward(exam, clips, ai)


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
    page.wait_for_function("() => window.LUSReview.player.strip && window.LUSReview.player.strip.count === 30")
    page.wait_for_function("() => window.LUSReview.player.frame > 2", timeout=5000)
    assert page.evaluate("[window.LUSReview.player.strip.width, window.LUSReview.player.strip.height]") == [256, 192]
    page.keyboard.press("1")
    page.keyboard.press("b")
    page.keyboard.press("c")
    assert _pressed(page, "[data-score]") == ["1"] and _pressed(page, "[data-finding]") == ["confluent_b_lines"]
    assert page.inner_text("#review-live") == "confluent B-lines on."
    page.screenshot(path=str(out / "review-mode-zone.png"))
    page.locator("#review .review-dialog").screenshot(path=str(out / "readme-review-mode.png"))


def _refused_then_saved(page: Any, ward: Ward) -> None:
    """A refusal from the server (the study archived meanwhile) shows its text and stays on the zone."""
    Study.objects.filter(pk=ward.exam.patient.study_id).update(archived=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-error:not([hidden])")
    assert "is archived and read-only" in page.inner_text("#review-error")
    assert _position(page) == "zone 3 of 12"
    Study.objects.filter(pk=ward.exam.patient.study_id).update(archived=False)


def _every_zone(page: Any, ward: Ward) -> None:
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
        if i == 2:
            _refused_then_saved(page, ward)
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
    page.wait_for_function("() => document.getElementById('review-status').textContent === 'status: reviewed'")
    assert "Exam signed by r-clinician" in page.inner_text("#review-live")


def _stored(ward: Ward) -> dict[int, dict[str, Any]]:
    """The latest clinician reading of each clip, from the database."""
    latest: dict[int, dict[str, Any]] = {}
    for r in (ZoneReading.objects.filter(clip__exam=ward.exam, source=ReadingSource.CLINICIAN)
              .order_by("-created_at", "-pk")):
        latest.setdefault(r.clip_id, {"score": r.score, "findings": r.findings, "comment": r.comment})
    return latest


def _posts(page: Any) -> list[dict[str, Any]]:
    """The page's POSTs to the readings and sign-off API, as the browser sent them (observed only)."""
    posts: list[dict[str, Any]] = []

    def seen(request: Any) -> None:
        if request.method != "GET" and "/api/v1/" in request.url:
            posts.append({"url": request.url, "method": request.method, "csrf": request.headers.get("x-csrftoken")})

    page.on("request", seen)
    return posts


def test_keyboard_review_of_a_12_zone_exam(live_server: Any, page: Any, screenshot_dir: Path) -> None:
    ward = build_ward()
    assert ZoneReading.objects.filter(clip__exam=ward.exam, source=ReadingSource.AI).count() == 12  # the AI's draft
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 403" not in m.text else None)
    strips: list[str] = []
    page.on("request", lambda r: strips.append(r.url) if "/strip.png" in r.url else None)
    posts = _posts(page)
    login(page, live_server.url, "r-clinician", PASSWORD)
    page.goto(f"{live_server.url}/exams/{ward.exam.pk}/")
    assert page.is_hidden("#review")
    assert page.text_content("#review-state") == "draft"
    page.locator("#review-open").screenshot(path=str(screenshot_dir / "review-mode-button.png"))

    _first_zone(page, ward, screenshot_dir)
    _every_zone(page, ward)
    _summary_and_sign(page, ward, screenshot_dir)

    # The 12 readings (score and findings of each clip) and the signature are stored.
    assert _stored(ward) == _expected(ward)
    saves = [p for p in posts if p["url"].endswith("/readings/")]
    assert len(saves) == 12 + 2  # one refused and retried, one saved again after going back
    assert ZoneReading.objects.filter(clip__exam=ward.exam, source=ReadingSource.CLINICIAN).count() == 12 + 1
    signature = ExamSignature.objects.get(exam=ward.exam)
    assert signature.by.username == "r-clinician"
    assert signature.record == {z: _expected(ward)[c.pk]["score"] for z, c in ward.clips.items()}
    assert review_states(exam_ids=[ward.exam.pk])[ward.exam.pk].status == "reviewed"
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert {p["method"] for p in posts} == {"POST"} and {p["csrf"] for p in posts} == {cookie}
    assert [p["url"] for p in posts if "/sign/" in p["url"]] == [f"{live_server.url}/api/v1/exams/{ward.exam.pk}/sign/"]
    # One strip request per zone, whatever the moves back and forth.
    assert sorted(strips) == sorted(f"{live_server.url}/clips/{c.pk}/strip.png" for c in ward.clips.values())

    with page.expect_navigation():  # closing after changes reloads the page with the new readings
        page.keyboard.press("Escape")
    assert page.is_hidden("#review")
    _signed_page(page, ward, screenshot_dir)
    assert errors == [], errors


def _signed_page(page: Any, ward: Ward, out: Path) -> None:
    """The exam page after sign-off: the record's headline, every zone read by the clinician, the signature."""
    luss = sum(r["score"] for r in _expected(ward).values())
    assert page.inner_text("#exam-luss") == f"{luss}/36"
    assert page.text_content("#review-state") == "reviewed" and page.inner_text("#signed-by") == "r-clinician"
    assert page.inner_text("#signed-at").startswith(dt.date.today().isoformat()[:4])
    sources = page.eval_on_selector_all("#zones td.record", "els => els.map(e => e.dataset.source)")
    assert sources == ["clinician"] * 12
    assert page.locator(".ai-unreviewed").count() == 0  # no zone left on the AI's score
    assert page.get_attribute("#chest-diagram g[data-zone='R1']", "data-score") == "1"
    page.screenshot(path=str(out / "exam-signed.png"), full_page=True)
    page.screenshot(path=str(out / "readme-exam-signed.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": page.evaluate(
                        "document.getElementById('zones').getBoundingClientRect().top + window.scrollY + 330")})


def test_a_clinician_reading_is_pre_selected(live_server: Any, page: Any) -> None:
    """A zone a clinician already read opens on their reading (with the AI's score beside it), on an
    exam amended after sign-off; saving it stores a new reading."""
    ward = build_ward()
    clinician = ward.clips["R1"].exam.patient.study.memberships.get().user
    for zone, clip in ward.clips.items():
        reading_create(clip=clip, by=clinician, score=ward.ai[zone], findings=_ai_findings(ward.ai[zone]))
    exam_sign(exam=ward.exam, by=clinician)
    mine = {**dict.fromkeys(FINDINGS, False), "a_lines": True}
    reading_create(clip=ward.clips["R1"], by=clinician, score=0, findings=mine)  # after sign-off: amended
    login(page, live_server.url, "r-clinician", PASSWORD)
    page.goto(f"{live_server.url}/exams/{ward.exam.pk}/")
    assert page.text_content("#review-state") == "amended"
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
    latest = ZoneReading.objects.filter(clip=ward.clips["R1"], source=ReadingSource.CLINICIAN).latest("created_at")
    assert (latest.score, latest.findings) == (0, mine)
    assert ZoneReading.objects.filter(clip=ward.clips["R1"], source=ReadingSource.CLINICIAN).count() == 3
    with page.expect_navigation():
        page.keyboard.press("Escape")
