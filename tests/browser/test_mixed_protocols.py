"""Protocols that stay true, in the browser: a 12-zone study where patient MX-001 has a BLUE-6
exam (created through the patient page's form with the explicit choice), a complete 12-zone exam
and a 12-zone exam with 8 of 12 zones. Checks the heatmap labels, the reference lines, the
overview threshold, the correlation's normalised axis, the wide export's column names, the
coverage on every marker and that the missing zones raise no flag."""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from patients.records.models import Exam
from patients.studies.models import Role
from patients.studies.protocols import get_protocol
from tests.browser.conftest import login
from tests.factories import BloodGasFactory, ExamFactory, MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.dashboards import builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "pw-for-tests-1"
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
BLUE = get_protocol("blue-6")
TWELVE = get_protocol("12-zone")
FULL = [2, 2, 1, 2, 2, 2, 2, 2, 1, 1, 1, 0]  # 18 of 36
EIGHT = [2, 2, 1, 2, None, None, 2, 2, 1, 1, None, None]  # 13: the same 8 zones as FULL


def _plot(page: Any, element_id: str, what: str = "data") -> Any:
    page.wait_for_function(f"() => document.getElementById('{element_id}') && document.getElementById('{element_id}').data")
    return page.evaluate(f"() => JSON.parse(JSON.stringify(document.getElementById('{element_id}').{what}))")


def _world() -> dict[str, Any]:
    study = StudyFactory(name="Mixed protocols ward", protocol="12-zone")
    clinician = UserFactory(username="mx-clinician")
    clinician.set_password(PASSWORD)
    clinician.save()
    MembershipFactory(study=study, user=clinician, role=Role.CLINICIAN)
    patient = PatientFactory(study=study, code="MX-001", admission_date=dt.date(2026, 3, 1))
    mv = builders.model_version()
    full = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=1), protocol="12-zone")
    builders.record_scores(full, dict(zip(TWELVE.codes, FULL)), mv=mv)
    partial = ExamFactory(patient=patient, acquired_at=T0 + dt.timedelta(days=2), protocol="12-zone")
    builders.record_scores(partial, {z: v for z, v in zip(TWELVE.codes, EIGHT) if v is not None}, mv=mv)
    for i, at in enumerate((T0, full.acquired_at, partial.acquired_at)):
        BloodGasFactory(patient=patient, sampled_at=at + dt.timedelta(hours=1), paco2_mmhg=40.0 + 3 * i,
                        pao2_mmhg=80.0, fio2=0.4)
    return {"study": study, "patient": patient, "mv": mv}


def _create_blue_exam(page: Any, base: str, w: dict[str, Any]) -> Exam:
    """The BLUE-6 exam through the patient page: refused without the explicit choice, then made."""
    page.goto(f"{base}/patients/{w['patient'].pk}/")
    page.fill("input[name=acquired_at]", "2026-03-02T10:00")
    page.select_option("select[name=protocol]", "blue-6")
    with page.expect_navigation():
        page.click("form:has(input[name=kind][value=exam]) button[type=submit]")
    assert "not the study's default" in page.inner_text("body")
    assert not Exam.objects.filter(patient=w["patient"], protocol="blue-6").exists()
    page.fill("input[name=acquired_at]", "2026-03-02T10:00")
    page.select_option("select[name=protocol]", "blue-6")
    page.check("input[name=other_protocol]")
    with page.expect_navigation():
        page.click("form:has(input[name=kind][value=exam]) button[type=submit]")
    exam = Exam.objects.get(patient=w["patient"], protocol="blue-6")
    assert page.locator("#other-protocol").is_visible()  # the new exam's page marks it
    builders.record_scores(exam, dict(zip(BLUE.codes, [1, 2, 3, 1, 1, 1])), mv=w["mv"])  # 9 of 18, R3 = 3
    return exam


