"""A clinician uploads zone clips in the browser: the page answers at once and shows the zones
being checked; a real Celery worker on the real broker checks them (one is refused, the page
shows why), then scores the exam while the progress bar reaches 100 %."""
from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patients.imaging.models import ZoneClip
from patients.studies.models import Membership, Role
from scoring.models import JobStatus, ScoringJob
from tests.browser.conftest import login
from tests.factories import ExamFactory, PatientFactory, StudyFactory, UserFactory
from tests.worker import Worker, worker_env_fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

worker_env = worker_env_fixture


def test_upload_and_watch_the_progress_bar(browser: Any, live_server: Any, worker_env: Callable[..., Worker],
                                           screenshot_dir: Path) -> None:
    from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4

    study = StudyFactory(protocol="12-zone")
    user = UserFactory(username="ward-nurse")
    Membership.objects.create(study=study, user=user, role=Role.CLINICIAN)
    exam = ExamFactory(patient=PatientFactory(study=study))
    with tempfile.TemporaryDirectory() as tmp:
        clip, cut = Path(tmp) / "R3.mp4", Path(tmp) / "R4.mp4"
        write_mp4(phantom_cohort_clip(2, seed=5, n_frames=40, rows=224, columns=224), clip)
        cut.write_bytes(clip.read_bytes()[:600])  # an MP4 that ends early: refused by the worker's check
        page = browser.new_page()
        seen: list[int] = []
        try:
            login(page, live_server.url, "ward-nurse", "pw-for-tests-1")
            page.goto(f"{live_server.url}/exams/{exam.pk}/")
            # Both uploads are answered before any worker runs: the zones say the files are being checked.
            for zone, path in (("R3", clip), ("R4", cut)):
                page.select_option("select[name=zone]", zone)
                page.set_input_files("input[name=file]", str(path))
                # Sent as the API's upload (exam_upload.js): answered in place, the page is not rendered again.
                page.click("form[enctype] button[type=submit]")
                page.wait_for_function("t => document.getElementById('clip-upload-status').textContent === t",
                                       arg=f"{zone}.mp4 received for zone {zone}: checking the file…")
            for zone in ("R3", "R4"):
                cell = page.locator(f"tr[data-zone={zone}] td.upload-state")
                assert cell.get_attribute("data-upload-status") == "pending" and cell.inner_text() == "checking the file…"
            assert page.locator("#job-status").inner_text() == "not scored yet"
            worker = worker_env()  # now a worker checks them; the page follows without a reload by hand
            page.wait_for_selector("tr[data-zone=R3] img.thumb", timeout=120000)
            page.wait_for_selector("tr[data-zone=R4] td.upload-state[data-upload-status=failed]", timeout=120000)
            error = page.locator("tr[data-zone=R4] .upload-error").inner_text()
            assert re.search(r"truncated|corrupt|no frames|decod", error, re.IGNORECASE), error
            assert page.locator("tr[data-zone=R4] button.remove-upload").count() == 1
            # Watch the bar while the worker scores (the page reloads itself when it is done).
            for _ in range(600):
                value = page.evaluate(
                    "() => { const b = document.getElementById('job-progress-bar');"
                    " return b ? parseInt(b.getAttribute('aria-valuenow') || '0') : -1; }"
                )
                seen.append(value)
                if value >= 100 and page.locator("#job-status").get_attribute("data-code") == "succeeded":
                    break
                page.wait_for_timeout(250)
            # The page reloads itself with the new scores.
            page.wait_for_function("() => document.getElementById('exam-luss')"
                                   " && document.getElementById('exam-luss').innerText.trim() !== '–'", timeout=20000)
            # The AI's reading is the zone's score of record until a clinician reads it.
            assert page.locator("tr[data-zone=R3] td.record[data-source=ai] .score").count() == 1
            assert page.locator("tr[data-zone=R3] td.ai .score").count() == 1
            page.screenshot(path=str(screenshot_dir / "upload-progress-clinician.png"), full_page=True)
        finally:
            page.close()
    tail = worker.log.read_text()[-2000:] if worker.log.exists() else ""
    assert max(seen) == 100, (seen[-20:], tail)
    assert ScoringJob.objects.filter(exam=exam, status=JobStatus.SUCCEEDED).exists()
    # It moved: we saw it below 100 before it reached 100, never going backwards within a job.
    assert min(seen) < 100
    # The failed upload holds no zone and no file; the checked one is the zone's clip.
    failed = ZoneClip.all_objects.get(exam=exam, zone="R4")
    assert failed.status == "failed" and not failed.file and not failed.source and not failed.frames
    assert list(ZoneClip.objects.filter(exam=exam).values_list("zone", flat=True)) == ["R3"]
