"""A clinician drops all six COVID-BLUES clips of a BLUE-6 exam on the exam page at once: the page
reads each file's zone from its name, refuses to upload while two files share a zone or one has
none, then sends each file through the clip upload API with its own progress bar; a real Celery
worker checks them, and each row ends ``ready`` with its file stored in its own zone."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip, write_dicom
from patients.imaging.models import ZoneClip
from patients.studies.models import Membership, Role
from tests.browser.conftest import login
from tests.conftest import require
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

worker_env = worker_env_fixture

PATIENT = 11  # six small clips, one per BLUE-6 zone
ZONES = ("R1", "R2", "R3", "L1", "L2", "L3")


def _button_enabled(page: Any) -> bool:
    return bool(page.evaluate("() => !document.getElementById('batch-upload-button').disabled"))


def test_drop_six_files_confirm_zones_and_upload(browser: Any, live_server: Any, shared_data: Path,
                                                 worker_env: Callable[..., Worker], screenshot_dir: Path) -> None:
    videos = shared_data / "covid-blues" / "lus_videos"
    files = {zone: videos / f"patient_{PATIENT}_{zone}.mp4" for zone in ZONES}
    require(all(p.is_file() for p in files.values()), f"COVID-BLUES clips of patient {PATIENT} not found in {videos}")
    study = StudyFactory(protocol="blue-6")
    user = UserFactory(username="ward-batch")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    worker_env(LUSWEB_SCORING_ON_UPLOAD="0")  # checks the uploads; scoring them is not what this test is about
    page = browser.new_page()
    try:
        login(page, live_server.url, "ward-batch", "pw-for-tests-1")
        page.goto(f"{live_server.url}/exams/{exam.pk}/")
        assert not _button_enabled(page)
        # All six at once, in an order unlike the protocol's: the zones come from the names.
        page.set_input_files("#batch-files", [str(files[z]) for z in reversed(ZONES)])
        page.wait_for_function("() => document.querySelectorAll('#batch-table tbody tr').length === 6")
        for zone, path in files.items():
            row = page.locator(f"#batch-table tr[data-file='{path.name}']")
            assert row.locator("select").input_value() == zone
            assert row.locator("td.source").inner_text() == "file name"
        assert _button_enabled(page) and page.inner_text("#batch-problems") == ""
        # Two files in one zone, then a file with no zone: flagged, and Upload is disabled.
        r1 = f"#batch-table tr[data-file='{files['R1'].name}']"
        page.select_option(f"{r1} select", "R2")
        assert not _button_enabled(page)
        assert page.get_attribute(r1, "data-flags") == "duplicate"
        assert "zone R2 is given to another file too" in page.inner_text("#batch-problems")
        page.select_option(f"{r1} select", "")
        assert page.get_attribute(r1, "data-flags") == "unknown" and not _button_enabled(page)
        page.select_option(f"{r1} select", "L3")
        assert page.locator(r1).locator("td.source").inner_text() == "chosen by you"
        page.select_option(f"{r1} select", "R1")  # corrected: the zone its name gives
        assert page.locator(r1).locator("td.source").inner_text() == "file name"
        assert _button_enabled(page) and page.inner_text("#batch-problems") == ""
        page.click("#batch-upload-button")
        page.wait_for_function("() => document.getElementById('batch-upload').dataset.state === 'done'",
                               timeout=240000)
        for zone, path in files.items():
            row = page.locator(f"#batch-table tr[data-file='{path.name}']")
            assert row.locator("td.result").get_attribute("data-result") == "ready", row.inner_text()
            assert row.locator("td.result").inner_text() == f"ready: zone {zone}"
            assert row.locator("progress").get_attribute("value") == "100"
        assert page.inner_text("#batch-summary").startswith("6 of 6 files ready.")
        page.screenshot(path=str(screenshot_dir / "batch-upload.png"), full_page=True)
    finally:
        page.close()
    # Each zone holds its own file (the hash of the bytes sent), all checked and ready.
    stored = {c.zone: c for c in ZoneClip.all_objects.filter(exam=exam)}
    assert sorted(stored) == sorted(ZONES)
    for zone, path in files.items():
        assert stored[zone].status == "ready"
        assert stored[zone].sha256 == hashlib.sha256(path.read_bytes()).hexdigest(), zone


def test_a_dicom_files_zone_comes_from_its_header(browser: Any, live_server: Any, tmp_path: Path) -> None:
    """A DICOM file whose name says nothing: the server reads its SeriesDescription (the study's
    zone attribute) from the first 256 KiB the page sends; a name that says another zone loses."""
    study = StudyFactory(protocol="blue-6")
    user = UserFactory(username="ward-dicom")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    source = tmp_path / "phantom.dcm"
    write_dicom(phantom_cohort_clip(1, seed=4, n_frames=30, rows=224, columns=224), source)
    ds = pydicom.dcmread(source)
    ds.SeriesDescription = "LUS L2 cine"
    for name in ("IMG0001.dcm", "export_R1"):
        ds.save_as(tmp_path / name, enforce_file_format=True)
    page = browser.new_page()
    try:
        login(page, live_server.url, "ward-dicom", "pw-for-tests-1")
        page.goto(f"{live_server.url}/exams/{exam.pk}/")
        page.set_input_files("#batch-files", [str(tmp_path / "IMG0001.dcm"), str(tmp_path / "export_R1")])
        page.wait_for_function("() => document.querySelectorAll('#batch-table td.source[data-source=dicom]')"
                               ".length === 2")
        for name in ("IMG0001.dcm", "export_R1"):
            row = page.locator(f"#batch-table tr[data-file='{name}']")
            assert row.locator("select").input_value() == "L2"
            assert row.locator("td.source").inner_text() == "DICOM SeriesDescription: LUS L2 cine"
        # Both say L2: flagged as one zone for two files, Upload disabled until corrected.
        assert page.get_attribute("#batch-table tr[data-file='export_R1']", "data-flags") == "duplicate"
        assert not _button_enabled(page)
        page.select_option("#batch-table tr[data-file='export_R1'] select", "R1")
        assert _button_enabled(page)
    finally:
        page.close()


def test_a_file_the_check_refuses_says_why(browser: Any, live_server: Any, shared_data: Path, tmp_path: Path,
                                           worker_env: Callable[..., Worker]) -> None:
    """One file of the batch is an MP4 cut short: its row ends ``failed`` with the check's reason,
    the other ``ready``; the summary counts both."""
    whole = shared_data / "covid-blues" / "lus_videos" / f"patient_{PATIENT}_L1.mp4"
    require(whole.is_file(), f"{whole} not found")
    cut = tmp_path / f"patient_{PATIENT}_R2.mp4"
    cut.write_bytes(whole.read_bytes()[:600])
    study = StudyFactory(protocol="blue-6")
    user = UserFactory(username="ward-cut")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    worker_env(LUSWEB_SCORING_ON_UPLOAD="0")
    page = browser.new_page()
    try:
        login(page, live_server.url, "ward-cut", "pw-for-tests-1")
        page.goto(f"{live_server.url}/exams/{exam.pk}/")
        page.set_input_files("#batch-files", [str(whole), str(cut)])
        page.wait_for_function("() => document.querySelectorAll('#batch-table tbody tr').length === 2")
        page.click("#batch-upload-button")
        page.wait_for_function("() => document.getElementById('batch-upload').dataset.state === 'done'",
                               timeout=120000)
        good = page.locator(f"#batch-table tr[data-file='{whole.name}'] td.result")
        bad = page.locator(f"#batch-table tr[data-file='{cut.name}'] td.result")
        assert (good.get_attribute("data-result"), good.inner_text()) == ("ready", "ready: zone L1")
        assert bad.get_attribute("data-result") == "failed"
        assert re.search(r"^failed: .*(truncated|corrupt|no frames|decod)", bad.inner_text(), re.IGNORECASE), \
            bad.inner_text()
        assert page.inner_text("#batch-summary").startswith("1 of 2 files ready; 1 failed.")
    finally:
        page.close()
    assert ZoneClip.all_objects.get(exam=exam, zone="R2").status == "failed"
    assert list(ZoneClip.objects.filter(exam=exam).values_list("zone", flat=True)) == ["L1"]
