"""The AI's six-class severity in a real browser: the exam page's card and the correlation plot
with the six-class score chosen (its axis names the score and its source, its points are the
exams' six-class values)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from patients.studies.models import Role
from tests.browser.conftest import login
from tests.patients.dashboards.test_six_class import LABEL, build_six_cohort

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _plot(page: Any, element_id: str, part: str = "data") -> Any:
    page.wait_for_function(f"() => document.getElementById('{element_id}') && document.getElementById('{element_id}').{part}")
    return page.evaluate(f"() => JSON.parse(JSON.stringify(document.getElementById('{element_id}').{part}))")


def test_the_six_class_score_on_the_exam_page_and_the_correlation_plot(live_server: Any, browser: Any,
                                                                       screenshot_dir: Path) -> None:
    w = build_six_cohort()
    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login(page, base, f"six-{Role.RESEARCHER}", "pw-for-tests-1")
        page.goto(f"{base}/exams/{w['exams'][3].pk}/")
        card = page.locator("#six-class")
        assert card.is_visible()
        assert page.locator("#six-class-mean").inner_text() == f"{w['six'][3]:.2f}/4" == "3.75/4"
        assert page.locator("#six-class-label").inner_text() == LABEL
        assert page.locator("#six-class-zones tr[data-zone='R2'] td.dominant").inner_text() == "B2-line"
        card.screenshot(path=str(screenshot_dir / "six-class-exam-card.png"))
        page.goto(f"{base}/studies/{w['study'].pk}/correlation/")
        page.select_option("select[name=score]", "six_class")
        with page.expect_navigation():
            page.click("#correlation-controls button[type=submit]")
        layout = _plot(page, "plot-correlation", "layout")
        assert layout["xaxis"]["title"]["text"] == f"Six-class severity, 0-4 ({LABEL})"
        xs = [x for t in _plot(page, "plot-correlation") if t["mode"] == "markers" for x in t["x"]]
        assert sorted(xs) == pytest.approx(sorted(w["six"]), abs=1e-5)
        assert LABEL in page.locator("#score-source").inner_text()
        page.screenshot(path=str(screenshot_dir / "six-class-correlation.png"), full_page=True)
    finally:
        context.close()
    assert errors == [], errors
