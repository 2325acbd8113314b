"""One score of record everywhere, in a real browser (acceptance line 1 of issue 14): a clinician
changes a zone's reading from the AI's 3 to 1 through the exam page's reading form, then the new
value is read back from the exam headline, the chest diagram, the heatmap cell, the timeline point,
the overview trend, the export (downloaded) and the API, and they all agree.

Also the review worklist: its order, its reasons, and its link into the exam's review mode. The
screenshots of the timeline and the worklist illustrate the README (docs/img/).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import login
from tests.browser.course import CODES, PASSWORD, Course, build_course

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def _plot(page: Any, element_id: str) -> list[dict[str, Any]]:
    page.wait_for_function(f"() => document.getElementById('{element_id}') && document.getElementById('{element_id}').data")
    return page.evaluate(f"() => JSON.parse(JSON.stringify(document.getElementById('{element_id}').data))")


def _change_r1(page: Any, base: str, exam_id: int) -> None:
    """The clinician opens zone R1's reading form on the exam page and reads it 1 (separate B-lines)."""
    page.goto(f"{base}/exams/{exam_id}/")
    row = page.locator("#zones tr[data-zone='R1']")
    assert row.locator("td.record").get_attribute("data-score") == "3"
    assert row.locator("td.record").get_attribute("data-source") == "ai"
    assert "AI, not reviewed" in row.locator("td.record").inner_text()
    row.locator("details.read-zone summary").click()
    row.locator("input[name=score][value='1']").check()
    for key in ("b_lines",):
        row.locator(f"input[name=findings][value='{key}']").check()
    row.locator("input[name=findings][value='consolidation']").uncheck()
    row.locator("input[name=comment]").fill("separate B-lines only, no consolidation")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    assert "Zone R1 read: 1." in page.inner_text(".messages")


def _exam_page(page: Any) -> dict[str, Any]:
    row = page.locator("#zones tr[data-zone='R1'] td.record")
    assert row.get_attribute("data-source") == "clinician" and "read by w-clinician" in row.inner_text()
    chest = page.locator("#chest-diagram g[data-zone='R1']")
    assert chest.get_attribute("data-source") == "clinician"
    return {"headline": int(page.inner_text("#exam-luss").split("/")[0]), "R1 row": int(row.get_attribute("data-score")),
            "chest diagram": int(chest.get_attribute("data-score"))}


def _timeline(page: Any, base: str, c: Course, out: Path) -> dict[str, Any]:
    page.goto(f"{base}/patients/{c.patient.pk}/timeline/")
    luss = _plot(page, "plot-luss")[0]
    assert luss["name"] == "Global LUS score (score of record)"
    assert luss["marker"]["symbol"] == ["circle", "circle", "circle-open"]  # signed, signed, not signed
    heat = _plot(page, "plot-heatmap")[0]
    r1 = heat["y"].index("R1")
    assert heat["text"][r1] == ["2", "1", "1"] and heat["text"][heat["y"].index("R2")][2] == "(1)"  # (AI's)
    assert "read by w-clinician" in heat["customdata"][r1][2] and "AI's score 3" in heat["customdata"][r1][2]
    page.locator("main").screenshot(path=str(out / "readme-timeline.png"))
    return {"timeline point": luss["y"][-1], "heatmap cell": heat["z"][r1][2]}


def _overview(page: Any, base: str, c: Course, previous: int) -> dict[str, Any]:
    page.goto(f"{base}/studies/{c.study.pk}/overview/")
    row = page.locator(f"#overview-table tr[data-patient='{c.patient.pk}']")
    trend = row.locator("td.trend").inner_text()  # "↓ -3": the change from the previous exam's record
    bars = _plot(page, "plot-overview")[0]
    assert row.locator("td.review").text_content().strip().startswith("draft")
    return {"overview score": int(row.locator("td.luss strong").inner_text()),
            "overview trend": previous + int(trend.split()[1]), "overview bar": int(bars["customdata"][bars["x"].index("SR-001")][2].split("/")[0])}


def _download(page: Any, base: str, c: Course, level: str) -> list[dict[str, str]]:
    page.goto(f"{base}/studies/{c.study.pk}/export/")
    page.select_option("select[name=level]", level)
    with page.expect_download() as info:
        page.click("#export-form button:not([name])")
    text = Path(info.value.path()).read_text()
    return list(csv.DictReader(io.StringIO(text)))