def _timeline(page: Any, base: str, w: dict[str, Any]) -> None:
    page.goto(f"{base}/patients/{w['patient'].pk}/timeline/")
    heat = _plot(page, "plot-heatmap")[0]
    layout = _plot(page, "plot-heatmap", "layout")
    ticks = dict(zip(layout["yaxis"]["tickvals"], layout["yaxis"]["ticktext"]))
    assert ticks["blue-6:R3"] == "blue-6:R3 · Right PLAPS point"
    assert ticks["12-zone:R3"] == "12-zone:R3 · Right lateral upper"
    row = heat["y"].index("blue-6:R3")
    assert heat["z"][row] == [3, None, None]  # only the BLUE-6 exam fills its rows
    assert heat["z"][heat["y"].index("12-zone:R3")] == [None, 1, 1]
    luss = _plot(page, "plot-luss")[0]
    assert luss["y"] == [50, 50, round(1300 / 36, 2)]  # % of each exam's own maximum
    assert luss["text"] == ["6/6 zones", "12/12 zones", "8/12 zones"]  # coverage on every marker
    assert [c[10] for c in luss["customdata"]][2] == "change → 0 over the 8 zones scored at both exams"
    line = _plot(page, "plot-luss", "layout")
    assert line["shapes"][0]["y0"] == 50 and "% of each exam" in line["yaxis"]["title"]["text"]
    assert "50 % of each exam's maximum" in page.inner_text("#reference-line")


def _overview(page: Any, base: str, w: dict[str, Any]) -> None:
    page.goto(f"{base}/studies/{w['study'].pk}/overview/")
    bars = _plot(page, "plot-overview")[0]
    layout = _plot(page, "plot-overview", "layout")
    assert layout["shapes"][0]["y0"] == 50 and layout["yaxis"]["range"] == [0, 100]
    assert bars["y"] == [round(1300 / 36, 1)] and bars["customdata"][0][2:4] == ["13/36 (12-zone)", "8/12 zones"]
    assert bars["customdata"][0][4] == "no risk yet"  # no severity model has run: the risk says so, not 0 %
    row = page.locator(f"#overview-table tr[data-patient='{w['patient'].pk}']")
    assert "8/12 zones" in row.locator("td.luss").inner_text()
    trend = row.locator("td.trend").inner_text()
    assert trend.startswith("→ 0") and "8 zones scored at both" in trend  # 18 -> 13 is the missing zones
    assert "rose" not in row.locator("td.flags").inner_text() and "fell" not in row.locator("td.flags").inner_text()


def _correlation(page: Any, base: str, w: dict[str, Any]) -> None:
    page.goto(f"{base}/studies/{w['study'].pk}/correlation/?score=luss&gas=paco2")
    layout = _plot(page, "plot-correlation", "layout")
    assert layout["xaxis"]["title"]["text"] == "Global LUS score of record, % of the protocol's maximum"
    assert layout["xaxis"]["range"] == [0, 100]
    xs = [x for t in _plot(page, "plot-correlation") if t["mode"] == "markers" for x in t["x"]]
    assert sorted(round(x, 2) for x in xs) == [round(1300 / 36, 2), 50, 50]


def _export(page: Any, base: str, w: dict[str, Any]) -> None:
    page.goto(f"{base}/studies/{w['study'].pk}/export/")
    page.select_option("select[name=level]", "exam")
    page.select_option("select[name=format]", "wide")
    with page.expect_download() as info:
        page.click("#export-form button:not([name])")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    records = [c for c in rows[0] if c.startswith("record_")]
    assert records == [f"record_12-zone:{c}" for c in TWELVE.codes] + [f"record_blue-6:{c}" for c in BLUE.codes]
    assert (rows[0]["record_blue-6:R3"], rows[0]["record_12-zone:R3"]) == ("3", "")
    assert (rows[1]["record_blue-6:R3"], rows[1]["record_12-zone:R3"]) == ("", "1")


def test_mixed_protocols_stay_true(live_server: Any, browser: Any, screenshot_dir: Path) -> None:
    w = _world()
    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login(page, base, "mx-clinician", PASSWORD)
        _create_blue_exam(page, base, w)
        _timeline(page, base, w)
        page.screenshot(path=str(screenshot_dir / "mixed-protocols-timeline.png"), full_page=True)
        _overview(page, base, w)
        _correlation(page, base, w)
        _export(page, base, w)
    finally:
        context.close()
    assert errors == [], errors