def _export(page: Any, base: str, c: Course) -> dict[str, Any]:
    exam_id = str(c.exams[2].pk)
    exam = next(r for r in _download(page, base, c, "exam") if r["exam_id"] == exam_id)
    zone = next(r for r in _download(page, base, c, "zone") if r["exam_id"] == exam_id and r["zone"] == "R1")
    assert (zone["ai_score"], zone["record_source"], zone["reviewer"]) == ("3", "clinician", "w-clinician")
    assert exam["luss_ai"] == str(sum(c.record(2).values())) and exam["review_status"] == "draft"
    return {"export luss": int(exam["luss"]), "export zone R1": int(zone["record_score"]),
            "export luss (zone rows)": int(zone["luss"])}


def _api(page: Any, c: Course) -> dict[str, Any]:
    exam = page.evaluate("id => fetch(`/api/v1/exams/${id}/`).then(r => r.json())", c.exams[2].pk)
    timeline = page.evaluate("id => fetch(`/api/v1/patients/${id}/timeline/`).then(r => r.json())", c.patient.pk)
    r1 = next(z for z in exam["scores"]["zones"] if z["zone"] == "R1")
    assert (r1["source"], r1["ai_score"], exam["scores"]["luss_ai"]) == ("clinician", 3, sum(c.record(2).values()))
    return {"API luss": exam["scores"]["luss"], "API zone R1": r1["score"], "API timeline": timeline["exams"][2]["luss"],
            "API timeline R1": timeline["exams"][2]["zones"]["R1"]}


def test_a_changed_reading_is_the_score_everywhere(live_server: Any, page: Any, screenshot_dir: Path) -> None:
    c = build_course()
    base = live_server.url
    before = c.record(2)
    assert before["R1"] == 3
    after = {**before, "R1": 1}
    previous = sum(c.record(1).values())
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, "w-clinician", PASSWORD)
    _change_r1(page, base, c.exams[2].pk)
    seen = {**_exam_page(page), **_timeline(page, base, c, screenshot_dir), **_overview(page, base, c, previous),
            **_export(page, base, c), **_api(page, c)}
    luss = sum(after.values())
    zone = {k: v for k, v in seen.items() if "R1" in k or k in ("chest diagram", "heatmap cell")}
    total = {k: v for k, v in seen.items() if k not in zone}
    assert zone == dict.fromkeys(zone, 1), zone
    assert total == dict.fromkeys(total, luss), total
    assert len(seen) == 15
    assert errors == [], errors


def test_the_worklist_leads_to_the_review_mode(live_server: Any, page: Any, screenshot_dir: Path) -> None:
    c = build_course()
    base = live_server.url
    login(page, base, "w-clinician", PASSWORD)
    link = page.locator(f"a.worklist-link[href='/studies/{c.study.pk}/worklist/']")  # the home page, per study
    assert link.get_attribute("data-count") == "3" and link.inner_text() == "3 exams waiting"
    with page.expect_navigation():
        link.click()
    rows = page.locator("#worklist tbody tr")
    assert [int(r) for r in rows.evaluate_all("els => els.map(e => e.dataset.exam)")] == [
        c.others[0].pk, c.others[1].pk, c.exams[2].pk]
    why = rows.locator("td.worklist-why").all_inner_texts()
    assert "AI unsure of 3 zones: R2, L1, L4" in why[0] and "AI unsure of 1 zone: R5" in why[1]
    assert "moved by ≥ 2 since the previous exam in 1 zone: R1" in why[2] and "waiting 1 day" in why[0]
    assert page.inner_text("#nav-worklist") == "Review worklist (3)"
    page.locator("main").screenshot(path=str(screenshot_dir / "readme-worklist.png"))
    with page.expect_navigation():
        rows.nth(0).locator("a.button-link").click()
    page.wait_for_function("() => document.getElementById('review-position').textContent === 'zone 1 of 12'")
    assert page.url.endswith(f"/exams/{c.others[0].pk}/")  # ?review=1 consumed
    assert page.inner_text("#review-zone-code") == CODES[0]
    page.keyboard.press("Enter")  # the AI's suggestion, read and saved
    page.wait_for_function("() => document.getElementById('review-position').textContent === 'zone 2 of 12'")
    with page.expect_navigation():  # after a change, closing goes back to the worklist
        page.keyboard.press("Escape")
    assert page.url == f"{base}/studies/{c.study.pk}/worklist/"
    assert "11 of 12" in page.locator(f"#worklist tr[data-exam='{c.others[0].pk}']").inner_text()
    page.goto(f"{base}{c.study.get_absolute_url()}")
    assert "3 exams wait for review" in page.inner_text("#worklist-link")
